package e2e

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kooflow/kooflow/devapp"
	"github.com/kooflow/kooflow/koodrive/sandbox"
	"github.com/kooflow/kooflow/koogallery"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
)

const (
	testKey       = "e2e-seller-key-0123456789"
	smartHubKey   = "e2e-smarthub-api-key"
	kooDriveToken = "e2e-token"
	kooDriveUser  = "e2e-koodrive-user"
)

// env is one kooflow under test with its own KooDrive sandbox, which outlives restarts.
type env struct {
	t       *testing.T
	dataDir string
	db      string
	kd      *sandbox.Sandbox
	kdURL   string
	app     *devapp.App
	logs    *logBuffer
	// configure adjusts the options of every start.
	configure func(*devapp.Options)
}

func newEnv(t *testing.T) *env { return newEnvWith(t, nil) }

// newEnvWith starts kooflow with options adjusted by configure.
func newEnvWith(t *testing.T, configure func(*devapp.Options)) *env {
	t.Helper()
	kd := sandbox.New(sandbox.Options{AccessToken: kooDriveToken, UserID: kooDriveUser})
	srv := httptest.NewServer(kd.Handler())
	t.Cleanup(srv.Close)
	dataDir := t.TempDir()
	db := "sqlite:" + filepath.Join(dataDir, "kooflow.db")
	if os.Getenv(storetest.PostgresEnv) != "" {
		db = storetest.PostgresDSN(t)
	}
	e := &env{t: t, dataDir: dataDir, db: db, kd: kd, kdURL: srv.URL, logs: &logBuffer{}, configure: configure}
	e.start()
	t.Cleanup(e.stop)
	return e
}

func (e *env) start() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	opts := devapp.Options{
		DataDir: e.dataDir, DB: e.db, UIPort: -1, WebhookAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0",
		KooGalleryKey: testKey, SmartHubAPIKey: smartHubKey, KooDriveURL: e.kdURL, KooDriveToken: kooDriveToken, KooDriveUser: kooDriveUser,
		Logger: logger, Schedule: starter.ScheduleConfig{PollInterval: time.Second},
		// The tests count every call KooDrive receives; the worker's periodic probe of its
		// service status is tested on its own (wiring).
		KooDriveProbe: -1,
	}
	if e.configure != nil {
		e.configure(&opts)
	}
	if os.Getenv(RecordEnv) != "" && opts.PayloadCodec == nil {
		// Recorded histories are encrypted with the replay tests' key.
		opts.PayloadCodec = historiesCodec(e.t)
	}
	app, err := devapp.Start(ctx, opts)
	if err != nil {
		e.t.Fatalf("start kooflow: %v", err)
	}
	e.app = app
}

func (e *env) stop() {
	if e.app != nil {
		e.app.Stop()
		e.app = nil
	}
}

func (e *env) importSubscriptions(subs ...store.Subscription) {
	e.t.Helper()
	if _, err := e.app.Store.UpsertSubscriptions(context.Background(), subs); err != nil {
		e.t.Fatal(err)
	}
}

// answer is KooGallery's view of one call.
type answer struct {
	HTTPStatus int
	Result     koogallery.Result
	Elapsed    time.Duration
}

// expire sends a KooGallery-signed expireInstance for instance, checks the Body-Sign of
// the answer like KooGallery does, and returns the result.
func (e *env) expire(instance string, extra map[string]string) answer {
	e.t.Helper()
	params := koogallery.Params{"activity": "expireInstance", "instanceId": instance, "orderId": "CS-" + instance,
		"timeStamp": time.Now().UTC().Format("20060102150405") + "123", "testFlag": "0"}
	for k, v := range extra {
		if v == "" {
			delete(params, k)
		} else {
			params[k] = v
		}
	}
	return e.get("/koogallery/produce?" + koogallery.SignedQuery(testKey, params))
}

func (e *env) get(pathAndQuery string) answer {
	e.t.Helper()
	start := time.Now()
	resp, err := http.Get(e.app.WebhookURL + pathAndQuery)
	if err != nil {
		e.t.Fatalf("GET %s: %v", pathAndQuery, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	a := answer{HTTPStatus: resp.StatusCode, Elapsed: time.Since(start)}
	if err := koogallery.VerifyBodySignHeader(testKey, resp.Header.Get("Body-Sign"), body); err != nil {
		e.t.Fatalf("answer %s: %v", body, err)
	}
	if err := json.Unmarshal(body, &a.Result); err != nil {
		e.t.Fatalf("answer %s: %v", body, err)
	}
	return a
}

// waitState polls the store until the expiration reaches state.
func (e *env) waitState(workflowID, state string, timeout time.Duration) store.Expiration {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	var last store.Expiration
	for time.Now().Before(deadline) {
		rec, err := e.app.Store.Expiration(context.Background(), workflowID)
		if err == nil && rec.State == state {
			return rec
		}
		last = rec
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("expiration %s did not reach %s within %s; last %+v", workflowID, state, timeout, last)
	return last
}

func (e *env) frozenEvents(instance string) int {
	e.t.Helper()
	sub, err := e.app.Store.SubscriptionByInstance(context.Background(), instance)
	if err != nil {
		e.t.Fatal(err)
	}
	events, err := e.app.Store.Events(context.Background(), sub.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, ev := range events {
		if ev.Event == "frozen" {
			n++
		}
	}
	return n
}

func (e *env) notificationsFor(user string) []sandbox.Notification {
	var out []sandbox.Notification
	for _, n := range e.kd.Notifications() {
		if n.CarrierUserID == user {
			out = append(out, n)
		}
	}
	return out
}
