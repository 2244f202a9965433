package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/kooflow/kooflow/koogallery"
	"github.com/kooflow/kooflow/store"
)

// scrape reads /metrics over HTTP, as Prometheus does.
func (e *env) scrape() (string, map[string]*dto.MetricFamily) {
	e.t.Helper()
	resp, err := http.Get(e.app.MetricsURL + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var parser expfmt.TextParser
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		e.t.Fatalf("parse /metrics: %v", err)
	}
	return string(body), families
}

// value returns the value of the series of family whose labels include want.
func value(families map[string]*dto.MetricFamily, family string, want map[string]string) float64 {
	f, ok := families[family]
	if !ok {
		return -1
	}
	var total float64
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total
}

func TestMetricsAfterEndToEndExpirations(t *testing.T) {
	e := newEnv(t)
	e.importSubscriptions(
		store.Subscription{InstanceID: "inst-m1", CarrierUserID: "u-m1", PackageID: "p"},
		store.Subscription{InstanceID: "inst-m2", CarrierUserID: "u-m2", PackageID: "p"},
	)
	e.kd.FailNext(2, 503)
	for i := 0; i < 3; i++ {
		if a := e.expire("inst-m1", nil); a.Result.ResultCode != koogallery.Success {
			t.Fatalf("inst-m1: %+v", a)
		}
	}
	e.waitState("expire/koogallery/inst-m1/current", store.StateReserved, 30*time.Second)
	e.kd.RejectWith("10020001", "not whitelisted")
	e.expire("inst-m2", nil)
	e.waitState("expire/koogallery/inst-m2/current", store.StateStalled, 30*time.Second)
	e.expire("inst-unknown", nil)
	e.get("/koogallery/produce?activity=expireInstance&instanceId=inst-m1&timeStamp=1&authToken=bad")

	// The activity counts a state after the store accepted it, so the store can show
	// reserved or stalled a moment before the counter does.
	e.waitCounted("kooflow_expirations_reserved_total", map[string]string{"source": "koogallery"}, 1)
	e.waitCounted("kooflow_expirations_stalled_total", map[string]string{"source": "koogallery"}, 1)
	text, families := e.scrape()
	checks := []struct {
		family string
		labels map[string]string
		want   float64
	}{
		{"kooflow_webhook_requests_total", map[string]string{"source": "koogallery", "code": "000000"}, 4},
		{"kooflow_webhook_requests_total", map[string]string{"source": "koogallery", "code": "000003"}, 1},
		{"kooflow_webhook_requests_total", map[string]string{"source": "koogallery", "code": "000001"}, 1},
		{"kooflow_webhook_request_duration_seconds", map[string]string{"source": "koogallery"}, 6},
		{"kooflow_deliveries_rejected_total", map[string]string{"source": "koogallery", "reason": "auth"}, 1},
		{"kooflow_expirations_started_total", map[string]string{"source": "koogallery"}, 2},
		{"kooflow_expirations_reserved_total", map[string]string{"source": "koogallery"}, 1},
		{"kooflow_expirations_stalled_total", map[string]string{"source": "koogallery"}, 1},
		{"kooflow_expirations", map[string]string{"state": "stalled"}, 1},
		{"kooflow_expirations", map[string]string{"state": "reserved"}, 1},
		{"kooflow_koodrive_requests_total", map[string]string{"outcome": "success"}, 1},
		{"kooflow_koodrive_requests_total", map[string]string{"outcome": "retryable_error"}, 2},
		{"kooflow_koodrive_requests_total", map[string]string{"outcome": "rejected"}, 1},
		{"kooflow_koodrive_request_duration_seconds", map[string]string{"endpoint": "/koodrive/ose/v1/carrier/users/notifyPackageExpire"}, 4},
	}
	for _, c := range checks {
		if got := value(families, c.family, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.family, c.labels, got, c.want)
		}
	}
	var temporal int
	for name := range families {
		if strings.HasPrefix(name, "temporal_") {
			temporal++
		}
	}
	if temporal == 0 {
		t.Error("no temporal_* SDK metrics in /metrics")
	}

	// kooflow's own families must pass the Prometheus linter. (The SDK's temporal_*
	// names are Temporal's convention, shared with its published dashboards.)
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "kooflow_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

// waitCounted scrapes until family's series with labels reaches want, for a metric that is
// published after the store change the test waited for; it fails after 30 s.
func (e *env) waitCounted(family string, labels map[string]string, want float64) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, families := e.scrape()
		got := value(families, family, labels)
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s%v = %v, want %v within 30 s", family, labels, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
