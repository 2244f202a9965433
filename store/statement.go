package store

import (
	"context"
	"fmt"
	"time"
)

// EachStatementCandidate streams, in registry order from one database cursor, the
// subscriptions that may have been active during a cycle starting at start: not expired
// before it and not released before it. Whether each was ordered before the cycle ended
// is for the caller to decide (carrierOrderTime is free text in several layouts). Rows
// are read as fn consumes them, so memory does not grow with the registry.
func (s *Store) EachStatementCandidate(ctx context.Context, start time.Time, fn func(StatementCandidate) error) error {
	from := formatTime(start)
	rows, err := s.db.QueryContext(ctx, s.rebind(`SELECT carrier_order_id, carrier_user_id, carrier_order_time, package_id, status,
 expire_time, created_at FROM subscriptions
 WHERE (expire_time = '' OR expire_time >= ?) AND NOT (status = 'released' AND updated_at < ?)
 ORDER BY id`), from, from)
	if err != nil {
		return fmt.Errorf("read the registry for the statement: %w", err)
	}
	defer rows.Close()
	var (
		c               StatementCandidate
		expire, created string
	)
	for rows.Next() {
		if err := rows.Scan(&c.CarrierOrderID, &c.CarrierUserID, &c.CarrierOrderTime, &c.PackageID, &c.Status, &expire, &created); err != nil {
			return fmt.Errorf("read the registry for the statement: %w", err)
		}
		c.ExpireTime, c.CreatedAt = parseTime(expire), parseTime(created)
		if err := fn(c); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the registry for the statement: %w", err)
	}
	return nil
}
