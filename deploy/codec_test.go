package deploy_test

import (
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/temporalio/ui-server/v2/plugins/fs_config_provider"

	"github.com/kooflow/kooflow/payloadcodec"
)

// The kooflow services that read the payload keys: the worker and the webhook encrypt,
// the codec server decrypts for the UI.
var payloadKeyServices = []string{"kooflow-worker", "kooflow-webhook", "kooflow-codec", "kooflow-console"}

// withEnv writes .env.example with the given variables replaced (or, for a nil value,
// removed) as the .env of a test and loads the stack with it.
func withEnv(t *testing.T, set map[string]*string) *types.Project {
	t.Helper()
	var lines []string
	for _, line := range strings.Split(readFile(t, filepath.Join(root, ".env.example")), "\n") {
		if name, _, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			if v, replaced := set[name]; replaced {
				if v == nil {
					continue
				}
				line = name + "=" + *v
			}
		}
		lines = append(lines, line)
	}
	envFile := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(envFile, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	// Only the .env file speaks: nothing from the environment the tests run in.
	for name := range set {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
	return loadWithEnv(t, envFile)
}

func ptr(s string) *string { return &s }

// secretFile is where a service finds secret source, as docker compose mounts it, and
// the mount's settings; ok is false when the service does not mount it.
func secretFile(p *types.Project, service, source string) (path string, cfg types.ServiceSecretConfig, ok bool) {
	for _, s := range p.Services[service].Secrets {
		if s.Source != source {
			continue
		}
		target := s.Target
		if target == "" {
			target = s.Source
		}
		if !strings.HasPrefix(target, "/") {
			target = "/run/secrets/" + target
		}
		return target, s, true
	}
	return "", types.ServiceSecretConfig{}, false
}

// materialise writes the secret a service reads at containerPath into a file of its own
// the way docker compose does for an environment secret (the variable's value, as is),
// with the mount's mode, and returns the service's environment with the path replaced.
func materialise(t *testing.T, p *types.Project, service, source string) func(string) string {
	t.Helper()
	path, cfg, ok := secretFile(p, service, source)
	if !ok {
		t.Fatalf("%s does not mount secret %s", service, source)
	}
	secret := p.Secrets[source]
	value, set := p.Environment[secret.Environment]
	if !set {
		t.Fatalf("%s: docker compose refuses to start it: %s is not set", service, secret.Environment)
	}
	mode := os.FileMode(0o444) // compose's default
	if cfg.Mode != nil {
		mode = os.FileMode(*cfg.Mode)
	}
	local := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(local, []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(local, mode); err != nil {
		t.Fatal(err)
	}
	env := p.Services[service].Environment
	return func(name string) string {
		v := env[name]
		if v == nil {
			return ""
		}
		if *v == path {
			return local
		}
		return *v
	}
}

// TestPayloadKeysReachTheProcesses: the worker, the webhook and the codec server get the
// payload keys as a secret file (never in their environment, where `docker inspect` shows
// it), readable by the image's non-root user alone (kooflow refuses a key file others can
// read); nothing turns encryption off; the rotation form .env.example describes gives
// kooflow both keys, new first; the placeholder, an empty value and a missing variable
// keep the services from starting.
func TestPayloadKeysReachTheProcesses(t *testing.T) {
	user, _ := dockerfileFinalStage(t)
	uid, gid, _ := strings.Cut(user, ":")
	k1 := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("1", 32)))
	k2 := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("2", 32)))
	// Double quotes and \n, as .env.example says for a rotation.
	p := withEnv(t, map[string]*string{"KOOFLOW_PAYLOAD_KEYS": ptr(`"k2:` + k2 + `\nk1:` + k1 + `"`)})
	if got := p.Secrets["kooflow-payload-keys"].Environment; got != "KOOFLOW_PAYLOAD_KEYS" {
		t.Fatalf("secret kooflow-payload-keys comes from %q, want KOOFLOW_PAYLOAD_KEYS", got)
	}
	for _, name := range payloadKeyServices {
		s := p.Services[name]
		for _, v := range []string{payloadcodec.EnvKeys, payloadcodec.EnvEncryption} {
			if _, set := s.Environment[v]; set {
				t.Errorf("%s sets %s; the keys come from the secret file and encryption stays on", name, v)
			}
		}
		path, cfg, ok := secretFile(p, name, "kooflow-payload-keys")
		if !ok {
			t.Errorf("%s does not get the payload keys", name)
			continue
		}
		if got := s.Environment[payloadcodec.EnvKeysFile]; got == nil || *got != path {
			t.Errorf("%s: %s = %v, want %s, where the secret is mounted", name, payloadcodec.EnvKeysFile, got, path)
		}
		if cfg.Mode == nil || os.FileMode(*cfg.Mode)&0o077 != 0 || cfg.UID != uid || cfg.GID != gid {
			t.Errorf("%s: the key file is mounted with uid %q gid %q mode %v; want %s:%s and no access for others", name, cfg.UID, cfg.GID, cfg.Mode, uid, gid)
		}
		codec, err := payloadcodec.FromEnv(materialise(t, p, name, "kooflow-payload-keys"))
		if err != nil {
			t.Errorf("%s: kooflow refuses the keys: %v", name, err)
			continue
		}
		if ids := codec.Keyring().KeyIDs(); !reflect.DeepEqual(ids, []string{"k2", "k1"}) {
			t.Errorf("%s: keys %v, want [k2 k1] (the new key encrypts, the old one still decrypts)", name, ids)
		}
	}

	for what, value := range map[string]*string{"the placeholder of .env.example": nil, "an empty value": ptr("")} {
		set := map[string]*string{}
		if value != nil {
			set["KOOFLOW_PAYLOAD_KEYS"] = value
		}
		p := withEnv(t, set)
		for _, name := range payloadKeyServices {
			if _, err := payloadcodec.FromEnv(materialise(t, p, name, "kooflow-payload-keys")); err == nil {
				t.Errorf("%s starts with %s as its payload keys", name, what)
			}
		}
	}
	// Missing altogether: docker compose refuses to create the secret file, and so to
	// start the services ("environment variable ... required by file ... is not set").
	p = withEnv(t, map[string]*string{"KOOFLOW_PAYLOAD_KEYS": nil})
	if _, set := p.Environment["KOOFLOW_PAYLOAD_KEYS"]; set {
		t.Error("KOOFLOW_PAYLOAD_KEYS is set although .env lacks it")
	}
}

