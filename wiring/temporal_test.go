package wiring

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/koodrive"
)

func TestBackoffDoublesUpToItsCap(t *testing.T) {
	b := Backoff{Min: 250 * time.Millisecond, Max: 10 * time.Second}
	var got []time.Duration
	for range 8 {
		got = append(got, b.Next())
	}
	want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second,
		8 * time.Second, 10 * time.Second, 10 * time.Second}
	if !slices.Equal(got, want) {
		t.Fatalf("pauses %v, want %v", got, want)
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// logLines is a JSON log at debug level, read back one record at a time.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logLines) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// records returns the records whose message starts with msg.
func (l *logLines) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m, _ := rec["msg"].(string); strings.HasPrefix(m, msg) {
			out = append(out, rec)
		}
	}
	return out
}

// readyz asks r what /readyz would answer.
func readyz(r *Readiness) (int, string) {
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec.Code, strings.TrimSpace(rec.Body.String())
}

// A Temporal address nothing listens on: the wait keeps trying, with pauses that double up
// to the cap, logs the wait once, answers 503 with the address, and ends when its context
// does.
func TestTemporalWaitRetriesAnUnreachableClusterUntilCancelled(t *testing.T) {
	addr := closedAddr(t)
	c, err := client.NewLazyClient(client.Options{HostPort: addr, Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	logs := &logLines{}
	ready := NewReadiness("starting")
	w := &TemporalWait{Address: addr, Namespace: "default", Backoff: Backoff{Min: time.Millisecond, Max: 4 * time.Millisecond},
		Readiness: ready, Logger: logs.logger()}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const attempts = 6
	n := 0
	var probeErrs []error
	err = w.Run(ctx, func(ctx context.Context) error {
		n++
		if code, body := readyz(ready); code != http.StatusServiceUnavailable || !strings.Contains(body, "waiting for Temporal at "+addr) {
			t.Errorf("attempt %d: /readyz answered %d %q, want 503 waiting for Temporal at %s", n, code, body, addr)
		}
		if n == attempts {
			cancel()
		}
		err := ProbeTemporal(ctx, c, "default")
		probeErrs = append(probeErrs, err)
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	if n != attempts {
		t.Fatalf("%d attempts, want %d", n, attempts)
	}
	for i, err := range probeErrs {
		if err == nil {
			t.Fatalf("attempt %d reached a Temporal at %s, where nothing listens", i+1, addr)
		}
	}
	waiting := logs.records(t, "waiting for Temporal")
	if len(waiting) != 1 || waiting[0]["address"] != addr || waiting[0]["error"] == "" {
		t.Fatalf("waiting lines %v, want one naming %s and the error", waiting, addr)
	}
	pauses := []any{waiting[0]["retryIn"]}
	for _, rec := range logs.records(t, "Temporal still unreachable") {
		pauses = append(pauses, rec["retryIn"])
	}
	if want := []any{"1ms", "2ms", "4ms", "4ms", "4ms"}; !slices.Equal(pauses, want) {
		t.Fatalf("pauses between attempts %v, want %v", pauses, want)
	}
	if got := logs.records(t, "connected to Temporal"); len(got) != 0 {
		t.Fatalf("logged %v without a Temporal", got)
	}
	if code, _ := readyz(ready); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz answered %d after the wait was cancelled, want 503", code)
	}
}

// Readiness flips to 200 when an attempt succeeds, with one line for the wait and one for
// the connection.
func TestTemporalWaitFlipsReadinessWhenConnected(t *testing.T) {
	logs := &logLines{}
	ready := NewReadiness("starting")
	w := &TemporalWait{Address: "temporal:7233", Namespace: "kooflow", Backoff: Backoff{Min: time.Millisecond, Max: time.Millisecond},
		Readiness: ready, Logger: logs.logger()}
	n := 0
	err := w.Run(context.Background(), func(context.Context) error {
		n++
		if code, body := readyz(ready); code != http.StatusServiceUnavailable || body != "waiting for Temporal at temporal:7233 (namespace kooflow)" {
			t.Errorf("attempt %d: /readyz answered %d %q", n, code, body)
		}
		if n < 3 {
			return errors.New("connection refused")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := readyz(ready); code != http.StatusOK || body != "ready" {
		t.Fatalf("/readyz answered %d %q once connected, want 200 ready", code, body)
	}
	if got := len(logs.records(t, "waiting for Temporal")); got != 1 {
		t.Errorf("%d waiting lines, want 1", got)
	}
	if got := logs.records(t, "connected to Temporal"); len(got) != 1 || got[0]["address"] != "temporal:7233" {
		t.Errorf("connected lines %v, want one naming temporal:7233", got)
	}
}

// A nil Readiness, as kooflow dev serves it, is always ready.
func TestNilReadinessIsReady(t *testing.T) {
	var r *Readiness
	r.SetNotReady("ignored")
	if code, body := readyz(r); code != http.StatusOK || body != "ready" {
		t.Fatalf("/readyz answered %d %q", code, body)
	}
}

// `kooflow worker` with no Temporal: it starts, /healthz answers 200 and /readyz 503 with
// the address, and Stop ends the wait.
func TestWorkerProcessStartsWithoutTemporal(t *testing.T) {
	dir := t.TempDir()
	addr := closedAddr(t)
	logs := &logLines{}
	p, err := StartWorkerProcess(t.Context(), Config{
		DB: "sqlite:" + filepath.Join(dir, "kooflow.db"), DataDir: dir, MetricsAddr: "127.0.0.1:0",
		Temporal: client.Options{HostPort: addr, Namespace: "default"},
		KooDrive: koodrive.Config{BaseURL: "http://127.0.0.1:1", AccessToken: "token", UserID: "user"},
		Logger:   logs.logger(),
	})
	if err != nil {
		t.Fatalf("the worker did not start without Temporal: %v", err)
	}
	defer p.Stop()
	if code, body := get(t, p.MetricsURL+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz answered %d %q", code, body)
	}
	if code, body := get(t, p.MetricsURL+"/readyz"); code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "waiting for Temporal at "+addr) {
		t.Fatalf("/readyz answered %d %q, want 503 waiting for Temporal at %s", code, body, addr)
	}
	p.Stop()
	if got := logs.records(t, "worker running"); len(got) != 0 {
		t.Fatalf("the worker reported running without a Temporal: %v", got)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}
