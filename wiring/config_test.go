package wiring

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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
