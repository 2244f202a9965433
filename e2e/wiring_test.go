package e2e

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/operatorservice/v1"

	"github.com/kooflow/kooflow/devstack"
	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/koodrive/sandbox"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/wiring"
)

// TestProductionWiring runs the worker and the webhook exactly as `kooflow worker` and
// `kooflow webhook` do — a Config from wiring.FromEnv over the processes' environment,
// then wiring.Start — against an embedded
// Temporal on SQLite whose namespace lacks kooflow's search attributes, with kooflow's
// store on SQLite and KooDrive (the sandbox) taking app signatures. A signed KooGallery
// delivery goes through the webhook, the intake outbox and the relay to a workflow the
// worker takes to reserved; the test then checks what each process reports.
func TestProductionWiring(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stack, err := devstack.Start(ctx, devstack.Options{DataDir: filepath.Join(dir, "temporal"), UIPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stack.Stop() })

	const appID, appSecret = "kooflow-e2e", "e2e-app-secret-0123456789"
	kd := sandbox.New(sandbox.Options{UserID: kooDriveUser, Apps: map[string]string{appID: appSecret}})
	kdSrv := httptest.NewServer(kd.Handler())
	t.Cleanup(kdSrv.Close)

	common := []string{"TEMPORAL_CONFIG_FILE=" + filepath.Join(dir, "no-temporal.toml"), "TEMPORAL_ADDRESS=" + stack.HostPort(),
		"TEMPORAL_NAMESPACE=" + stack.Namespace(), "KOOFLOW_DB=sqlite:" + filepath.Join(dir, "kooflow.db"), "KOOFLOW_DATA_DIR=" + dir,
		"KOOFLOW_METRICS_ADDR=127.0.0.1:0", "KOOFLOW_PAYLOAD_KEYS=" + newPayloadKey(t, "wired")}
	logs := &logBuffer{}
	worker := startWiredProcess(t, wiring.Worker, append(common, "KOODRIVE_BASE_URL="+kdSrv.URL, "KOODRIVE_USER_ID="+kooDriveUser,
		"KOODRIVE_APP_ID="+appID, "KOODRIVE_APP_SECRET="+appSecret), logs)
	webhook := startWiredProcess(t, wiring.Webhook, append(common, "KOOGALLERY_KEY="+testKey, "SMARTHUB_API_KEY="+smartHubKey,
		"KOOFLOW_WEBHOOK_ADDR=127.0.0.1:0"), logs)

	waitHTTP(t, webhook.WebhookURL+"/readyz", 30*time.Second)
	waitHTTP(t, worker.MetricsURL+"/readyz", 30*time.Second)
	st := webhook.Parts.Store
	if _, err := st.UpsertSubscriptions(ctx, []store.Subscription{{InstanceID: "inst-wired", CarrierUserID: "user-wired", PackageID: "pkg"}}); err != nil {
		t.Fatal(err)
	}
	deliverAccepted(t, strings.TrimPrefix(webhook.WebhookURL, "http://"), "inst-wired")
	waitReserved(t, st, 1, "after a delivery through the production wiring")

	notes := kd.Notifications()
	if len(notes) != 1 || notes[0].CarrierUserID != "user-wired" || notes[0].PackageID != "pkg" {
		t.Fatalf("KooDrive received %+v, want one notification for user-wired", notes)
	}
	// The worker process registered the search attributes the namespace lacked.
	attrs, err := worker.Client.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: stack.Namespace()})
	if err != nil {
		t.Fatal(err)
	}
	for name := range starter.SearchAttributes() {
		if _, ok := attrs.GetCustomAttributes()[name]; !ok {
			t.Errorf("search attribute %s is not registered", name)
		}
	}
	// Each process reports its own part on its own /metrics, the SDK's metrics included.
	waitMetric(t, worker.MetricsURL, `kooflow_koodrive_requests_total{endpoint="`+koodrive.NotifyPackageExpirePath+`",outcome="success"} 1`)
	waitMetric(t, worker.MetricsURL, `temporal_activity_execution_latency`)
	waitMetric(t, webhook.MetricsURL, `kooflow_intake_relayed_total{kind="start",outcome="started"} 1`)
	waitMetric(t, webhook.MetricsURL, `temporal_request`)

	worker.Stop()
	webhook.Stop()
	text := logs.String()
	for _, want := range []string{`"msg":"worker running"`, `"msg":"webhook listening"`} {
		if !strings.Contains(text, want) {
			t.Errorf("the log has no %s line", want)
		}
	}
	for _, secret := range []string{testKey, smartHubKey, appSecret} {
		if strings.Contains(text, secret) {
			t.Errorf("the log contains a secret")
		}
	}
}

// startWiredProcess configures a process from env with wiring.FromEnv and starts it as
// its command does; the test's cleanup stops it (Stop may be called before).
func startWiredProcess(t *testing.T, name wiring.Role, env []string, logs io.Writer) *wiring.Process {
	t.Helper()
	cfg, err := wiring.FromEnv(env, name)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil)).With("process", string(name))
	p, err := wiring.Start(t.Context(), name, cfg)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(p.Stop)
	return p
}

// waitMetric waits until metricsURL/metrics has a line starting with want: the SDK's
// metrics reach the registry on its reporting interval.
func waitMetric(t *testing.T, metricsURL, want string) {
	t.Helper()
	line := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want))
	deadline := time.Now().Add(30 * time.Second)
	var body []byte
	for time.Now().Before(deadline) {
		resp, err := http.Get(metricsURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if line.Match(body) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s/metrics has no line %s:\n%.3000s", metricsURL, want, body)
}
