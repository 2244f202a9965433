package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/kooflow/kooflow/store"
)

// consoleVars are every variable `kooflow console` reads; the tests clear them first.
var consoleVars = []string{"KOOFLOW_DB", "KOOFLOW_PAYLOAD_KEYS", "KOOFLOW_PAYLOAD_KEYS_FILE", "KOOFLOW_PAYLOAD_ENCRYPTION",
	"KOOFLOW_CONSOLE_ADDR", "KOOFLOW_CONSOLE_URL", "KOOFLOW_CONSOLE_SESSION_KEY", "KOOFLOW_CONSOLE_SESSION_KEY_FILE",
	"KOOFLOW_CONSOLE_OIDC_ISSUER", "KOOFLOW_CONSOLE_OIDC_CLIENT_ID", "KOOFLOW_CONSOLE_OIDC_CLIENT_SECRET",
	"KOOFLOW_CONSOLE_OIDC_CLIENT_SECRET_FILE", "KOOFLOW_CONSOLE_OIDC_ROLE_CLAIM", "KOOFLOW_CONSOLE_OIDC_ROLES",
	"KOOFLOW_CONSOLE_OIDC_NAME_CLAIM", "KOOFLOW_CONSOLE_OIDC_SCOPES", "KOOFLOW_CONSOLE_OIDC_PROVIDER_NAME", "KOOFLOW_TEMPORAL_UI_URL",
	"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"}

// clearConsoleEnv empties every console variable for the test, and points the Temporal
// profile file at nothing.
func clearConsoleEnv(t *testing.T) {
	for _, v := range consoleVars {
		t.Setenv(v, "")
	}
	t.Setenv("TEMPORAL_CONFIG_FILE", filepath.Join(t.TempDir(), "absent.toml"))
}

// TestConsoleNamesWhatToSet: `kooflow console` without a session key and without OIDC
// does not start, and names what to set.
func TestConsoleNamesWhatToSet(t *testing.T) {
	clearConsoleEnv(t)
	t.Setenv("KOOFLOW_DB", "sqlite:"+filepath.Join(t.TempDir(), "kooflow.db"))
	t.Setenv("KOOFLOW_PAYLOAD_ENCRYPTION", "off")
	_, err := run(t, "console")
	if err == nil {
		t.Fatal("kooflow console started without a session key or a way to sign in")
	}
	for _, want := range []string{"KOOFLOW_CONSOLE_URL", "KOOFLOW_CONSOLE_SESSION_KEY or KOOFLOW_CONSOLE_SESSION_KEY_FILE",
		"KOOFLOW_CONSOLE_OIDC_ISSUER", "KOOFLOW_CONSOLE_OIDC_CLIENT_ID", "KOOFLOW_CONSOLE_OIDC_CLIENT_SECRET", "KOOFLOW_CONSOLE_OIDC_ROLES", "no other way in"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}

	t.Setenv("KOOFLOW_CONSOLE_URL", "https://kooflow.carrier.example")
	t.Setenv("KOOFLOW_CONSOLE_SESSION_KEY", strings.Repeat("k", 40))
	t.Setenv("KOOFLOW_CONSOLE_OIDC_ISSUER", "https://sso.carrier.example")
	_, err = run(t, "console")
	if err == nil || !strings.Contains(err.Error(), "KOOFLOW_CONSOLE_OIDC_CLIENT_ID, KOOFLOW_CONSOLE_OIDC_CLIENT_SECRET or KOOFLOW_CONSOLE_OIDC_CLIENT_SECRET_FILE, KOOFLOW_CONSOLE_OIDC_ROLES") ||
		strings.Contains(err.Error(), strings.Repeat("k", 40)) {
		t.Errorf("with only an issuer: %v", err)
	}
}

// operatorUser is the identity provider's user for the process test: an operator by
// their groups claim.
type operatorUser struct{}

func (operatorUser) ID() string { return "u-42" }
func (operatorUser) Userinfo([]string) ([]byte, error) {
	return json.Marshal(map[string]string{"sub": "u-42"})
}
func (operatorUser) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	return &struct {
		*mockoidc.IDTokenClaims
		PreferredUsername string   `json:"preferred_username"`
		Groups            []string `json:"groups"`
	}{base, "olga", []string{"kooflow-operators"}}, nil
}

