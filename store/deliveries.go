package store

import (
	"context"
	"fmt"
	"time"
)

// Delivery is one inbound call and the answer it got.
type Delivery struct {
	ID         int64
	Source     string
	ReceivedAt time.Time
	Activity   string
	// Subject is the business object the call was about, e.g. the instance ID.
	Subject string
	// Outcome is the answer: a KooGallery result code or an HTTP status.
	Outcome    string
	Detail     string
	WorkflowID string
	// Request is the request as received, with credentials removed.
	Request string
}

// RecordDelivery appends d to the delivery log and returns its ID.
func (s *Store) RecordDelivery(ctx context.Context, d Delivery) (int64, error) {
	if d.ReceivedAt.IsZero() {
		d.ReceivedAt = s.now()
	}
	id, err := s.insertID(ctx, s.db, insertDeliverySQL, deliveryArgs(d)...)
	if err != nil {
		return 0, fmt.Errorf("record %s delivery for %s: %w", d.Source, d.Subject, err)
	}
	return id, nil
}

const insertDeliverySQL = `INSERT INTO deliveries (source, received_at, activity, subject, outcome, detail, workflow_id, request)
 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

func deliveryArgs(d Delivery) []any {
	return []any{d.Source, formatTime(d.ReceivedAt), d.Activity, d.Subject, d.Outcome, d.Detail, d.WorkflowID, d.Request}
}

// insertDelivery records d inside a caller's transaction.
func (s *Store) insertDelivery(ctx context.Context, tx execer, d Delivery) error {
	if d.ReceivedAt.IsZero() {
		d.ReceivedAt = s.now()
	}
	_, err := s.exec(ctx, tx, insertDeliverySQL, deliveryArgs(d)...)
	return err
}

// Deliveries returns the most recent deliveries about subject (all subjects when
// empty), newest first.
func (s *Store) Deliveries(ctx context.Context, subject string, limit int) ([]Delivery, error) {
	query := "SELECT id, source, received_at, activity, subject, outcome, detail, workflow_id, request FROM deliveries"
	args := []any{}
	if subject != "" {
		query += " WHERE subject = ?"
		args = append(args, subject)
	}
	query += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, s.rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var at string
		if err := rows.Scan(&d.ID, &d.Source, &at, &d.Activity, &d.Subject, &d.Outcome, &d.Detail, &d.WorkflowID, &d.Request); err != nil {
			return nil, err
		}
		d.ReceivedAt = parseTime(at)
		out = append(out, d)
	}
	return out, rows.Err()
}
