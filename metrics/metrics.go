// Package metrics defines kooflow's Prometheus metrics on one registry per process, so
// /metrics shows exactly what this process measured (plus Go and process collectors).
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the registry and the application's collectors.
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
	// SmartHubUnmatched counts package-expired pushes whose SIM is not in the registry.
	SmartHubUnmatched prometheus.Counter
}

// New builds a registry with Go and process collectors and kooflow's own metrics.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry: reg,
		WebhookRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kooflow_webhook_requests_total",
			Help: "Intake requests answered, by source, activity and result code.",
		}, []string{"source", "activity", "code"}),
		WebhookDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kooflow_webhook_request_duration_seconds",
			Help:    "Time to answer an intake request, by source.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 5},
		}, []string{"source"}),
		DeliveriesRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kooflow_deliveries_rejected_total",
			Help: "Deliveries refused, by source and reason (auth, malformed, oversize).",
		}, []string{"source", "reason"}),
		ExpirationsStarted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kooflow_expirations_started_total",
			Help: "Expiration workflows started, by source (duplicate deliveries not counted).",
		}, []string{"source"}),
		SmartHubUnmatched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kooflow_smarthub_unmatched_total",
			Help: "SmartHub package-expired pushes whose SIM/package is not in the registry (see kooflow status --unmatched).",
		}),
	}
	reg.MustRegister(m.WebhookRequests, m.WebhookDuration, m.DeliveriesRejected, m.ExpirationsStarted, m.SmartHubUnmatched)
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}
