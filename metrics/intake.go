package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kooflow/kooflow/store"
)

// relayOutcomes are the outcomes each kind of intent can have, reported at zero from the
// start so that increase() sees the first one.
var relayOutcomes = map[string][]string{
	store.IntentStart: {store.OutcomeStarted, store.OutcomeExisting, store.OutcomeOvertaken, "failed"},
	store.IntentStop:  {store.OutcomeSignalled, "failed"},
}

// Intake measures the intake outbox: the backlog, read from the store at scrape time (so
// it is right for every process sharing the store), and what this process's relay did.
type Intake struct {
	relayed   *prometheus.CounterVec
	admission prometheus.Gauge
	held      prometheus.Gauge
}

// RegisterIntake adds kooflow_intake_pending, kooflow_intake_oldest_pending_seconds,
// kooflow_expirations_active (from st), kooflow_intake_relayed_total{kind,outcome} and
// the admission cap's kooflow_intake_admission_cap and kooflow_intake_admission_held to
// the registry.
func (m *Metrics) RegisterIntake(st *store.Store) *Intake {
	in := &Intake{relayed: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kooflow_intake_relayed_total",
		Help: "Intake intents the relay handed to Temporal, by kind (start, stop) and outcome (started, existing, signalled, overtaken, failed).",
	}, []string{"kind", "outcome"}),
		admission: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kooflow_intake_admission_cap",
			Help: "The most expiries this process's relay lets Temporal work on at once (KOOFLOW_MAX_ACTIVE_EXPIRIES); 0: no cap, or no relay here.",
		}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kooflow_intake_admission_held",
			Help: "1 while this process's relay holds new starts back because Temporal works on as many expiries as the cap allows, else 0.",
		}),
	}
	for kind, outcomes := range relayOutcomes {
		for _, outcome := range outcomes {
			in.relayed.WithLabelValues(kind, outcome)
		}
	}
	m.Registry.MustRegister(in.relayed, in.admission, in.held, &backlogCollector{
		st:      st,
		pending: prometheus.NewDesc("kooflow_intake_pending", "Accepted expiries and stops not yet delivered to Temporal (from the store).", nil, nil),
		oldest:  prometheus.NewDesc("kooflow_intake_oldest_pending_seconds", "Age of the oldest intent not yet delivered to Temporal; 0 when none is pending.", nil, nil),
		active: prometheus.NewDesc("kooflow_expirations_active",
			"Expiries Temporal is working on: started and not yet reserved, stalled or ended (from the store); what the admission cap limits.", nil, nil),
	})
	return in
}

// SetAdmissionCap reports the relay's admission cap (starter.Relay.Cap); 0: none. A nil *Intake does
// nothing.
func (in *Intake) SetAdmissionCap(n int) {
	if in == nil {
		return
	}
	in.admission.Set(float64(max(n, 0)))
}

// ObserveAdmission records whether the relay's last count held starts back; it is the
// relay's admission observer. A nil *Intake counts nothing.
func (in *Intake) ObserveAdmission(_ int, held bool) {
	if in == nil {
		return
	}
	v := 0.0
	if held {
		v = 1
	}
	in.held.Set(v)
}

// ObserveRelay counts one delivery; it is the relay's observer. A nil *Intake counts nothing.
func (in *Intake) ObserveRelay(kind, outcome string) {
	if in == nil {
		return
	}
	in.relayed.WithLabelValues(kind, outcome).Inc()
}

type backlogCollector struct {
	st                      *store.Store
	pending, oldest, active *prometheus.Desc
}

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.oldest
	ch <- c.active
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	b, err := c.st.Backlog(ctx)
	if err != nil {
		// kooflow_store_up (the store collector) reports the failure; no figure is better
		// than a wrong one.
		return
	}
	age := 0.0
	if !b.Oldest.IsZero() {
		age = time.Since(b.Oldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(b.Pending))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age)
	if active, err := c.st.ActiveExpirations(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(active))
	}
}
