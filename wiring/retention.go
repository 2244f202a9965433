package wiring

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/kooflow/kooflow/store"
)

// DefaultRecordRetention keeps the delivery log and the audit log for 400 days: a
// carrier's yearly audit looks back over twelve closed billing cycles, and a month more
// covers the cycle still being reconciled. At a month-end storm of 20,000 expiries a
// month the two logs stay well under a million rows.
const DefaultRecordRetention = 400 * 24 * time.Hour

// minRecordRetention refuses a retention short enough to erase what an operator is
// still looking at (a typo of "7" for "7d" would otherwise mean seven nanoseconds).
const minRecordRetention = 24 * time.Hour

// pruneEvery is how often the intake prunes the logs; the first prune runs at start.
const pruneEvery = time.Hour

// ParseRetention reads KOOFLOW_RECORD_RETENTION: days ("400d") or a Go duration
// ("9600h"); empty is DefaultRecordRetention. Less than a day is refused.
func ParseRetention(s string) (time.Duration, error) {
	if s == "" {
		return DefaultRecordRetention, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("KOOFLOW_RECORD_RETENTION %q: want days (400d) or a duration (9600h)", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("KOOFLOW_RECORD_RETENTION %q: want days (400d) or a duration (9600h)", s)
		}
	}
	if d < minRecordRetention {
		return 0, fmt.Errorf("KOOFLOW_RECORD_RETENTION %q is shorter than a day: the logs would be gone before anyone read them", s)
	}
	return d, nil
}

// pruneRecords deletes the delivery-log and audit-log rows older than retention now and
// then every pruneEvery, until ctx ends. Several webhooks may prune at once: deleting
// what is already deleted does nothing.
func pruneRecords(ctx context.Context, st *store.Store, retention time.Duration, logger *slog.Logger) {
	if retention <= 0 {
		retention = DefaultRecordRetention
	}
	for {
		cutoff := time.Now().Add(-retention)
		deliveries, audit, err := st.PruneRecords(ctx, cutoff)
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Warn("could not prune the delivery and audit logs; will try again", "retention", retention.String(), "error", err)
		case deliveries+audit > 0:
			logger.Info("pruned the delivery and audit logs", "before", cutoff.UTC().Format(time.RFC3339), "deliveries", deliveries, "auditEntries", audit)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pruneEvery):
		}
	}
}