// TestCodecServerService: kooflow-codec runs `kooflow codec-server` with the payload keys
// and its token from secret files (the placeholder token is refused), listens on every
// interface of its container for its port published on 127.0.0.1 only, has a health check,
// and answers CORS for the Temporal UI's origin as the browser reaches it, no other.
func TestCodecServerService(t *testing.T) {
	token := strings.Repeat("ab", 32)
	p := withEnv(t, map[string]*string{"KOOFLOW_CODEC_TOKEN": ptr(token),
		"KOOFLOW_PAYLOAD_KEYS": ptr("k1:" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("1", 32))))})
	s := p.Services["kooflow-codec"]
	if s.Build == nil || !reflect.DeepEqual([]string(s.Command), []string{"codec-server"}) {
		t.Errorf("kooflow-codec runs %v (built: %v), want the kooflow image's codec-server", s.Command, s.Build != nil)
	}
	if s.HealthCheck == nil || !strings.Contains(strings.Join(s.HealthCheck.Test, " "), "/healthz") {
		t.Error("kooflow-codec has no health check on /healthz")
	}
	for _, v := range []string{payloadcodec.EnvCodecToken} {
		if _, set := s.Environment[v]; set {
			t.Errorf("kooflow-codec sets %s in its environment; the token comes from a secret file", v)
		}
	}
	tokenPath, cfg, ok := secretFile(p, "kooflow-codec", "kooflow-codec-token")
	if !ok || p.Secrets["kooflow-codec-token"].Environment != "KOOFLOW_CODEC_TOKEN" {
		t.Fatal("kooflow-codec does not get its token from the secret kooflow-codec-token (KOOFLOW_CODEC_TOKEN)")
	}
	if got := s.Environment[payloadcodec.EnvCodecTokenFile]; got == nil || *got != tokenPath {
		t.Errorf("kooflow-codec: %s = %v, want %s", payloadcodec.EnvCodecTokenFile, got, tokenPath)
	}
	if cfg.Mode == nil || os.FileMode(*cfg.Mode)&0o077 != 0 {
		t.Errorf("the codec token is mounted readable by others (mode %v)", cfg.Mode)
	}
	getenv := func(name string) string {
		if name == payloadcodec.EnvCodecTokenFile || name == payloadcodec.EnvCodecToken {
			return materialise(t, p, "kooflow-codec", "kooflow-codec-token")(name)
		}
		return materialise(t, p, "kooflow-codec", "kooflow-payload-keys")(name)
	}
	got, err := payloadcodec.TokenFromEnv(getenv)
	if err != nil || got != token {
		t.Fatalf("the codec server reads token %q, %v; want the one in .env", got, err)
	}
	if _, err := payloadcodec.TokenFromEnv(materialise(t, load(t), "kooflow-codec", "kooflow-codec-token")); err == nil {
		t.Error("the codec server accepts the placeholder token of .env.example")
	}

	// Published on loopback only, on the port the process listens on in the container.
	listen := *s.Environment["KOOFLOW_CODEC_ADDR"]
	if host, _, err := splitHostPort(listen); err != nil || (host != "" && host != "0.0.0.0") {
		t.Errorf("KOOFLOW_CODEC_ADDR=%q, want every interface of the container", listen)
	}
	if len(s.Ports) != 1 || s.Ports[0].HostIP != "127.0.0.1" || s.Ports[0].Target != atoi(t, port(t, listen)) {
		t.Errorf("kooflow-codec publishes %+v; want its port %s on 127.0.0.1 only", s.Ports, port(t, listen))
	}

	// The real handler with this configuration: CORS for the UI's origin only, nothing
	// decoded without the token.
	origins := strings.Split(*s.Environment["KOOFLOW_CODEC_UI_ORIGINS"], ",")
	codec, err := payloadcodec.FromEnv(getenv)
	if err != nil {
		t.Fatal(err)
	}
	h, err := payloadcodec.NewHandler(payloadcodec.HandlerOptions{Codec: codec, Token: got, AllowedOrigins: origins,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("the codec server refuses its UI origins %v: %v", origins, err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	uiOrigin := temporalUIOrigin(t, p)
	for origin, allowed := range map[string]bool{uiOrigin: true, "http://evil.example": false} {
		req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/decode", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin") == origin; got != allowed {
			t.Errorf("preflight from %s: allowed %v, want %v", origin, got, allowed)
		}
	}
	resp, err := http.Post(srv.URL+"/decode", "application/json", strings.NewReader(`{"payloads":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("an unauthenticated /decode got %d, want 401", resp.StatusCode)
	}
}

func splitHostPort(addr string) (string, string, error) {
	u, err := url.Parse("tcp://" + addr)
	if err != nil {
		return "", "", err
	}
	return u.Hostname(), u.Port(), nil
}

// temporalUIOrigin is the origin a browser opens the Temporal UI at: localhost and the
// port published on the host.
func temporalUIOrigin(t *testing.T, p *types.Project) string {
	t.Helper()
	ports := p.Services["temporal-ui"].Ports
	if len(ports) != 1 {
		t.Fatalf("temporal-ui publishes %d ports", len(ports))
	}
	return "http://localhost:" + ports[0].Published
}

// TestTemporalUIUsesTheCodecServer renders the configuration template of the pinned UI
// image (config/docker.yaml of github.com/temporalio/ui-server/v2 at go.mod's version,
// the file the image renders at start) with temporal-ui's environment, with the UI
// server's own loader: the codec endpoint is kooflow-codec as the browser reaches it,
// with credentials (the sign-in cookie), and the error shown without it links to the
// sign-in page; write actions are off. The UI's origin, its CORS origins and the codec server's allowed origins
// are the same, and the codec server is on the UI's host: its SameSite=Strict cookie is
// sent only within the same site.
func TestTemporalUIUsesTheCodecServer(t *testing.T) {
	p := load(t)
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/temporalio/ui-server/v2").Output()
	if err != nil {
		t.Fatalf("find the UI server module: %v", err)
	}
	template := readFile(t, filepath.Join(strings.TrimSpace(string(out)), "config", "docker.yaml"))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "docker.yaml"), []byte(template), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "TEMPORAL_") {
			t.Setenv(name, "")
		}
	}
	ui := p.Services["temporal-ui"]
	for name, v := range ui.Environment {
		if v != nil {
			t.Setenv(name, *v)
		}
	}
	cfg, err := fs_config_provider.LoadConfig(dir, "docker")
	if err != nil {
		t.Fatalf("the UI image cannot render its configuration with temporal-ui's environment: %v", err)
	}

	codecSvc := p.Services["kooflow-codec"]
	published := codecSvc.Ports[0].Published
	endpoint, err := url.Parse(cfg.Codec.Endpoint)
	if err != nil || endpoint.Scheme != "http" || endpoint.Port() != published || endpoint.Path != "" {
		t.Fatalf("the UI's codec endpoint is %q; want http://<host>:%s, kooflow-codec's published port", cfg.Codec.Endpoint, published)
	}
	if !cfg.Codec.IncludeCredentials {
		t.Error("the UI does not send credentials to the codec server: the sign-in cookie would never reach it")
	}
	if !cfg.DisableWriteActions {
		t.Error("the UI's write actions are on: a click on Terminate or Cancel ends an expiry outside kooflow's rules (deploy/RUNBOOK.md)")
	}
	if cfg.Codec.PassAccessToken {
		t.Error("the UI passes its access token to the codec server, which does not take it")
	}
	if cfg.Codec.DefaultErrorMessage == "" || cfg.Codec.DefaultErrorLink != cfg.Codec.Endpoint+"/login" {
		t.Errorf("codec error message %q, link %q; want a message and the sign-in page %s/login",
			cfg.Codec.DefaultErrorMessage, cfg.Codec.DefaultErrorLink, cfg.Codec.Endpoint)
	}
	if want := *ui.Environment["TEMPORAL_CODEC_DEFAULT_ERROR_MESSAGE"]; cfg.Codec.DefaultErrorMessage != want {
		t.Errorf("the UI renders the codec error message as %q, from %q", cfg.Codec.DefaultErrorMessage, want)
	}

	uiOrigin := temporalUIOrigin(t, p)
	u, _ := url.Parse(uiOrigin)
	if endpoint.Hostname() != u.Hostname() {
		t.Errorf("codec endpoint host %s, UI host %s: a different site, so the SameSite=Strict sign-in cookie is not sent", endpoint.Hostname(), u.Hostname())
	}
	if !reflect.DeepEqual(cfg.CORS.AllowOrigins, []string{uiOrigin}) {
		t.Errorf("the UI's CORS origins are %v, want [%s]", cfg.CORS.AllowOrigins, uiOrigin)
	}
	if got := *codecSvc.Environment["KOOFLOW_CODEC_UI_ORIGINS"]; got != uiOrigin {
		t.Errorf("the codec server allows origin %q; the UI is at %s", got, uiOrigin)
	}
}
