package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// statusAtCycleEnd is the statement's status column: a subscription's status at the end
// of the billing cycle, not today's, so that a subscription frozen or released after the
// cycle is listed as it stood during it. This is the one place the rule is written:
//
//   - A subscription's status changes only with an event in its history
//     (subscription_events): frozen makes it frozen, unfrozen (an unfreeze, or a renewal
//     that unfroze it) active, released released. Every subscription starts active
//     (registry import, KooGallery purchase); imports, updates and renewals that unfreeze
//     nothing leave the status as it was.
//   - Its status at the cycle's end is therefore what its last such event before the end
//     made it, or active when it had none.
//   - A subscription without such an event at or after the end still has that status,
//     and its status column is used as it is. Every status change also stamps the row's
//     updated_at, in the same transaction a moment before its event, so only rows
//     updated since shortly before the end (updatedSlack) can have one: those alone are
//     checked against the status changes made after the end (the partial index
//     subscription_events_status), and the few that changed are looked up in their
//     history (subscription_events_status_history). The registry is still read in one
//     pass, and a statement built right after the cycle, with no change since, costs
//     about what it did when it listed today's status.
//
// Its arguments are the cycle's end less updatedSlack, then the end twice.
const statusAtCycleEnd = `CASE WHEN s.updated_at >= ? AND s.id IN (SELECT e.subscription_id FROM subscription_events e
  WHERE e.event IN ('frozen', 'unfrozen', 'released') AND e.at >= ?)
 THEN COALESCE((SELECT CASE e.event WHEN 'frozen' THEN 'frozen' WHEN 'released' THEN 'released' ELSE 'active' END
  FROM subscription_events e WHERE e.subscription_id = s.id AND e.event IN ('frozen', 'unfrozen', 'released') AND e.at < ?
  ORDER BY e.id DESC LIMIT 1), 'active')
 ELSE s.status END`

// statementQuery selects the statement's candidates (EachStatementCandidate) with the
// arguments statementArgs gives.
const statementQuery = `SELECT s.carrier_order_id, s.carrier_user_id, s.carrier_order_time, s.package_id,
 ` + statusAtCycleEnd + `, s.expire_time, s.created_at FROM subscriptions s
 WHERE (s.expire_time = '' OR s.expire_time >= ?) AND NOT (s.status = 'released' AND s.updated_at < ?)
 ORDER BY s.id`

// updatedSlack is how long before the cycle's end a row's updated_at may be stamped for
// a status change whose event is stamped at or after it (statusAtCycleEnd): the two
// stamps are taken one after the other in one transaction.
const updatedSlack = time.Minute

func statementArgs(start, end time.Time) []any {
	from, until := formatTime(start), formatTime(end)
	return []any{formatTime(end.Add(-updatedSlack)), until, until, from, from}
}

// EachStatementCandidate streams, in registry order from one database cursor, the
// subscriptions that may have been active during the cycle [start, end): not expired
// before it and not released before it, each with its status at the cycle's end
// (statusAtCycleEnd). Whether each was ordered before the cycle ended is for the caller
// to decide (carrierOrderTime is free text in several layouts). Rows are read as fn
// consumes them, so memory does not grow with the registry.
func (s *Store) EachStatementCandidate(ctx context.Context, start, end time.Time, fn func(StatementCandidate) error) error {
	var q execer = s.db
	if s.dialect == postgres {
		// PostgreSQL's planner charges the history lookup of statusAtCycleEnd to every
		// row (it cannot know that only the few changed since the end run it), so the
		// query's estimated cost passes the JIT thresholds, and compiling it takes longer
		// (0.2 to 0.7 s for a million rows) than anything it saves. One read-only
		// transaction (a single query, so nothing else changes) turns JIT off for it.
		tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return fmt.Errorf("read the registry for the statement: %w", err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, "SET LOCAL jit = off"); err != nil {
			return fmt.Errorf("read the registry for the statement: %w", err)
		}
		q = tx
	}
	rows, err := q.QueryContext(ctx, s.rebind(statementQuery), statementArgs(start, end)...)
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
