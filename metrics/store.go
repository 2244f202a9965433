package metrics

import (
	"context"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kooflow/kooflow/store"
)

// expirationStates are reported even when no expiration is in them, so a dashboard shows 0.
var expirationStates = store.States

// storeCollector reports how many expirations are in each state and when a reconciliation
// last completed, read from the store at scrape time: the figures are right across
// restarts and for every process sharing the store.
type storeCollector struct {
	st            *store.Store
	desc          *prometheus.Desc
	test          *prometheus.Desc
	up            *prometheus.Desc
	last          *prometheus.Desc
	discrepancies *prometheus.Desc
	// The store's connection pool, read from this process's database/sql.
	connections, connectionsMax, waits, waitSeconds *prometheus.Desc
}

// diffTypes are KooDrive's discrepancy types, reported (0 when absent) for the last
// completed cycle.
var diffTypes = []string{"1", "2", "3"}

// RegisterStore adds the gauges read from st on every scrape: kooflow_expirations{state}
// (real expirations), kooflow_test_expirations{state} (test rehearsals, testFlag=1, which
// freeze nothing and tell KooDrive nothing), kooflow_store_up, and from the last completed reconciliation
// kooflow_reconciliation_last_completed_timestamp_seconds and
// kooflow_reconciliation_discrepancies{cycle,diff_type} (both absent while no
// reconciliation ever completed, rather than a misleading 0). The cycle label names the
// billing cycle the figures are for, so a dashboard or an alert never mistakes last
// month's discrepancies for this month's. The process's connection pool is reported too:
// kooflow_store_connections{state}, kooflow_store_connections_max, and
// kooflow_store_connection_waits_total / _wait_seconds_total, which grow when requests
// queue for a connection (the store is then the bottleneck of a storm).
func (m *Metrics) RegisterStore(st *store.Store) {
	m.Registry.MustRegister(&storeCollector{
		st:   st,
		desc: prometheus.NewDesc("kooflow_expirations", "Expirations currently in each state, test rehearsals not included (from the store).", []string{"state"}, nil),
		test: prometheus.NewDesc("kooflow_test_expirations", "Test rehearsals (testFlag=1) currently in each state (from the store).", []string{"state"}, nil),
		up:   prometheus.NewDesc("kooflow_store_up", "1 when the store answered the last scrape.", nil, nil),
		last: prometheus.NewDesc("kooflow_reconciliation_last_completed_timestamp_seconds",
			"When a reconciliation run last completed, in Unix seconds (from the store; absent until one completes).", nil, nil),
		discrepancies: prometheus.NewDesc("kooflow_reconciliation_discrepancies",
			"Discrepancies KooDrive reported for the last completed cycle (the cycle label), by diffType (from the store).", []string{"cycle", "diff_type"}, nil),
		connections: prometheus.NewDesc("kooflow_store_connections",
			"This process's open database connections, by state (in_use, idle).", []string{"state"}, nil),
		connectionsMax: prometheus.NewDesc("kooflow_store_connections_max",
			"The most database connections this process opens (0: no limit, as on SQLite).", nil, nil),
		waits: prometheus.NewDesc("kooflow_store_connection_waits_total",
			"Requests that waited for a free database connection because the pool was at its limit.", nil, nil),
		waitSeconds: prometheus.NewDesc("kooflow_store_connection_wait_seconds_total",
			"Time requests spent waiting for a free database connection.", nil, nil),
	})
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc
	ch <- c.test
	ch <- c.up
	ch <- c.last
	ch <- c.discrepancies
	ch <- c.connections
	ch <- c.connectionsMax
	ch <- c.waits
	ch <- c.waitSeconds
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	pool := c.st.PoolStats()
	ch <- prometheus.MustNewConstMetric(c.connections, prometheus.GaugeValue, float64(pool.InUse), "in_use")
	ch <- prometheus.MustNewConstMetric(c.connections, prometheus.GaugeValue, float64(pool.Idle), "idle")
	ch <- prometheus.MustNewConstMetric(c.connectionsMax, prometheus.GaugeValue, float64(pool.MaxOpenConnections))
	ch <- prometheus.MustNewConstMetric(c.waits, prometheus.CounterValue, float64(pool.WaitCount))
	ch <- prometheus.MustNewConstMetric(c.waitSeconds, prometheus.CounterValue, pool.WaitDuration.Seconds())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := c.st.CountExpirations(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	last, completed, err := c.st.LastCompletedRun(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	for _, state := range expirationStates {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts.Live[state]), state)
		ch <- prometheus.MustNewConstMetric(c.test, prometheus.GaugeValue, float64(counts.Test[state]), state)
	}
	if !completed {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.last, prometheus.GaugeValue, float64(last.UpdatedAt.UnixMilli())/1000)
	for _, t := range diffTypes {
		ch <- prometheus.MustNewConstMetric(c.discrepancies, prometheus.GaugeValue, float64(last.Counts[t]), last.Cycle, t)
	}
	for t, n := range last.Counts {
		if !slices.Contains(diffTypes, t) {
			ch <- prometheus.MustNewConstMetric(c.discrepancies, prometheus.GaugeValue, float64(n), last.Cycle, t)
		}
	}
}