// TestConsoleProcess runs `kooflow console` as production does, with Temporal down: it
// serves /healthz, an operator signs in through the identity provider (over real HTTP)
// and sees the overview under their name and role, and a retry fails at once saying
// Temporal does not answer — audited under their name; SIGTERM (the context) stops it.
func TestConsoleProcess(t *testing.T) {
	clearConsoleEnv(t)
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "kooflow.db")
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := st.UpsertSubscriptions(ctx, []store.Subscription{{InstanceID: "inst-1", OrderID: "order-1", CarrierUserID: "user-1", PackageID: "pkg-1"}}); err != nil {
		t.Fatal(err)
	}
	sub, err := st.SubscriptionByInstance(ctx, "inst-1")
	if err != nil {
		t.Fatal(err)
	}
	const id = "expire/koogallery/inst-1/current"
	if _, err := st.AcceptExpiry(ctx, store.ExpiryIntent{
		Expiration: store.Expiration{WorkflowID: id, Source: "koogallery", Subject: "inst-1", Period: "current", SubscriptionID: sub.ID, CarrierUserID: "user-1", PackageID: "pkg-1"},
		Input:      []byte(`{}`),
		Delivery:   store.Delivery{Source: "koogallery", Activity: "expireInstance", Subject: "inst-1", Answer: "000000", Request: "instanceId=inst-1"},
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetExpirationState(ctx, id, store.StateStalled, "KooDrive rejected the notification"); err != nil {
		t.Fatal(err)
	}
	st.Close()

	idp, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Shutdown() })
	idp.QueueUser(operatorUser{})

	consoleAddr, temporalAddr := freeAddr(t), freeAddr(t) // nothing listens on temporalAddr
	consoleURL := "http://" + consoleAddr
	keyFile := filepath.Join(dir, "session-key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("s", 48)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"KOOFLOW_DB": dsn, "KOOFLOW_PAYLOAD_ENCRYPTION": "off", "TEMPORAL_ADDRESS": temporalAddr,
		"KOOFLOW_CONSOLE_ADDR": consoleAddr, "KOOFLOW_CONSOLE_URL": consoleURL, "KOOFLOW_CONSOLE_SESSION_KEY_FILE": keyFile,
		"KOOFLOW_CONSOLE_OIDC_ISSUER": idp.Issuer(), "KOOFLOW_CONSOLE_OIDC_CLIENT_ID": idp.ClientID,
		"KOOFLOW_CONSOLE_OIDC_CLIENT_SECRET": idp.ClientSecret, "KOOFLOW_CONSOLE_OIDC_ROLES": "viewer=kooflow-viewers,operator=kooflow-operators",
		"KOOFLOW_CONSOLE_OIDC_PROVIDER_NAME": "Carrier SSO",
	} {
		t.Setenv(k, v)
	}

	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		cmd := newRootCommand()
		cmd.SetArgs([]string{"console"})
		cmd.SetOut(io.Discard)
		done <- cmd.ExecuteContext(runCtx)
	}()
	stopped := false
	t.Cleanup(func() {
		if stopped {
			return
		}
		stop()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("kooflow console did not stop")
		}
	})

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	get := func(target string) (*http.Response, string) {
		t.Helper()
		resp, err := browser.Get(target)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(consoleURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("kooflow console exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("kooflow console never answered /healthz")
		}
		time.Sleep(50 * time.Millisecond)
	}

	if _, body := get(consoleURL + "/"); !strings.Contains(body, "Sign in with Carrier SSO") {
		t.Fatalf("signed out, the console shows: %s", body)
	}
	// The button, the provider, the callback, the overview: redirects followed as a browser does.
	resp, body := get(consoleURL + "/signin/oidc")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/" || !strings.Contains(body, "olga · operator") || !strings.Contains(body, "1 expiration(s) stalled") {
		t.Fatalf("after signing in: %d at %s: %s", resp.StatusCode, resp.Request.URL, body)
	}

	_, page := get(consoleURL + "/expiration/retry?id=" + url.QueryEscape(id))
	token := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if token == nil {
		t.Fatalf("no confirmation form: %s", page)
	}
	start := time.Now()
	resp, err = browser.PostForm(consoleURL+"/expiration/retry", url.Values{"id": {id}, "csrf": {token[1]}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(raw), "Temporal at "+temporalAddr+" (namespace default) does not answer") {
		t.Fatalf("a retry with Temporal down answered %d: %s", resp.StatusCode, raw)
	}
	if waited := time.Since(start); waited > 15*time.Second {
		t.Errorf("the operator waited %s to learn that Temporal is down", waited)
	}

	st, err = store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	entries, err := st.AuditEntries(context.Background(), store.AuditFilter{Actor: "olga", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]string{}
	for _, e := range entries {
		actions[e.Action] = e.Result
	}
	if actions["console sign-in"] != store.AuditOK || actions["retry"] != store.AuditFailed {
		t.Errorf("olga's audit entries %+v; want her sign-in and the failed retry", entries)
	}

	stop()
	stopped = true
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("kooflow console stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("kooflow console did not stop")
	}
	if _, err := http.Get(consoleURL + "/healthz"); err == nil {
		t.Error("the console still answers after stopping")
	}
}
