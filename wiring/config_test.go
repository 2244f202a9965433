package wiring

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/payloadcodec"
	"github.com/kooflow/kooflow/smarthub"
)

// noConfigFile keeps the machine's Temporal profile file (~/.config/temporalio) out of a test.
func noConfigFile(t *testing.T) string {
	return "TEMPORAL_CONFIG_FILE=" + filepath.Join(t.TempDir(), "absent.toml")
}

// newKey returns a fresh payload key entry, id:base64key.
func newKey(t *testing.T, id string) string {
	t.Helper()
	entry, err := payloadcodec.NewKeyEntry(id)
	if err != nil {
		t.Fatal(err)
	}
	return entry
}

func TestFromEnvWebhookDefaultsListenOnLoopback(t *testing.T) {
	cfg, err := FromEnv([]string{noConfigFile(t), "KOOFLOW_DB=sqlite:/tmp/k.db", "KOOGALLERY_KEY=k", "KOOFLOW_PAYLOAD_ENCRYPTION=off"}, Webhook)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Codec != nil {
		t.Fatal("KOOFLOW_PAYLOAD_ENCRYPTION=off, yet a payload codec was configured")
	}
	if cfg.WebhookAddr != "127.0.0.1:8080" || cfg.MetricsAddr != "127.0.0.1:9090" {
		t.Fatalf("webhook %q, metrics %q; want 127.0.0.1:8080 and 127.0.0.1:9090", cfg.WebhookAddr, cfg.MetricsAddr)
	}
	if cfg.Temporal.HostPort != "127.0.0.1:7233" || cfg.Temporal.Namespace != "default" {
		t.Fatalf("Temporal %q namespace %q; want the local dev server", cfg.Temporal.HostPort, cfg.Temporal.Namespace)
	}
	if cfg.SmartHubSignatureMode != smarthub.SignatureLog || cfg.DataDir != "./kooflow-data" {
		t.Fatalf("signature mode %q, data dir %q", cfg.SmartHubSignatureMode, cfg.DataDir)
	}
	if !strings.HasPrefix(cfg.RelayOwner, "webhook@") {
		t.Fatalf("relay owner %q, want webhook@host:pid", cfg.RelayOwner)
	}
}

