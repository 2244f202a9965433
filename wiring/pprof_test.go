package wiring

import (
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/kooflow/kooflow/metrics"
)

// serveMetrics starts the metrics port of a process configured with cfg, on a free
// loopback port, and returns its base URL.
func serveMetrics(t *testing.T, cfg Config) string {
	t.Helper()
	cfg.MetricsAddr = "127.0.0.1:0"
	p := &Parts{Config: cfg, Metrics: metrics.New(), logger: slog.New(slog.DiscardHandler)}
	srv, err := p.ServeMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv.URL
}

// getRaw fetches url and returns its status and its body untouched (a profile is binary).
func getRaw(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestPprofIsNotServedUnlessTurnedOn(t *testing.T) {
	cfg, err := FromEnv([]string{noConfigFile(t), "KOOFLOW_DB=sqlite:/tmp/k.db", "KOOGALLERY_KEY=k", "KOOFLOW_PAYLOAD_ENCRYPTION=off"}, Webhook)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Pprof {
		t.Fatal("KOOFLOW_PPROF unset, yet profiling is on")
	}
	url := serveMetrics(t, cfg)
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline", "/debug/pprof/profile"} {
		if status, _ := getRaw(t, url+path); status != http.StatusNotFound {
			t.Errorf("GET %s with profiling off: %d, want 404", path, status)
		}
	}
	if status, body := getRaw(t, url+"/metrics"); status != http.StatusOK || !strings.Contains(string(body), "process_resident_memory_bytes") {
		t.Errorf("GET /metrics: %d, want 200 with process_resident_memory_bytes", status)
	}
}

func TestPprofServesAHeapProfileWhenOn(t *testing.T) {
	cfg, err := FromEnv([]string{noConfigFile(t), "KOOFLOW_DB=sqlite:/tmp/k.db", "KOOGALLERY_KEY=k", "KOOFLOW_PAYLOAD_ENCRYPTION=off", "KOOFLOW_PPROF=on"}, Webhook)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Pprof {
		t.Fatal("KOOFLOW_PPROF=on, yet profiling is off")
	}
	url := serveMetrics(t, cfg)
	status, body := getRaw(t, url+"/debug/pprof/heap")
	if status != http.StatusOK {
		t.Fatalf("GET /debug/pprof/heap: %d %s", status, body)
	}
	prof, err := profile.ParseData(body)
	if err != nil {
		t.Fatalf("the heap profile does not parse: %v", err)
	}
	var types []string
	for _, st := range prof.SampleType {
		types = append(types, st.Type)
	}
	if !slices.Contains(types, "inuse_space") {
		t.Errorf("heap profile sample types %v, want inuse_space among them", types)
	}
	if status, body := getRaw(t, url+"/debug/pprof/"); status != http.StatusOK || !strings.Contains(string(body), "heap") {
		t.Errorf("GET /debug/pprof/: %d, want 200 with an index naming heap", status)
	}
}

func TestPprofSettingIsOnOrOff(t *testing.T) {
	_, err := FromEnv([]string{noConfigFile(t), "KOOFLOW_DB=sqlite:/tmp/k.db", "KOOGALLERY_KEY=k", "KOOFLOW_PAYLOAD_ENCRYPTION=off", "KOOFLOW_PPROF=yes"}, Webhook)
	if err == nil || !strings.Contains(err.Error(), "KOOFLOW_PPROF") {
		t.Fatalf("KOOFLOW_PPROF=yes: %v, want an error naming the variable", err)
	}
}
