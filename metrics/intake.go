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
	relayed *prometheus.CounterVec
}

// RegisterIntake adds kooflow_intake_pending, kooflow_intake_oldest_pending_seconds
// (from st) and kooflow_intake_relayed_total{kind,outcome} to the registry.
func (m *Metrics) RegisterIntake(st *store.Store) *Intake {
	in := &Intake{relayed: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kooflow_intake_relayed_total",
		Help: "Intake intents the relay handed to Temporal, by kind (start, stop) and outcome (started, existing, signalled, overtaken, failed).",
	}, []string{"kind", "outcome"})}
	for kind, outcomes := range relayOutcomes {
		for _, outcome := range outcomes {
			in.relayed.WithLabelValues(kind, outcome)
		}
	}
	m.Registry.MustRegister(in.relayed, &backlogCollector{
		st:      st,
		pending: prometheus.NewDesc("kooflow_intake_pending", "Accepted expiries and stops not yet delivered to Temporal (from the store).", nil, nil),
		oldest:  prometheus.NewDesc("kooflow_intake_oldest_pending_seconds", "Age of the oldest intent not yet delivered to Temporal; 0 when none is pending.", nil, nil),
	})
	return in
}

// ObserveRelay counts one delivery; it is the relay's observer. A nil *Intake counts nothing.
func (in *Intake) ObserveRelay(kind, outcome string) {
	if in == nil {
		return
	}
	in.relayed.WithLabelValues(kind, outcome).Inc()
}

type backlogCollector struct {
	st              *store.Store
	pending, oldest *prometheus.Desc
}

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.oldest
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
}
