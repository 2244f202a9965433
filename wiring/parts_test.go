package wiring

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/store"
)

// TestTheWorkersKooDriveCallsReachTheMetricsAndTheStore: the KooDrive client the worker's
// activities call counts every call in the metrics, as before, and its health reaches the
// store, where the console reads it — without the token KooDrive's answer quoted.
func TestTheWorkersKooDriveCallsReachTheMetricsAndTheStore(t *testing.T) {
	const token = "worker-token-never-stored-0123456789"
	kooDrive := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"code":"401","msg":"unknown token ` + strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ") + `"}`))
	}))
	defer kooDrive.Close()
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "kooflow.db")
	parts, err := Open(t.Context(), Config{DB: dsn, DataDir: dir, Logger: slog.New(slog.DiscardHandler), KooDriveProbe: -1,
		KooDrive: koodrive.Config{BaseURL: kooDrive.URL, AccessToken: token, UserID: "user"}})
	if err != nil {
		t.Fatal(err)
	}
	deps, err := parts.WorkerDependencies()
	if err != nil {
		parts.Close()
		t.Fatal(err)
	}
	if err := deps.Expiration.KooDrive.NotifyPackageExpire(context.Background(), "user-1", "pkg-1"); !koodrive.IsUnauthorized(err) {
		parts.Close()
		t.Fatalf("notify: %v, want credentials refused", err)
	}
	counted := testutil.ToFloat64(parts.Metrics.KooDriveRequests.WithLabelValues(koodrive.NotifyPackageExpirePath, koodrive.OutcomeAuthFailed))
	parts.Close() // writes what the recorder still holds

	if counted != 1 {
		t.Fatalf("kooflow_koodrive_requests_total{outcome=auth_failed} = %v, want 1", counted)
	}
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	health, err := st.KooDriveHealth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(health) != 1 || health[0].Endpoint != koodrive.NotifyPackageExpirePath || health[0].LastOutcome != koodrive.OutcomeAuthFailed ||
		health[0].LastFailure.HTTPStatus != http.StatusUnauthorized || !strings.HasPrefix(health[0].LastFailure.Message, "unknown token ") ||
		strings.Contains(health[0].LastFailure.Message, token) {
		t.Fatalf("KooDrive's health in the store: %+v", health)
	}
}

// TestTheWorkerProbesKooDrivesServiceStatus: a worker asks KooDrive for the tenant's
// service status as soon as it has its client, without waiting for an expiry; a tenant
// KooDrive reports frozen reaches the store as the service endpoint refusing, named.
func TestTheWorkerProbesKooDrivesServiceStatus(t *testing.T) {
	kooDrive := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != koodrive.ServicePath {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`{"code":0,"msg":"Success.","data":{"status":1,"tenantId":"t-9","organizationName":"Carrier"}}`))
	}))
	defer kooDrive.Close()
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "kooflow.db")
	parts, err := Open(t.Context(), Config{DB: dsn, DataDir: dir, Logger: slog.New(slog.DiscardHandler),
		KooDrive: koodrive.Config{BaseURL: kooDrive.URL, AccessToken: "token", UserID: "user"}})
	if err != nil {
		t.Fatal(err)
	}
	defer parts.Close()
	if _, err := parts.WorkerDependencies(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		health, err := parts.Store.KooDriveHealth(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range health {
			if h.Endpoint == koodrive.ServicePath && h.LastOutcome == koodrive.OutcomeRejected && strings.Contains(h.LastFailure.Message, "t-9") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker's probe did not record the frozen tenant: %+v", health)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
