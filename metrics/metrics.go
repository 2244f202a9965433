// Package metrics defines kooflow's Prometheus metrics on one registry per process, so
// /metrics shows exactly what this process measured: kooflow's own metrics, the Temporal
// SDK's (temporal_*) through tally, and Go and process collectors.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the registry and the application's collectors. A nil *Metrics is valid
// for the helpers that record (they do nothing), so tests may leave it out.
type Metrics struct {
	Registry *prometheus.Registry

	// WebhookRequests counts answered intake requests by source, activity and result code.
	WebhookRequests *prometheus.CounterVec
	// WebhookDuration observes intake latency by source.
	WebhookDuration *prometheus.HistogramVec
	// DeliveriesRejected counts refused deliveries by source and reason (auth, malformed, oversize).
	DeliveriesRejected *prometheus.CounterVec
	// ExpirationsStarted counts expiration workflows started by source (not duplicates).
	ExpirationsStarted *prometheus.CounterVec
	// ExpirationsReserved, ExpirationsStalled and ExpirationsRetried count expirations
	// reaching those points, by source.
	ExpirationsReserved *prometheus.CounterVec
	ExpirationsStalled  *prometheus.CounterVec
	ExpirationsRetried  *prometheus.CounterVec
	// SmartHubUnmatched counts package-expired pushes whose SIM is not in the registry.
	SmartHubUnmatched prometheus.Counter
	// KooDriveRequests and KooDriveDuration measure calls to KooDrive by endpoint.
	KooDriveRequests *prometheus.CounterVec
	KooDriveDuration *prometheus.HistogramVec
	// ReconciliationRuns counts finished reconciliations by outcome (completed, failed).
	ReconciliationRuns *prometheus.CounterVec
	// Discrepancies holds the last completed cycle's discrepancies by diffType.
	Discrepancies *prometheus.GaugeVec
	// StatementRows and StatementBuildSeconds describe the last statement built.
	StatementRows         prometheus.Gauge
	StatementBuildSeconds prometheus.Gauge
	// LastReconciliation is when the last reconciliation completed (Unix seconds).
	LastReconciliation prometheus.Gauge
}

// New builds a registry with Go and process collectors and kooflow's own metrics.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
		reg.MustRegister(g)
		return g
	}
	m := &Metrics{
		Registry:            reg,
		WebhookRequests:     counter("kooflow_webhook_requests_total", "Intake requests answered, by source, activity and result code.", "source", "activity", "code"),
		DeliveriesRejected:  counter("kooflow_deliveries_rejected_total", "Deliveries refused, by source and reason (auth, malformed, oversize).", "source", "reason"),
		ExpirationsStarted:  counter("kooflow_expirations_started_total", "Expiration workflows started, by source (duplicate deliveries not counted).", "source"),
		ExpirationsReserved: counter("kooflow_expirations_reserved_total", "Expirations that reached the reservation period at KooDrive, by source.", "source"),
		ExpirationsStalled:  counter("kooflow_expirations_stalled_total", "Times an expiration stalled (hour spent or KooDrive rejected), by source.", "source"),
		ExpirationsRetried:  counter("kooflow_expirations_retried_total", "Operator retries of stalled expirations, by source.", "source"),
		KooDriveRequests:    counter("kooflow_koodrive_requests_total", "Calls to KooDrive by endpoint and outcome (success, retryable_error, rejected).", "endpoint", "outcome"),
		ReconciliationRuns:  counter("kooflow_reconciliation_runs_total", "Reconciliation runs finished, by outcome (completed, failed).", "outcome"),
		WebhookDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kooflow_webhook_request_duration_seconds",
			Help:    "Time to answer an intake request, by source.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 5},
		}, []string{"source"}),
		KooDriveDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kooflow_koodrive_request_duration_seconds",
			Help:    "Latency of calls to KooDrive, by endpoint.",
			Buckets: prometheus.DefBuckets,
		}, []string{"endpoint"}),
		SmartHubUnmatched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kooflow_smarthub_unmatched_total",
			Help: "SmartHub package-expired pushes whose SIM/package is not in the registry (see kooflow status --unmatched).",
		}),
		Discrepancies: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kooflow_reconciliation_discrepancies",
			Help: "Discrepancies KooDrive reported for the last completed cycle, by diffType.",
		}, []string{"diff_type"}),
		StatementRows:         gauge("kooflow_reconciliation_statement_rows", "Rows of the last reconciliation statement built."),
		StatementBuildSeconds: gauge("kooflow_reconciliation_statement_build_seconds", "Time taken to build the last reconciliation statement."),
		LastReconciliation:    gauge("kooflow_reconciliation_last_completed_timestamp_seconds", "When the last reconciliation completed, in Unix seconds."),
	}
	reg.MustRegister(m.WebhookDuration, m.KooDriveDuration, m.SmartHubUnmatched, m.Discrepancies)
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// ObserveKooDrive records one KooDrive call; it is the koodrive client's observer.
func (m *Metrics) ObserveKooDrive(endpoint, outcome string, seconds float64) {
	if m == nil {
		return
	}
	m.KooDriveRequests.WithLabelValues(endpoint, outcome).Inc()
	m.KooDriveDuration.WithLabelValues(endpoint).Observe(seconds)
}
