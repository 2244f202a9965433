package deploy_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/kooflow/kooflow/console"
	"github.com/kooflow/kooflow/wiring"
)

// consoleSecrets are the secrets kooflow-console reads as files: the variable naming the
// file, and the compose secret mounted there.
var consoleSecrets = map[string]string{
	wiring.EnvConsoleSessionKeyFile: "kooflow-console-session-key",
	wiring.EnvOIDCClientSecretFile:  "kooflow-console-oidc-client-secret",
	"KOOFLOW_PAYLOAD_KEYS_FILE":     "kooflow-payload-keys",
}

// consoleEnviron is kooflow-console's environment as the process sees it, each secret
// written to a file of its own the way docker compose does.
func consoleEnviron(t *testing.T, p *types.Project) []string {
	t.Helper()
	env := []string{"TEMPORAL_CONFIG_FILE=" + filepath.Join(t.TempDir(), "absent.toml")}
	for name, v := range p.Services["kooflow-console"].Environment {
		value := ""
		if v != nil {
			value = *v
		}
		if source, ok := consoleSecrets[name]; ok {
			value = materialise(t, p, "kooflow-console", source)(name)
		}
		env = append(env, name+"="+value)
	}
	return env
}

// TestConsoleService: kooflow-console runs `kooflow console` from the kooflow image; its
// session key, OIDC client secret and payload keys are secret files readable by the image's
// user alone, never environment values (where `docker inspect` shows them); it listens on
// every interface of its container for its port published on 127.0.0.1 only, is checked
// with `kooflow healthcheck --url` on /healthz, and waits for PostgreSQL and the namespace
// as the other kooflow services. kooflow accepts its configuration once .env is filled in,
// and refuses .env.example's placeholders, naming what to fill in.
func TestConsoleService(t *testing.T) {
	const (
		sessionKey   = "a-session-key-of-forty-eight-random-bytes-0123456"
		clientSecret = "the-client-secret-the-provider-issued"
	)
	filled := map[string]*string{
		"KOOFLOW_CONSOLE_SESSION_KEY": ptr(sessionKey), "KOOFLOW_CONSOLE_OIDC_CLIENT_SECRET": ptr(clientSecret),
		"KOOFLOW_CONSOLE_OIDC_ISSUER": ptr("https://sso.carrier.example/realms/carrier"), "KOOFLOW_CONSOLE_OIDC_CLIENT_ID": ptr("kooflow-console"),
		"KOOFLOW_PAYLOAD_KEYS": ptr("k1:" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("1", 32)))),
	}
	p := withEnv(t, filled)
	s, ok := p.Services["kooflow-console"]
	if !ok {
		t.Fatal("docker-compose.yml has no kooflow-console service")
	}
	if s.Build == nil || !reflect.DeepEqual([]string(s.Command), []string{"console"}) {
		t.Errorf("kooflow-console runs %v (built: %v), want the kooflow image's console", s.Command, s.Build != nil)
	}
	if s.DependsOn["temporal-setup"].Condition != types.ServiceConditionCompletedSuccessfully ||
		s.DependsOn["postgresql"].Condition != types.ServiceConditionHealthy {
		t.Errorf("kooflow-console does not wait for PostgreSQL and the namespace setup: %+v", s.DependsOn)
	}

	// The reconciliation files: the worker's volume, read-only, at the same path.
	worker := p.Services["kooflow-worker"]
	var workerFiles types.ServiceVolumeConfig
	for _, v := range worker.Volumes {
		if v.Source == "kooflow-statements" {
			workerFiles = v
		}
	}
	mounted := false
	for _, v := range s.Volumes {
		mounted = mounted || (v.Source == workerFiles.Source && v.Target == workerFiles.Target && v.ReadOnly)
	}
	if workerFiles.Source == "" || !mounted || s.WorkingDir != worker.WorkingDir {
		t.Errorf("kooflow-console does not read the worker's statements (%+v, read-only, same working directory): %+v", workerFiles, s.Volumes)
	}

	// Secrets: files for the image's user alone, nothing in the environment.
	user, _ := dockerfileFinalStage(t)
	uid, gid, _ := strings.Cut(user, ":")
	for _, v := range []string{wiring.EnvConsoleSessionKey, wiring.EnvOIDCClientSecret, "KOOFLOW_PAYLOAD_KEYS"} {
		if _, set := s.Environment[v]; set {
			t.Errorf("kooflow-console sets %s in its environment; it must come as a secret file", v)
		}
	}
	for name, v := range s.Environment {
		if v != nil && (strings.Contains(*v, sessionKey) || strings.Contains(*v, clientSecret)) {
			t.Errorf("kooflow-console: %s carries a secret", name)
		}
	}
	for variable, source := range consoleSecrets {
		path, cfg, ok := secretFile(p, "kooflow-console", source)
		if !ok {
			t.Errorf("kooflow-console does not mount the secret %s", source)
			continue
		}
		if got := s.Environment[variable]; got == nil || *got != path {
			t.Errorf("kooflow-console: %s = %v, want %s, where %s is mounted", variable, got, path, source)
		}
		if cfg.Mode == nil || os.FileMode(*cfg.Mode)&0o077 != 0 || cfg.UID != uid || cfg.GID != gid {
			t.Errorf("kooflow-console: %s is mounted with uid %q gid %q mode %v; want %s:%s and no access for others", source, cfg.UID, cfg.GID, cfg.Mode, uid, gid)
		}
		if from := p.Secrets[source]; from.Environment == "" {
			t.Errorf("secret %s does not come from .env", source)
		}
	}

	// The listener, its published port and the health check.
	listen := *s.Environment[wiring.EnvConsoleAddr]
	if host, _, err := splitHostPort(listen); err != nil || (host != "" && host != "0.0.0.0") {
		t.Errorf("%s=%q, want every interface of the container", wiring.EnvConsoleAddr, listen)
	}
	if len(s.Ports) != 1 || s.Ports[0].HostIP != "127.0.0.1" || s.Ports[0].Target != atoi(t, port(t, listen)) {
		t.Errorf("kooflow-console publishes %+v; want its port %s on 127.0.0.1 only", s.Ports, port(t, listen))
	}
	wantCheck := []string{"CMD", "/usr/local/bin/kooflow", "healthcheck", "--url", "http://127.0.0.1:" + port(t, listen) + "/healthz"}
	if s.HealthCheck == nil || !reflect.DeepEqual([]string(s.HealthCheck.Test), wantCheck) {
		t.Errorf("kooflow-console health check %v, want %v", s.HealthCheck, wantCheck)
	}

	// kooflow reads the filled-in configuration as it was meant.
	cfg, err := wiring.FromEnv(consoleEnviron(t, p), wiring.Console)
	if err != nil {
		t.Fatalf("kooflow console refuses the compose configuration: %v", err)
	}
	cc := cfg.Console
	if string(cc.SessionKey) != sessionKey || cc.OIDC.ClientSecret != clientSecret || cc.OIDC.Issuer != *filled["KOOFLOW_CONSOLE_OIDC_ISSUER"] ||
		cc.OIDC.ClientID != "kooflow-console" || cfg.Codec == nil {
		t.Errorf("kooflow console reads %v (codec %v); want the secrets and the provider of .env", cc, cfg.Codec != nil)
	}
	if got := console.FormatRoles(cc.OIDC.Roles); got != "viewer=kooflow-viewers,operator=kooflow-operators,admin=kooflow-admins" {
		t.Errorf("roles %s, want .env.example's mapping", got)
	}
	if cc.URL != "http://localhost:8280" || cc.OIDC.RedirectURL() != "http://localhost:8280"+console.OIDCCallbackPath || cc.TemporalUIURL != temporalUIOrigin(t, p) {
		t.Errorf("console URL %s (redirect %s), Temporal UI %s; want the published port and the UI's origin", cc.URL, cc.OIDC.RedirectURL(), cc.TemporalUIURL)
	}

	// .env.example as it is: refused, naming what to fill in, no placeholder accepted.
	_, err = wiring.FromEnv(consoleEnviron(t, load(t)), wiring.Console)
	if err == nil {
		t.Fatal("kooflow console starts with .env.example's placeholders")
	}
	for _, want := range []string{wiring.EnvConsoleSessionKeyFile, wiring.EnvOIDCIssuer, wiring.EnvOIDCClientID, wiring.EnvOIDCClientSecretFile, "holds the placeholder"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("with .env.example's placeholders the error %q does not name %s", err, want)
		}
	}
}
