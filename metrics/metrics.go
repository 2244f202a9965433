// Package metrics defines kooflow's Prometheus metrics on one registry per process, so
// /metrics shows exactly what this process measured: kooflow's own metrics, the Temporal
// SDK's (temporal_*) through tally, and Go and process collectors.
package metrics

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/koogallery"
	"github.com/kooflow/kooflow/smarthub"
	"github.com/kooflow/kooflow/store"
)

// The label values kooflow knows in advance. New creates every series of them at zero, so
// that rate() and increase() see the first event after a start or restart (a series that
// appears with its first increment has no earlier sample to compare with), and dashboards
// show 0 rather than "no data".
var (
	// sources are the intake sources (starter.SourceKooGallery, starter.SourceSmartHub).
	sources = []string{"koogallery", "smarthub"}
	// kooGalleryActivities are the activities the webhook handles; "" is a call without one.
	kooGalleryActivities = []string{"expireInstance", "instanceStatus", "updateInstanceStatus", "newInstance",
		"refreshInstance", "releaseInstance", "queryInstance", ""}
	kooGalleryCodes = []koogallery.ResultCode{koogallery.Success, koogallery.AuthFailed, koogallery.InvalidParam,
		koogallery.InstanceNotFound, koogallery.Processing, koogallery.InternalError}
	// smartHubKinds label SmartHub answers: the package-expired trigger, or "" for a push
	// refused before its body was read.
	smartHubKinds     = []string{smarthub.TriggerPackageExpired, ""}
	smartHubStatuses  = []int{http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusServiceUnavailable}
	rejectReasons     = []string{store.RefusedAuth, store.RefusedMalformed, store.RefusedOversize, store.RefusedUnknownInstance, store.RefusedReleased, store.RefusedNotReady}
	kooDriveEndpoints = []string{koodrive.NotifyPackageExpirePath, koodrive.ServicePath, koodrive.DataVerifyPath,
		koodrive.DiffGetListPath}
	// kooDriveOutcomes are the koodrive client's outcomes (koodrive.Outcome*).
	kooDriveOutcomes       = []string{"success", "retryable_error", "rejected", "auth_failed"}
	reconciliationOutcomes = []string{"completed", "failed"}
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
	// Deliveries counts every inbound call by source and by what kooflow made of it
	// (store.DeliveryOutcomes), one per row of the delivery log.
	Deliveries *prometheus.CounterVec
	// DeliveriesUnrecorded counts deliveries the delivery log could not keep: the store
	// was unavailable for longer than the webhook's memory of unwritten rows.
	DeliveriesUnrecorded *prometheus.CounterVec
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
	// StatementRows and StatementBuildSeconds describe the last statement built.
	StatementRows         prometheus.Gauge
	StatementBuildSeconds prometheus.Gauge
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
		Registry:           reg,
		WebhookRequests:    counter("kooflow_webhook_requests_total", "Intake requests answered, by source, activity and result code.", "source", "activity", "code"),
		DeliveriesRejected: counter("kooflow_deliveries_rejected_total", "Deliveries refused, by source and reason (auth, malformed, oversize, unknown-instance, released, not-ready).", "source", "reason"),
		Deliveries: counter("kooflow_deliveries_total", "Inbound calls by source and outcome (accepted, duplicate, ignored, conflict, unmatched, refused, unavailable), as in the delivery log.",
			"source", "outcome"),
		DeliveriesUnrecorded: counter("kooflow_deliveries_unrecorded_total",
			"Inbound calls the delivery log could not keep because the store was unavailable too long (counted here instead).", "source"),
		ExpirationsStarted:  counter("kooflow_expirations_started_total", "Expiration workflows started, by source (duplicate deliveries not counted).", "source"),
		ExpirationsReserved: counter("kooflow_expirations_reserved_total", "Expirations that reached the reservation period at KooDrive, by source.", "source"),
		ExpirationsStalled:  counter("kooflow_expirations_stalled_total", "Times an expiration stalled (hour spent or KooDrive rejected), by source.", "source"),
		ExpirationsRetried:  counter("kooflow_expirations_retried_total", "Operator retries of stalled expirations, by source.", "source"),
		KooDriveRequests:    counter("kooflow_koodrive_requests_total", "Calls to KooDrive by endpoint and outcome (success, retryable_error, rejected, auth_failed).", "endpoint", "outcome"),
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
		StatementRows:         gauge("kooflow_reconciliation_statement_rows", "Rows of the last reconciliation statement built."),
		StatementBuildSeconds: gauge("kooflow_reconciliation_statement_build_seconds", "Time taken to build the last reconciliation statement."),
	}
	reg.MustRegister(m.WebhookDuration, m.KooDriveDuration, m.SmartHubUnmatched)
	m.initSeries()
	return m
}

// initSeries creates every labelled series kooflow knows at zero (see the label lists).
func (m *Metrics) initSeries() {
	for _, activity := range kooGalleryActivities {
		for _, code := range kooGalleryCodes {
			m.WebhookRequests.WithLabelValues("koogallery", activity, string(code))
		}
	}
	for _, kind := range smartHubKinds {
		for _, status := range smartHubStatuses {
			m.WebhookRequests.WithLabelValues("smarthub", kind, strconv.Itoa(status))
		}
	}
	for _, source := range sources {
		m.WebhookDuration.WithLabelValues(source)
		for _, reason := range rejectReasons {
			m.DeliveriesRejected.WithLabelValues(source, reason)
		}
		for _, outcome := range store.DeliveryOutcomes {
			m.Deliveries.WithLabelValues(source, outcome)
		}
		m.DeliveriesUnrecorded.WithLabelValues(source)
		for _, c := range []*prometheus.CounterVec{m.ExpirationsStarted, m.ExpirationsReserved, m.ExpirationsStalled, m.ExpirationsRetried} {
			c.WithLabelValues(source)
		}
	}
	for _, endpoint := range kooDriveEndpoints {
		m.KooDriveDuration.WithLabelValues(endpoint)
		for _, outcome := range kooDriveOutcomes {
			m.KooDriveRequests.WithLabelValues(endpoint, outcome)
		}
	}
	for _, outcome := range reconciliationOutcomes {
		m.ReconciliationRuns.WithLabelValues(outcome)
	}
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

// CountExpirationState counts an expiration of source reaching state in round (1 for
// the first hour): reserved, stalled, or notifying again after an operator's retry. It
// serves the expiration activities (activities.ExpirationCounter).
func (m *Metrics) CountExpirationState(source, state string, round int) {
	if m == nil {
		return
	}
	switch {
	case state == contract.StateReserved:
		m.ExpirationsReserved.WithLabelValues(source).Inc()
	case state == contract.StateStalled:
		m.ExpirationsStalled.WithLabelValues(source).Inc()
	case state == contract.StateNotifying && round > 1:
		m.ExpirationsRetried.WithLabelValues(source).Inc()
	}
}

// CountReconciliationRun counts a reconciliation run reaching state: completed or
// failed; other states count nothing. It serves the reconciliation activities
// (activities.ReconciliationObserver).
func (m *Metrics) CountReconciliationRun(state string) {
	if m == nil {
		return
	}
	switch state {
	case contract.RunCompleted:
		m.ReconciliationRuns.WithLabelValues("completed").Inc()
	case contract.RunFailed:
		m.ReconciliationRuns.WithLabelValues("failed").Inc()
	}
}

// ObserveStatement records the last statement built: its rows and how long it took.
func (m *Metrics) ObserveStatement(rows int, seconds float64) {
	if m == nil {
		return
	}
	m.StatementRows.Set(float64(rows))
	m.StatementBuildSeconds.Set(seconds)
}
