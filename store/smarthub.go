package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SmartHub event statuses.
const (
	// EventReceived: stored, not yet handled (or handling was interrupted).
	EventReceived = "received"
	// EventStarted: an expiration workflow was started (or already existed).
	EventStarted = "started"
	// EventUnmatched: a package expiry whose SIM/package is not in the registry.
	EventUnmatched = "unmatched"
	// EventStored: not an expiry; kept for the record, nothing started.
	EventStored = "stored"
)

// SmartHubEvent is one authenticated SmartHub push.
type SmartHubEvent struct {
	EventID     string
	ReceivedAt  time.Time
	EventType   string
	TriggerType string
	GIccid      string
	PackageCode string
	// ValidThru is the package's validity end, in UTC, for expiries.
	ValidThru  time.Time
	Status     string
	WorkflowID string
	Detail     string
	// Raw is the push body exactly as received.
	Raw       string
	UpdatedAt time.Time
}

// RecordSmartHubEvent stores a push unless its event ID is known. It returns the stored
// event — the existing one for a re-delivery — and whether it was new.
func (s *Store) RecordSmartHubEvent(ctx context.Context, e SmartHubEvent) (SmartHubEvent, bool, error) {
	now := s.stamp()
	if e.Status == "" {
		e.Status = EventReceived
	}
	res, err := s.exec(ctx, s.db, `INSERT INTO smarthub_events (event_id, received_at, event_type, trigger_type, g_iccid, package_code,
 valid_thru, status, raw, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING`,
		e.EventID, now, e.EventType, e.TriggerType, e.GIccid, e.PackageCode, formatTime(e.ValidThru), e.Status, e.Raw, now)
	if err != nil {
		return SmartHubEvent{}, false, fmt.Errorf("record SmartHub event %s: %w", e.EventID, err)
	}
	n, _ := res.RowsAffected()
	stored, err := s.SmartHubEvent(ctx, e.EventID)
	return stored, n == 1, err
}

// SetSmartHubEventStatus records what became of a push.
func (s *Store) SetSmartHubEventStatus(ctx context.Context, eventID, status, workflowID, detail string) error {
	res, err := s.exec(ctx, s.db, "UPDATE smarthub_events SET status = ?, workflow_id = ?, detail = ?, updated_at = ? WHERE event_id = ?",
		status, workflowID, detail, s.stamp(), eventID)
	if err != nil {
		return fmt.Errorf("set status of SmartHub event %s: %w", eventID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("SmartHub event %s: %w", eventID, ErrNotFound)
	}
	return nil
}

// IgnoreSmartHubExpiry records, in one transaction, that the rule book ignored the
// package-expired push eventID for subscription subscriptionID: the push is marked stored
// with "ignored: " and the reason, and the subscription's history gets an "ignored" event.
func (s *Store) IgnoreSmartHubExpiry(ctx context.Context, eventID string, subscriptionID int64, reason string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, "UPDATE smarthub_events SET status = ?, workflow_id = '', detail = ?, updated_at = ? WHERE event_id = ?",
			EventStored, "ignored: "+reason, s.stamp(), eventID)
		if err != nil {
			return fmt.Errorf("set status of SmartHub event %s: %w", eventID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("SmartHub event %s: %w", eventID, ErrNotFound)
		}
		return s.addEvent(ctx, tx, subscriptionID, "ignored", "SmartHub event "+eventID+": "+reason)
	})
}

const smartHubColumns = `event_id, received_at, event_type, trigger_type, g_iccid, package_code, valid_thru, status, workflow_id, detail, raw, updated_at`

func scanSmartHubEvent(row interface{ Scan(...any) error }) (SmartHubEvent, error) {
	var (
		e                           SmartHubEvent
		received, validThru, update string
	)
	err := row.Scan(&e.EventID, &received, &e.EventType, &e.TriggerType, &e.GIccid, &e.PackageCode, &validThru, &e.Status, &e.WorkflowID, &e.Detail, &e.Raw, &update)
	if errors.Is(err, sql.ErrNoRows) {
		return e, ErrNotFound
	}
	e.ReceivedAt, e.ValidThru, e.UpdatedAt = parseTime(received), parseTime(validThru), parseTime(update)
	return e, err
}

// SmartHubEvent returns the push with eventID.
func (s *Store) SmartHubEvent(ctx context.Context, eventID string) (SmartHubEvent, error) {
	e, err := scanSmartHubEvent(s.db.QueryRowContext(ctx, s.rebind("SELECT "+smartHubColumns+" FROM smarthub_events WHERE event_id = ?"), eventID))
	if err != nil {
		return e, fmt.Errorf("SmartHub event %s: %w", eventID, err)
	}
	return e, nil
}

// SmartHubEvents lists pushes with status (all when empty), newest first, at most limit
// (100 when not positive).
func (s *Store) SmartHubEvents(ctx context.Context, status string, limit int) ([]SmartHubEvent, error) {
	return s.SmartHubEventsWhere(ctx, SmartHubEventFilter{Status: status, Limit: limit})
}

// SmartHubEventFilter selects SmartHub pushes; empty fields match everything.
type SmartHubEventFilter struct {
	Status string
	// GIccid selects one SIM's pushes, and with PackageCode one package's. PackageCode
	// without GIccid is refused.
	GIccid      string
	PackageCode string
	// Limit is at most how many are listed (100 when not positive).
	Limit int
}

// SmartHubEventsWhere lists the pushes f selects, newest first. A SIM's pushes are
// found by index (smarthub_events_sim), as are all pushes of a status.
func (s *Store) SmartHubEventsWhere(ctx context.Context, f SmartHubEventFilter) ([]SmartHubEvent, error) {
	if f.PackageCode != "" && f.GIccid == "" {
		return nil, fmt.Errorf("list SmartHub events of package %s: name its gIccid too", f.PackageCode)
	}
	query, args := smartHubEventsQuery(f)
	rows, err := s.db.QueryContext(ctx, s.rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list SmartHub events: %w", err)
	}
	defer rows.Close()
	var out []SmartHubEvent
	for rows.Next() {
		e, err := scanSmartHubEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("list SmartHub events: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// smartHubEventsQuery is SmartHubEventsWhere's query and arguments for f.
func smartHubEventsQuery(f SmartHubEventFilter) (string, []any) {
	var c conditions
	c.equal("g_iccid", f.GIccid)
	c.equal("package_code", f.PackageCode)
	c.equal("status", f.Status)
	if f.Limit <= 0 {
		f.Limit = 100
	}
	query := "SELECT " + smartHubColumns + " FROM smarthub_events"
	if len(c.clauses) > 0 {
		query += " WHERE " + strings.Join(c.clauses, " AND ")
	}
	return query + " ORDER BY received_at DESC, event_id LIMIT ?", append(c.args, f.Limit)
}
