package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/koodrive/sandbox"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
)

// TestWorkerWaitsForTemporalAndDrainsOnSIGTERM runs `kooflow worker` and `kooflow webhook`
// as OS processes before the `kooflow temporal` (SQLite) they point at is up: both keep
// running and retrying, /healthz answers 200 and /readyz 503 with the address, and the
// intake accepts a delivery. Temporal then starts on that address: both become ready and
// the delivery is reserved. Finally the worker gets SIGTERM while two KooDrive
// notifications are in flight (the KooDrive in front of the sandbox holds them): the one
// released during the drain reaches KooDrive before the worker exits, the one held past
// KOOFLOW_WORKER_STOP_TIMEOUT is abandoned, the worker exits within the stop timeout plus
// a margin, and after a restart every expiry is reserved with exactly one notification.
func TestWorkerWaitsForTemporalAndDrainsOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	bin := buildKooflow(t, dir)

	kd := sandbox.New(sandbox.Options{AccessToken: kooDriveToken, UserID: kooDriveUser})
	gate := newNotifyGate(kd.Handler())
	kdSrv := httptest.NewServer(gate)
	t.Cleanup(kdSrv.Close)

	dsn := "sqlite:" + filepath.Join(dir, "kooflow.db")
	st := storetest.Open(t, dsn)
	users := []string{"user-w1", "user-w2", "user-w3"}
	for i, user := range users {
		if _, err := st.UpsertSubscriptions(context.Background(), []store.Subscription{{
			InstanceID: fmt.Sprintf("inst-w%d", i+1), CarrierUserID: user, PackageID: "pkg"}}); err != nil {
			t.Fatal(err)
		}
	}

	temporalAddr := freeAddr(t) // nothing listens there yet
	const stopTimeout = 10 * time.Second
	common := []string{"TEMPORAL_CONFIG_FILE=" + filepath.Join(dir, "no-temporal.toml"), "TEMPORAL_ADDRESS=" + temporalAddr,
		"TEMPORAL_NAMESPACE=default", "KOOFLOW_DB=" + dsn, "KOOFLOW_DATA_DIR=" + dir,
		"KOOFLOW_PAYLOAD_KEYS=" + newPayloadKey(t, "ready"), "KOOFLOW_LOG_LEVEL=debug"}
	workerMetrics := freeAddr(t)
	workerEnv := slices.Concat(common, []string{"KOODRIVE_BASE_URL=" + kdSrv.URL, "KOODRIVE_ACCESS_TOKEN=" + kooDriveToken,
		"KOODRIVE_USER_ID=" + kooDriveUser, "KOOFLOW_METRICS_ADDR=" + workerMetrics, "KOOFLOW_WORKER_STOP_TIMEOUT=" + stopTimeout.String()})
	worker := startProcess(t, bin, filepath.Join(dir, "worker-1.log"), workerEnv, "worker")
	webhookAddr, webhookMetrics := freeAddr(t), freeAddr(t)
	webhook := startProcess(t, bin, filepath.Join(dir, "webhook.log"), slices.Concat(common, []string{"KOOGALLERY_KEY=" + testKey,
		"KOOFLOW_WEBHOOK_ADDR=" + webhookAddr, "KOOFLOW_METRICS_ADDR=" + webhookMetrics}), "webhook")

	// No Temporal: both keep running and retrying; alive, not ready.
	procs := []struct {
		name    string
		proc    *process
		metrics string
	}{{"worker", worker, workerMetrics}, {"webhook", webhook, webhookMetrics}}
	for _, p := range procs {
		p.proc.waitLog(t, `"msg":"Temporal still unreachable"`, 4, 90*time.Second)
		if !p.proc.Running() {
			t.Fatalf("the %s exited while Temporal was unreachable", p.name)
		}
		if code, body := httpGet(t, "http://"+p.metrics+"/healthz"); code != http.StatusOK {
			t.Errorf("%s /healthz answered %d %q without Temporal, want 200", p.name, code, body)
		}
		if code, body := httpGet(t, "http://"+p.metrics+"/readyz"); code != http.StatusServiceUnavailable ||
			!strings.HasPrefix(body, "waiting for Temporal at "+temporalAddr) {
			t.Errorf("%s /readyz answered %d %q without Temporal, want 503 waiting for Temporal at %s", p.name, code, body, temporalAddr)
		}
		if n := p.proc.LogCount(`"msg":"waiting for Temporal`); n != 1 {
			t.Errorf("the %s logged the wait %d times, want once", p.name, n)
		}
	}
	// The intake keeps its contract: ready while the store answers, Temporal or not.
	if code, body := httpGet(t, "http://"+webhookAddr+"/readyz"); code != http.StatusOK {
		t.Fatalf("the intake's /readyz answered %d %q without Temporal, want 200", code, body)
	}
	deliverAccepted(t, webhookAddr, "inst-w1")

	// Temporal comes up where they look for it.
	startTemporalAt(t, bin, dir, temporalAddr, nil)
	for _, p := range procs {
		waitHTTP(t, "http://"+p.metrics+"/readyz", 90*time.Second)
		if n := p.proc.LogCount(`"msg":"connected to Temporal"`); n != 1 {
			t.Errorf("the %s logged the connection %d times, want once", p.name, n)
		}
	}
	waitReserved(t, st, 1, "once Temporal was up")

	// SIGTERM with two notifications in flight.
	gate.Hold("user-w2")
	gate.Hold("user-w3")
	deliverAccepted(t, webhookAddr, "inst-w2")
	deliverAccepted(t, webhookAddr, "inst-w3")
	gate.waitHeld(t, "user-w2")
	gate.waitHeld(t, "user-w3")
	signalled := time.Now()
	worker.Signal(syscall.SIGTERM)
	worker.waitLog(t, `"msg":"worker stopping"`, 1, 30*time.Second)
	gate.Release("user-w2") // finishes during the drain
	bound := stopTimeout + 30*time.Second
	if !worker.WaitExit(bound) {
		t.Fatalf("the worker still runs %s after SIGTERM; its stop timeout is %s", bound, stopTimeout)
	}
	t.Logf("the worker exited %s after SIGTERM (stop timeout %s)", time.Since(signalled).Round(100*time.Millisecond), stopTimeout)
	if n := authNotificationsFor(kd, "user-w2"); n != 1 {
		t.Errorf("the notification released during the drain reached KooDrive %d times before the worker exited, want 1", n)
	}
	if n := authNotificationsFor(kd, "user-w3"); n != 0 {
		t.Errorf("the notification held past the stop timeout reached KooDrive %d times, want 0", n)
	}

	// Nothing is lost: a new worker finishes both, each notified once.
	gate.Release("user-w3")
	startProcess(t, bin, filepath.Join(dir, "worker-2.log"), workerEnv, "worker")
	waitReserved(t, st, len(users), "after the worker was stopped mid-activity and started again")
	for _, user := range users {
		if n := authNotificationsFor(kd, user); n != 1 {
			t.Errorf("%s notified %d times, want 1", user, n)
		}
	}
}

