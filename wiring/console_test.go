package wiring

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kooflow/kooflow/console"
)

const (
	testSessionKey   = "a-session-key-of-more-than-32-random-bytes"
	testClientSecret = "the-client-secret-from-the-provider"
)

// consoleEnv is a complete console configuration, with the changes in set ("" removes).
func consoleEnv(t *testing.T, set map[string]string) []string {
	t.Helper()
	vars := map[string]string{
		"KOOFLOW_DB": "sqlite:/tmp/k.db", "KOOFLOW_PAYLOAD_ENCRYPTION": "off",
		EnvConsoleURL: "https://kooflow.carrier.example", EnvConsoleSessionKey: testSessionKey,
		EnvOIDCIssuer: "https://sso.carrier.example/realms/carrier", EnvOIDCClientID: "kooflow-console",
		EnvOIDCClientSecret: testClientSecret, EnvOIDCRoles: "viewer=kooflow-viewers,operator=kooflow-operators,admin=kooflow-admins",
	}
	for k, v := range set {
		if v == "" {
			delete(vars, k)
		} else {
			vars[k] = v
		}
	}
	env := []string{noConfigFile(t)}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// secretFile writes content to a file with mode perm and returns its path.
func secretFile(t *testing.T, content string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFromEnvConsoleTakesEveryVariable(t *testing.T) {
	cfg, err := FromEnv(consoleEnv(t, map[string]string{
		EnvConsoleAddr: ":8280", EnvOIDCRoleClaim: "realm_access.roles", EnvOIDCNameClaim: "email", EnvOIDCScopes: "groups, offline_access",
		EnvOIDCProviderName: "Carrier SSO", EnvTemporalUIURL: "https://temporal.carrier.example", EnvOIDCClientSecret: "",
		EnvOIDCClientSecretFile: secretFile(t, testClientSecret+"\n", 0o600), EnvConsoleURL: "https://kooflow.carrier.example/",
	}), Console)
	if err != nil {
		t.Fatal(err)
	}
	cc := cfg.Console
	o := cc.OIDC
	got := []string{cc.Addr, cc.URL, string(cc.SessionKey), o.Issuer, o.ClientID, o.ClientSecret, o.ConsoleURL, o.RoleClaim, o.NameClaim,
		strings.Join(o.Scopes, " "), o.ProviderName, console.FormatRoles(o.Roles), cc.TemporalUIURL, o.RedirectURL(), fmt.Sprint(cc.Secure())}
	want := []string{":8280", "https://kooflow.carrier.example", testSessionKey, "https://sso.carrier.example/realms/carrier", "kooflow-console",
		testClientSecret, "https://kooflow.carrier.example", "realm_access.roles", "email", "groups offline_access", "Carrier SSO",
		"viewer=kooflow-viewers,operator=kooflow-operators,admin=kooflow-admins", "https://temporal.carrier.example",
		"https://kooflow.carrier.example/signin/oidc/callback", "true"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("field %d = %q, want %q", i, got[i], want[i])
		}
	}
	for _, s := range []string{cc.String(), fmt.Sprintf("%v", cfg.Console), fmt.Sprintf("%+v", cc)} {
		if strings.Contains(s, testSessionKey) || strings.Contains(s, testClientSecret) {
			t.Errorf("the console's configuration prints a secret: %s", s)
		}
	}

	local, err := FromEnv(consoleEnv(t, map[string]string{EnvConsoleURL: "http://localhost:8280"}), Console)
	if err != nil {
		t.Fatal(err)
	}
	if local.Console.Addr != DefaultConsoleAddr || local.Console.Secure() || local.Console.OIDC.Scopes != nil {
		t.Errorf("a local console: addr %q, secure %v, scopes %v", local.Console.Addr, local.Console.Secure(), local.Console.OIDC.Scopes)
	}
}

// TestFromEnvConsoleNamesWhatIsMissing: without OIDC the console does not start, and says
// what to set; every missing or malformed setting is named, no secret is repeated.
func TestFromEnvConsoleNamesWhatIsMissing(t *testing.T) {
	none := map[string]string{EnvConsoleURL: "", EnvConsoleSessionKey: "", EnvOIDCIssuer: "", EnvOIDCClientID: "", EnvOIDCClientSecret: "", EnvOIDCRoles: ""}
	_, err := FromEnv(consoleEnv(t, none), Console)
	if err == nil {
		t.Fatal("a console without sign-in settings was configured")
	}
	for _, want := range []string{EnvConsoleURL, EnvConsoleSessionKey + " or " + EnvConsoleSessionKeyFile, EnvOIDCIssuer, EnvOIDCClientID,
		EnvOIDCClientSecret, EnvOIDCRoles, "no other way in"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	for name, tc := range map[string]struct {
		set  map[string]string
		want []string
	}{
		"only an issuer": {map[string]string{EnvOIDCClientID: "", EnvOIDCClientSecret: "", EnvOIDCRoles: ""},
			[]string{"missing required", EnvOIDCClientID, EnvOIDCClientSecret + " or " + EnvOIDCClientSecretFile, EnvOIDCRoles}},
		"short session key": {map[string]string{EnvConsoleSessionKey: "change-me"}, []string{EnvConsoleSessionKey, "9 bytes", "at least 32"}},
		"both session keys": {map[string]string{EnvConsoleSessionKeyFile: secretFile(t, testSessionKey, 0o600)}, []string{"both", "set one"}},
		"session key file others can read": {map[string]string{EnvConsoleSessionKey: "", EnvConsoleSessionKeyFile: secretFile(t, testSessionKey, 0o644)},
			[]string{EnvConsoleSessionKeyFile, "0644", "chmod 600"}},
		"placeholder client secret": {map[string]string{EnvOIDCClientSecret: "change-me"}, []string{EnvOIDCClientSecret, "placeholder"}},
		"empty secret file":         {map[string]string{EnvOIDCClientSecret: "", EnvOIDCClientSecretFile: secretFile(t, "\n", 0o400)}, []string{EnvOIDCClientSecretFile, "is empty"}},
		"http on the network":       {map[string]string{EnvConsoleURL: "http://kooflow.carrier.example"}, []string{EnvConsoleURL, "https"}},
		"a path":                    {map[string]string{EnvConsoleURL: "https://carrier.example/kooflow"}, []string{EnvConsoleURL, "root of its host"}},
		"http issuer":               {map[string]string{EnvOIDCIssuer: "http://sso.carrier.example"}, []string{EnvOIDCIssuer, "https"}},
		"unknown role":              {map[string]string{EnvOIDCRoles: "superuser=wheel"}, []string{EnvOIDCRoles, `"superuser" is not a role`}},
		"bad Temporal UI":           {map[string]string{EnvTemporalUIURL: "temporal:8233"}, []string{EnvTemporalUIURL}},
	} {
		_, err := FromEnv(consoleEnv(t, tc.set), Console)
		if err == nil {
			t.Errorf("%s: configured", name)
			continue
		}
		for _, want := range tc.want {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not say %q", name, err, want)
			}
		}
		for _, secret := range []string{testSessionKey, testClientSecret} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: error %q carries a secret", name, err)
			}
		}
	}
}
