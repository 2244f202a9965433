package webhook

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/kooflow/kooflow/metrics"
	"github.com/kooflow/kooflow/store"
)

// maxUnwrittenDeliveries bounds the deliveries kept in memory while the store does not
// answer. A KooGallery retry storm against a dead store is a few thousand calls; each
// row is well under 3 KB, so the bound keeps at most ~30 MB.
const maxUnwrittenDeliveries = 10_000

// recordTimeout bounds one write of the delivery log, after the sender was answered.
const recordTimeout = 5 * time.Second

// deliveryLog writes the delivery log: one row per inbound call, written after the
// answer so a slow store never delays a sender. A row the store refuses is kept in
// memory and written, oldest first, before the next row the store takes; a row that
// does not fit in memory is counted (kooflow_deliveries_unrecorded_total) and logged.
// Every call is counted in kooflow_deliveries_total whether or not its row is written.
type deliveryLog struct {
	store   Store
	metrics *metrics.Metrics
	logger  *slog.Logger

	mu        sync.Mutex
	unwritten []store.Delivery
}

// record counts d and appends it to the log (d.ReceivedAt is the time of the call).
func (l *deliveryLog) record(d store.Delivery) {
	l.metrics.Deliveries.WithLabelValues(d.Source, d.Outcome).Inc()
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	if _, err := l.store.RecordDelivery(ctx, d); err != nil {
		l.keep(d, err)
		return
	}
	l.writeKept(ctx)
}

// counted counts a delivery whose row another commit already wrote (an expiry accepted
// with its delivery in one transaction), and takes the chance to write kept rows.
func (l *deliveryLog) counted(source, outcome string) {
	l.metrics.Deliveries.WithLabelValues(source, outcome).Inc()
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	l.writeKept(ctx)
}

// keep holds d for a later write, or counts it as unrecorded when memory is full.
func (l *deliveryLog) keep(d store.Delivery, err error) {
	l.mu.Lock()
	full := len(l.unwritten) >= maxUnwrittenDeliveries
	if !full {
		l.unwritten = append(l.unwritten, d)
	}
	l.mu.Unlock()
	if full {
		l.metrics.DeliveriesUnrecorded.WithLabelValues(d.Source).Inc()
		l.logger.Error("delivery not recorded: the store is unavailable and the memory of unwritten deliveries is full",
			"source", d.Source, "activity", d.Activity, "subject", d.Subject, "outcome", d.Outcome, "error", err)
		return
	}
	l.logger.Warn("delivery kept in memory until the store answers", "source", d.Source, "subject", d.Subject, "error", err)
}

// writeKept writes the rows kept while the store was unavailable, oldest first. It is
// called once the store has just taken a write, so a kept row it still refuses is not an
// outage but a row it can never take: that row is counted as unrecorded and logged, so
// it cannot hold the rows behind it back forever.
func (l *deliveryLog) writeKept(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.unwritten) == 0 {
		return
	}
	written := 0
	for _, d := range l.unwritten {
		if _, err := l.store.RecordDelivery(ctx, d); err != nil {
			if ctx.Err() != nil {
				break // out of time: the rest wait for the next write
			}
			l.metrics.DeliveriesUnrecorded.WithLabelValues(d.Source).Inc()
			l.logger.Error("delivery not recorded: the store refuses it", "source", d.Source, "subject", d.Subject, "outcome", d.Outcome, "error", err)
		}
		written++
	}
	l.unwritten = l.unwritten[written:]
	l.logger.Info("deliveries kept during a store outage are written", "count", written, "stillKept", len(l.unwritten))
}