// notifyGate stands in front of the KooDrive sandbox: it holds the notifications of the
// users it is told to hold until they are released, and drops a held call whose caller
// gives up, so KooDrive never sees it — a slow KooDrive, for a worker stopped
// mid-activity.
type notifyGate struct {
	kd http.Handler

	mu       sync.Mutex
	released map[string]chan struct{} // held user → closed on release
	held     map[string]int           // held calls per user
}

func newNotifyGate(kd http.Handler) *notifyGate {
	return &notifyGate{kd: kd, released: map[string]chan struct{}{}, held: map[string]int{}}
}

// Hold holds user's notifications from now until Release.
func (g *notifyGate) Hold(user string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.released[user] = make(chan struct{})
}

// Release lets user's held and future notifications through.
func (g *notifyGate) Release(user string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ch, ok := g.released[user]; ok {
		close(ch)
		delete(g.released, user)
	}
}

// waitHeld waits until a notification of user is held.
func (g *notifyGate) waitHeld(t *testing.T, user string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		g.mu.Lock()
		n := g.held[user]
		g.mu.Unlock()
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no notification of %s reached KooDrive within 60 s", user)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (g *notifyGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == koodrive.NotifyPackageExpirePath {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var req struct {
			CarrierUserID string `json:"carrierUserId"`
		}
		_ = json.Unmarshal(body, &req)
		g.mu.Lock()
		release, hold := g.released[req.CarrierUserID]
		if hold {
			g.held[req.CarrierUserID]++
		}
		g.mu.Unlock()
		if hold {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		if r.Context().Err() != nil {
			return // the caller gave up: KooDrive never sees the call
		}
	}
	g.kd.ServeHTTP(w, r)
}

// httpGet returns the status and the trimmed body of a GET.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}
