package metrics_test

import (
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kooflow/kooflow/metrics"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
)

// series returns the value of every series of family, keyed by its labels
// ("name=value,..." in the registry's order), as Prometheus would scrape them.
func series(t *testing.T, reg prometheus.Gatherer, family string) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != family {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			out[strings.Join(labels, ",")] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return -1
}

// TestLabelledCountersStartAtZero: a counter series that appears with its first increment
// has no earlier sample, so increase() and rate() miss that first event (the first stall,
// the first KooDrive auth failure after a restart). Every known series must exist at 0 as
// soon as the registry does.
func TestLabelledCountersStartAtZero(t *testing.T) {
	m := metrics.New()
	want := map[string][]string{
		"kooflow_webhook_requests_total": {
			"activity=expireInstance,code=000000,source=koogallery",
			"activity=expireInstance,code=000005,source=koogallery",
			"activity=expireInstance,code=000003,source=koogallery",
			"activity=,code=000001,source=koogallery",
			"activity=SERVICE_PACKAGE_EXPIRED,code=503,source=smarthub",
			"activity=,code=401,source=smarthub",
		},
		"kooflow_deliveries_rejected_total":  {"reason=auth,source=koogallery", "reason=oversize,source=smarthub"},
		"kooflow_expirations_started_total":  {"source=koogallery", "source=smarthub"},
		"kooflow_expirations_reserved_total": {"source=koogallery", "source=smarthub"},
		"kooflow_expirations_stalled_total":  {"source=koogallery", "source=smarthub"},
		"kooflow_expirations_retried_total":  {"source=koogallery", "source=smarthub"},
		"kooflow_koodrive_requests_total": {
			"endpoint=/koodrive/ose/v1/carrier/users/notifyPackageExpire,outcome=auth_failed",
			"endpoint=/koodrive/ose/v1/carrier/users/notifyPackageExpire,outcome=retryable_error",
			"endpoint=/koodrive/ose/v1/reconciliation/data/verify,outcome=rejected",
			"endpoint=/koodrive/ose/v1/service,outcome=success",
		},
		"kooflow_reconciliation_runs_total":         {"outcome=completed", "outcome=failed"},
		"kooflow_webhook_request_duration_seconds":  {"source=koogallery", "source=smarthub"},
		"kooflow_koodrive_request_duration_seconds": {"endpoint=/koodrive/ose/v1/reconciliation/diff/getList"},
	}
	for family, labels := range want {
		got := series(t, m.Registry, family)
		for _, l := range labels {
			v, ok := got[l]
			if !ok {
				t.Errorf("%s{%s} is not exported before its first event (have %d series)", family, l, len(got))
				continue
			}
			if v != 0 {
				t.Errorf("%s{%s} = %v at start, want 0", family, l, v)
			}
		}
	}
	if n := len(series(t, m.Registry, "kooflow_koodrive_requests_total")); n != 4*4 {
		t.Errorf("kooflow_koodrive_requests_total has %d series at start, want every endpoint × outcome (16)", n)
	}

	// Recording still works on the pre-created series.
	m.ObserveKooDrive("/koodrive/ose/v1/carrier/users/notifyPackageExpire", "auth_failed", 0.1)
	if v := series(t, m.Registry, "kooflow_koodrive_requests_total")["endpoint=/koodrive/ose/v1/carrier/users/notifyPackageExpire,outcome=auth_failed"]; v != 1 {
		t.Errorf("after one auth failure the series reads %v", v)
	}
}

// TestLastReconciliationComesFromTheStore: the "last completed" gauge and the last cycle's
// discrepancies must survive a worker restart (they used to be process memory, so a
// restart made dashboards read 0, "57 years ago"), must be absent while no reconciliation
// ever completed, and must be the same in every process reading the store.
func TestLastReconciliationComesFromTheStore(t *testing.T) {
	const family = "kooflow_reconciliation_last_completed_timestamp_seconds"
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := t.Context()
			st := storetest.Open(t, b.DSN(t))
			m := metrics.New()
			m.RegisterStore(st)
			for _, f := range []string{family, "kooflow_reconciliation_discrepancies"} {
				if got := series(t, m.Registry, f); len(got) != 0 {
					t.Fatalf("no run completed yet, but %s = %v", f, got)
				}
			}
			if up := series(t, m.Registry, "kooflow_store_up")[""]; up != 1 {
				t.Fatalf("kooflow_store_up = %v", up)
			}

			before := time.Now().Add(-time.Second)
			completed := store.ReconciliationRun{Cycle: "2026-09", State: store.RunCompleted, Counts: map[string]int{"2": 5, "4": 1}}
			if err := st.SaveRun(ctx, completed); err != nil {
				t.Fatal(err)
			}
			after := time.Now().Add(time.Second)
			// A later run still in progress, and a failed one, do not move the figure.
			if err := st.SaveRun(ctx, store.ReconciliationRun{Cycle: "2026-10", State: store.RunPolling}); err != nil {
				t.Fatal(err)
			}
			if err := st.SaveRun(ctx, store.ReconciliationRun{Cycle: "2026-08", State: store.RunFailed}); err != nil {
				t.Fatal(err)
			}
			wantDiscrepancies := map[string]float64{"cycle=2026-09,diff_type=1": 0, "cycle=2026-09,diff_type=2": 5,
				"cycle=2026-09,diff_type=3": 0, "cycle=2026-09,diff_type=4": 1}

			got := series(t, m.Registry, family)[""]
			if got < float64(before.Unix()) || got > float64(after.Unix()) {
				t.Fatalf("%s = %v, want the completed run's time (between %d and %d)", family, got, before.Unix(), after.Unix())
			}

			if d := series(t, m.Registry, "kooflow_reconciliation_discrepancies"); !reflect.DeepEqual(d, wantDiscrepancies) {
				t.Fatalf("discrepancies = %v, want the completed run's %v", d, wantDiscrepancies)
			}

			// A restarted process (a new registry) on the same store reads the same figures.
			restarted := metrics.New()
			restarted.RegisterStore(st)
			if again := series(t, restarted.Registry, family)[""]; again != got {
				t.Fatalf("after a restart %s = %v, want %v", family, again, got)
			}
			if d := series(t, restarted.Registry, "kooflow_reconciliation_discrepancies"); !reflect.DeepEqual(d, wantDiscrepancies) {
				t.Fatalf("after a restart discrepancies = %v, want %v", d, wantDiscrepancies)
			}

			st.Close()
			down := series(t, m.Registry, "kooflow_store_up")[""]
			if down != 0 {
				t.Fatalf("kooflow_store_up with the store closed = %v", down)
			}
		})
	}
}