func TestFromEnvTakesEveryVariable(t *testing.T) {
	cfg, err := FromEnv([]string{noConfigFile(t), "KOOFLOW_DB=postgres://db/kooflow", "KOOGALLERY_KEY=k", "SMARTHUB_API_KEY=s",
		"SMARTHUB_SIGNATURE_MODE=enforce", "KOOFLOW_WEBHOOK_ADDR=:8080", "KOOFLOW_METRICS_ADDR=:9090", "KOOFLOW_DATA_DIR=/data",
		"TEMPORAL_ADDRESS=temporal:7233", "TEMPORAL_NAMESPACE=kooflow", "KOOFLOW_PAYLOAD_KEYS=" + newKey(t, "2026-11") + "," + newKey(t, "2026-05")}, Webhook)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Codec == nil || cfg.Codec.Keyring().EncryptionKeyID() != "2026-11" || !slices.Equal(cfg.Codec.Keyring().KeyIDs(), []string{"2026-11", "2026-05"}) {
		t.Fatalf("payload codec %+v: want keys 2026-11 (encrypting) and 2026-05", cfg.Codec)
	}
	if opts := ClientOptions(cfg, nil); opts.DataConverter == nil || opts.FailureConverter == nil {
		t.Fatal("client options without the codec's converters")
	}
	want := []string{"postgres://db/kooflow", "k", "s", "enforce", ":8080", ":9090", "/data"}
	got := []string{cfg.DB, cfg.KooGalleryKey, cfg.SmartHubAPIKey, string(cfg.SmartHubSignatureMode), cfg.WebhookAddr, cfg.MetricsAddr, cfg.DataDir}
	if !slices.Equal(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if cfg.Temporal.HostPort != "temporal:7233" || cfg.Temporal.Namespace != "kooflow" {
		t.Fatalf("Temporal %q namespace %q", cfg.Temporal.HostPort, cfg.Temporal.Namespace)
	}

	worker, err := FromEnv([]string{noConfigFile(t), "KOOFLOW_DB=sqlite:/tmp/k.db", "KOODRIVE_BASE_URL=https://kd", "KOODRIVE_USER_ID=u",
		"KOODRIVE_APP_ID=app", "KOODRIVE_APP_SECRET=not-in-the-config-description", "KOOFLOW_PAYLOAD_KEYS=" + newKey(t, "k1")}, Worker)
	if err != nil {
		t.Fatal(err)
	}
	if worker.KooDrive.BaseURL != "https://kd" || worker.KooDrive.UserID != "u" || worker.KooDrive.Auth == nil {
		t.Fatalf("KooDrive %+v", worker.KooDrive)
	}
	if worker.WebhookAddr != "" || worker.KooGalleryKey != "" {
		t.Fatalf("the worker got webhook settings: %q %q", worker.WebhookAddr, worker.KooGalleryKey)
	}
}

func TestFromEnvNamesEveryProblemAtOnce(t *testing.T) {
	_, err := FromEnv([]string{noConfigFile(t), "SMARTHUB_SIGNATURE_MODE=strict"}, Webhook)
	if err == nil {
		t.Fatal("no error without KOOFLOW_DB and KOOGALLERY_KEY")
	}
	for _, want := range []string{"KOOFLOW_DB, KOOGALLERY_KEY", `SMARTHUB_SIGNATURE_MODE "strict"`,
		"payload encryption needs keys: set KOOFLOW_PAYLOAD_KEYS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	_, err = FromEnv([]string{noConfigFile(t), "KOOGALLERY_KEY=k"}, Worker)
	if err == nil {
		t.Fatal("no error for a worker without KOOFLOW_DB and KooDrive settings")
	}
	for _, want := range []string{"KOOFLOW_DB", "KOODRIVE_BASE_URL", "KOODRIVE_USER_ID"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// workerEnv is a complete worker environment in app mode, without the app secret.
func workerEnv(t *testing.T, extra ...string) []string {
	return append([]string{noConfigFile(t), "KOOFLOW_DB=sqlite:/tmp/k.db", "KOODRIVE_BASE_URL=https://kd", "KOODRIVE_USER_ID=u",
		"KOODRIVE_AUTH=app", "KOODRIVE_APP_ID=app-1", "KOOFLOW_PAYLOAD_KEYS=" + newKey(t, "k1")}, extra...)
}

// authorization is the Authorization header signer gives a fixed request.
func authorization(t *testing.T, signer koodrive.Signer) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "https://kd/koodrive/ose/v1/carrier/users/notifyPackageExpire", nil)
	req.Header.Set("X-Date", "20260101T000000Z")
	req.Header.Set("X-User-Id", "u")
	if err := signer.Sign(req, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	return req.Header.Get("Authorization")
}

// TestFromEnvReadsTheAppSecretFile: in compose the app secret reaches the worker as a
// mounted secret file (KOODRIVE_APP_SECRET_FILE), never in its environment; the worker
// signs with the file's content, surrounding white space (a trailing newline) trimmed.
func TestFromEnvReadsTheAppSecretFile(t *testing.T) {
	const secret = "s3cret-app-secret"
	file := filepath.Join(t.TempDir(), "koodrive-app-secret")
	if err := os.WriteFile(file, []byte("  "+secret+"\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	cfg, err := FromEnv(workerEnv(t, "KOODRIVE_APP_SECRET_FILE="+file), Worker)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := authorization(t, cfg.KooDrive.Auth), authorization(t, koodrive.NewAppSignature("app-1", secret)); got != want {
		t.Fatalf("signed %q, want %q (the secret from the file, trimmed)", got, want)
	}
}

// TestFromEnvAppSecretFileProblems: exactly one of KOODRIVE_APP_SECRET and
// KOODRIVE_APP_SECRET_FILE; a missing, empty or multi-line file stops the worker with an
// error that names the variable and never shows the secret.
func TestFromEnvAppSecretFileProblems(t *testing.T) {
	const secret = "s3cret-app-secret"
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o400); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write("good", secret)
	cases := []struct {
		name string
		env  []string
		want []string // every one must appear in the error
	}{
		{"neither", nil, []string{"KOODRIVE_APP_SECRET or KOODRIVE_APP_SECRET_FILE"}},
		{"both", []string{"KOODRIVE_APP_SECRET=" + secret, "KOODRIVE_APP_SECRET_FILE=" + good},
			[]string{"set only one of KOODRIVE_APP_SECRET and KOODRIVE_APP_SECRET_FILE"}},
		{"missing file", []string{"KOODRIVE_APP_SECRET_FILE=" + filepath.Join(dir, "absent")},
			[]string{"KOODRIVE_APP_SECRET_FILE", filepath.Join(dir, "absent")}},
		{"empty file", []string{"KOODRIVE_APP_SECRET_FILE=" + write("empty", " \n\t\n")},
			[]string{"KOODRIVE_APP_SECRET_FILE", "is empty"}},
		{"two lines", []string{"KOODRIVE_APP_SECRET_FILE=" + write("two", secret+"\n"+secret+"\n")},
			[]string{"KOODRIVE_APP_SECRET_FILE", "more than one line"}},
	}
	for _, c := range cases {
		_, err := FromEnv(workerEnv(t, c.env...), Worker)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not name %q", c.name, err, w)
			}
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error %q shows the secret", c.name, err)
		}
	}
}

// TestRecordRetention: KOOFLOW_RECORD_RETENTION takes days or a duration, defaults to
// DefaultRecordRetention, and refuses anything else or less than a day, naming itself.
func TestRecordRetention(t *testing.T) {
	for in, want := range map[string]time.Duration{"": DefaultRecordRetention, "400d": 400 * 24 * time.Hour, "36h": 36 * time.Hour} {
		if got, err := ParseRetention(in); err != nil || got != want {
			t.Errorf("ParseRetention(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"7", "1h", "a year", "-5d", "0d"} {
		if _, err := ParseRetention(in); err == nil || !strings.Contains(err.Error(), "KOOFLOW_RECORD_RETENTION") {
			t.Errorf("ParseRetention(%q) = %v, want an error naming the variable", in, err)
		}
	}
}

// TestFromEnvWorkerStopTimeout: KOOFLOW_WORKER_STOP_TIMEOUT defaults to
// DefaultWorkerStopTimeout, takes a duration, and refuses anything else naming itself.
func TestFromEnvWorkerStopTimeout(t *testing.T) {
	base := []string{noConfigFile(t), "KOOFLOW_DB=sqlite:/tmp/k.db", "KOODRIVE_BASE_URL=https://kd", "KOODRIVE_USER_ID=u",
		"KOODRIVE_ACCESS_TOKEN=t", "KOOFLOW_PAYLOAD_ENCRYPTION=off"}
	cfg, err := FromEnv(base, Worker)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.WorkerOptions.WorkerStopTimeout; got != DefaultWorkerStopTimeout {
		t.Fatalf("stop timeout %s, want the default %s", got, DefaultWorkerStopTimeout)
	}
	cfg, err = FromEnv(append(base, "KOOFLOW_WORKER_STOP_TIMEOUT=2m"), Worker)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.WorkerOptions.WorkerStopTimeout; got != 2*time.Minute {
		t.Fatalf("stop timeout %s, want 2m", got)
	}
	for _, bad := range []string{"30", "-5s", "0s"} {
		_, err := FromEnv(append(base, "KOOFLOW_WORKER_STOP_TIMEOUT="+bad), Worker)
		if err == nil || !strings.Contains(err.Error(), "KOOFLOW_WORKER_STOP_TIMEOUT") {
			t.Errorf("KOOFLOW_WORKER_STOP_TIMEOUT=%s: error %v, want one naming the variable", bad, err)
		}
	}
}

// TestKooDriveProbeInterval: the worker's probe of KooDrive's service status runs every
// 5 minutes unless KOOFLOW_KOODRIVE_PROBE_INTERVAL says another duration or off; anything
// else is refused, naming the variable and what it takes.
func TestKooDriveProbeInterval(t *testing.T) {
	base := []string{noConfigFile(t), "KOOFLOW_DB=sqlite:/tmp/k.db", "KOODRIVE_BASE_URL=https://kd", "KOODRIVE_USER_ID=u",
		"KOODRIVE_ACCESS_TOKEN=t", "KOOFLOW_PAYLOAD_ENCRYPTION=off"}
	for value, want := range map[string]time.Duration{"": DefaultKooDriveProbe, "2m": 2 * time.Minute, "off": -1} {
		env := base
		if value != "" {
			env = append(append([]string{}, base...), "KOOFLOW_KOODRIVE_PROBE_INTERVAL="+value)
		}
		cfg, err := FromEnv(env, Worker)
		if err != nil || cfg.KooDriveProbe != want {
			t.Errorf("KOOFLOW_KOODRIVE_PROBE_INTERVAL=%q: %v, %v; want %v", value, cfg.KooDriveProbe, err, want)
		}
	}
	_, err := FromEnv(append(append([]string{}, base...), "KOOFLOW_KOODRIVE_PROBE_INTERVAL=0"), Worker)
	if err == nil || !strings.Contains(err.Error(), `KOOFLOW_KOODRIVE_PROBE_INTERVAL "0"`) || !strings.Contains(err.Error(), "or off") {
		t.Errorf("KOOFLOW_KOODRIVE_PROBE_INTERVAL=0: %v; want a refusal naming it and off", err)
	}
}

// TestMaxActiveExpiries: the webhook's relay holds Temporal to the default admission cap
// unless KOOFLOW_MAX_ACTIVE_EXPIRIES names another number of expiries or off; anything
// else is refused, naming the variable and both forms.
func TestMaxActiveExpiries(t *testing.T) {
	base := []string{noConfigFile(t), "KOOFLOW_DB=sqlite:/tmp/k.db", "KOOGALLERY_KEY=k", "KOOFLOW_PAYLOAD_ENCRYPTION=off"}
	for value, want := range map[string]int{"": 0, "250": 250, "off": -1} {
		env := base
		if value != "" {
			env = append(append([]string{}, base...), MaxActiveEnv+"="+value)
		}
		cfg, err := FromEnv(env, Webhook)
		if err != nil || cfg.MaxActive != want {
			t.Errorf("%s=%q: %v, %v; want %v", MaxActiveEnv, value, cfg.MaxActive, err, want)
		}
	}
	for _, bad := range []string{"0", "-5", "many"} {
		_, err := FromEnv(append(append([]string{}, base...), MaxActiveEnv+"="+bad), Webhook)
		if err == nil || !strings.Contains(err.Error(), MaxActiveEnv+` "`+bad+`"`) || !strings.Contains(err.Error(), "or off") {
			t.Errorf("%s=%s: %v; want a refusal naming it and off", MaxActiveEnv, bad, err)
		}
	}
}