// TestTestRehearsalsAreNotCountedAsReserved: kooflow_expirations counts real expirations
// only; test rehearsals (testFlag=1) have their own kooflow_test_expirations series, and
// every state, renewed and released included, is reported.
func TestTestRehearsalsAreNotCountedAsReserved(t *testing.T) {
	ctx := t.Context()
	st := storetest.OpenSQLite(t)
	if _, err := st.UpsertSubscriptions(ctx, []store.Subscription{{InstanceID: "i1", CarrierUserID: "u1", PackageID: "p1"}}); err != nil {
		t.Fatal(err)
	}
	sub, err := st.SubscriptionByInstance(ctx, "i1")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []store.Expiration{
		{WorkflowID: "w-real", Period: "p1", State: store.StateReserved},
		{WorkflowID: "w-test-1", Period: "p2", State: store.StateReserved, Test: true},
		{WorkflowID: "w-test-2", Period: "p3", State: store.StateReserved, Test: true},
		{WorkflowID: "w-renewed", Period: "p4", State: store.StateRenewed},
	} {
		e.Source, e.Subject, e.SubscriptionID, e.CarrierUserID, e.PackageID = "koogallery", "i1", sub.ID, "u1", "p1"
		if _, err := st.RecordExpiration(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	m := metrics.New()
	m.RegisterStore(st)
	live, test := series(t, m.Registry, "kooflow_expirations"), series(t, m.Registry, "kooflow_test_expirations")
	if live["state=reserved"] != 1 || live["state=renewed"] != 1 || test["state=reserved"] != 2 || len(live) != len(store.States) || len(test) != len(store.States) {
		t.Fatalf("kooflow_expirations = %v, kooflow_test_expirations = %v", live, test)
	}
	if _, ok := live["state=released"]; !ok {
		t.Fatalf("released is not reported: %v", live)
	}
}

// TestStorePoolIsReported: the connection pool's figures are scraped from the process's
// own pool — its limit (PostgresMaxConns on PostgreSQL, none on SQLite), connections in
// use and idle, and the waits for one, which count up when requests queue at the limit.
func TestStorePoolIsReported(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := storetest.Open(t, b.DSN(t))
			m := metrics.New()
			m.RegisterStore(st)
			wantMax := 0.0
			if st.Dialect() == "postgres" {
				wantMax = store.PostgresMaxConns
			}
			if got := series(t, m.Registry, "kooflow_store_connections_max")[""]; got != wantMax {
				t.Errorf("kooflow_store_connections_max = %v, want %v", got, wantMax)
			}
			conns := series(t, m.Registry, "kooflow_store_connections")
			pool := st.PoolStats()
			if conns["state=idle"] < 1 || conns["state=in_use"] != float64(pool.InUse) {
				t.Errorf("kooflow_store_connections = %v; the pool has %d idle, %d in use (the scrape itself reads the store)", conns, pool.Idle, pool.InUse)
			}
			for _, f := range []string{"kooflow_store_connection_waits_total", "kooflow_store_connection_wait_seconds_total"} {
				if got, ok := series(t, m.Registry, f)[""]; !ok || got != 0 {
					t.Errorf("%s = %v (present %v), want 0 before any request waited", f, got, ok)
				}
			}
			if wantMax == 0 {
				return
			}
			// Four times the limit at once: some must queue.
			var wg sync.WaitGroup
			for range 4 * store.PostgresMaxConns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 5 {
						_, _ = st.SubscriptionByInstance(t.Context(), "absent")
					}
				}()
			}
			wg.Wait()
			if got := series(t, m.Registry, "kooflow_store_connection_waits_total")[""]; got < 1 {
				t.Errorf("kooflow_store_connection_waits_total = %v after %d concurrent requests, want > 0", got, 4*store.PostgresMaxConns)
			}
			if got := series(t, m.Registry, "kooflow_store_connection_wait_seconds_total")[""]; got <= 0 {
				t.Errorf("kooflow_store_connection_wait_seconds_total = %v, want > 0", got)
			}
		})
	}
}
