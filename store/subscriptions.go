package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Event is one entry of a subscription's history.
type Event struct {
	At time.Time
	// Event names what happened: imported, updated, frozen, unfrozen, released, renewed, ….
	Event string
	// Detail says more, in words.
	Detail string
	// ImportID is the registry import that made the event, 0 for any other.
	ImportID int64
}

const subscriptionColumns = `id, COALESCE(instance_id, ''), order_id, carrier_user_id, package_id, carrier_order_id,
 carrier_order_time, expire_time, COALESCE(g_iccid, ''), COALESCE(package_code, ''), status, frozen_period, renewed_until, created_at, updated_at`

func scanSubscription(row interface{ Scan(...any) error }) (Subscription, error) {
	var (
		sub                               Subscription
		expire, renewed, created, updated string
	)
	err := row.Scan(&sub.ID, &sub.InstanceID, &sub.OrderID, &sub.CarrierUserID, &sub.PackageID, &sub.CarrierOrderID,
		&sub.CarrierOrderTime, &expire, &sub.GIccid, &sub.PackageCode, &sub.Status, &sub.FrozenPeriod, &renewed, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return Subscription{}, ErrNotFound
	}
	if err != nil {
		return Subscription{}, err
	}
	sub.ExpireTime, sub.RenewedUntil = parseTime(expire), parseTime(renewed)
	sub.CreatedAt, sub.UpdatedAt = parseTime(created), parseTime(updated)
	return sub, nil
}

// SubscriptionByInstance looks a subscription up by its KooGallery instance ID.
func (s *Store) SubscriptionByInstance(ctx context.Context, instanceID string) (Subscription, error) {
	sub, err := scanSubscription(s.db.QueryRowContext(ctx, s.rebind("SELECT "+subscriptionColumns+" FROM subscriptions WHERE instance_id = ?"), instanceID))
	if err != nil {
		return Subscription{}, fmt.Errorf("subscription for instance %s: %w", instanceID, err)
	}
	return sub, nil
}

// SubscriptionBySIM looks a subscription up by SmartHub's gIccid and packageCode.
func (s *Store) SubscriptionBySIM(ctx context.Context, gIccid, packageCode string) (Subscription, error) {
	sub, err := scanSubscription(s.db.QueryRowContext(ctx, s.rebind("SELECT "+subscriptionColumns+" FROM subscriptions WHERE g_iccid = ? AND package_code = ?"), gIccid, packageCode))
	if err != nil {
		return Subscription{}, fmt.Errorf("subscription for SIM %s package %s: %w", gIccid, packageCode, err)
	}
	return sub, nil
}

// Subscription looks a subscription up by its registry ID.
func (s *Store) Subscription(ctx context.Context, id int64) (Subscription, error) {
	sub, err := scanSubscription(s.db.QueryRowContext(ctx, s.rebind("SELECT "+subscriptionColumns+" FROM subscriptions WHERE id = ?"), id))
	if err != nil {
		return Subscription{}, fmt.Errorf("subscription %d: %w", id, err)
	}
	return sub, nil
}

func nullable(v string) any {
	if v == "" {
		return nil
	}
	return v
}

func (s *Store) addEvent(ctx context.Context, tx execer, subscriptionID int64, event, detail string) error {
	_, err := s.exec(ctx, tx, "INSERT INTO subscription_events (subscription_id, at, event, detail) VALUES (?, ?, ?, ?)",
		subscriptionID, s.stamp(), event, detail)
	if err != nil {
		return fmt.Errorf("record %s event for subscription %d: %w", event, subscriptionID, err)
	}
	return nil
}

// Freeze marks a subscription frozen for period. It reports whether anything changed:
// freezing again for the same period, or freezing a released subscription, is a no-op.
// With onlyCurrent, a subscription no longer in that period (renewed since) is not frozen.
func (s *Store) Freeze(ctx context.Context, subscriptionID int64, period string, onlyCurrent bool) (bool, error) {
	changed := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if onlyCurrent {
			sub, err := scanSubscription(tx.QueryRowContext(ctx, s.rebind("SELECT "+subscriptionColumns+" FROM subscriptions WHERE id = ?"), subscriptionID))
			if err != nil {
				return err
			}
			if PeriodOf(sub) != period {
				return nil
			}
		}
		res, err := s.exec(ctx, tx, `UPDATE subscriptions SET status = 'frozen', frozen_period = ?, updated_at = ?
 WHERE id = ? AND status <> 'released' AND NOT (status = 'frozen' AND frozen_period = ?)`, period, s.stamp(), subscriptionID, period)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			var exists int
			if err := tx.QueryRowContext(ctx, s.rebind("SELECT 1 FROM subscriptions WHERE id = ?"), subscriptionID).Scan(&exists); err != nil {
				if errors.Is(err, sql.ErrNoRows) {
					return ErrNotFound
				}
				return err
			}
			return nil
		}
		changed = true
		return s.addEvent(ctx, tx, subscriptionID, "frozen", "period "+period)
	})
	if err != nil {
		return false, fmt.Errorf("freeze subscription %d for period %s: %w", subscriptionID, period, err)
	}
	return changed, nil
}

// Events returns a subscription's history, oldest first: "imported" first when a registry
// import created it (recorded with the import since migration 14, as an event row before),
// then its history rows. An event a registry import made names the import, its file and
// who ran it in Detail.
func (s *Store) Events(ctx context.Context, subscriptionID int64) ([]Event, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind(`SELECT 0 AS kind, s.id AS seq, i.at, 'imported' AS event, '' AS detail,
 i.id, i.actor, i.via, i.source
 FROM subscriptions s JOIN registry_imports i ON i.id = s.imported_by WHERE s.id = ?
 UNION ALL
 SELECT 1, e.id, e.at, e.event, e.detail, COALESCE(i.id, 0), COALESCE(i.actor, ''), COALESCE(i.via, ''), COALESCE(i.source, '')
 FROM subscription_events e LEFT JOIN registry_imports i ON i.id = e.import_id WHERE e.subscription_id = ?
 ORDER BY kind, seq`), subscriptionID, subscriptionID)
	if err != nil {
		return nil, fmt.Errorf("events of subscription %d: %w", subscriptionID, err)
	}
	defer rows.Close()
	var events []Event
	for rows.Next() {
		var (
			e                  Event
			kind, seq          int64
			at                 string
			actor, via, source string
		)
		if err := rows.Scan(&kind, &seq, &at, &e.Event, &e.Detail, &e.ImportID, &actor, &via, &source); err != nil {
			return nil, fmt.Errorf("events of subscription %d: %w", subscriptionID, err)
		}
		e.At = parseTime(at)
		if e.ImportID != 0 {
			e.Detail = strings.TrimPrefix(e.Detail+"; "+describeImport(e.ImportID, actor, via, source), "; ")
		}
		events = append(events, e)
	}
	return events, rows.Err()
}

// describeImport names a registry import for a history line: "import 12 of registry.csv
// by alice via cli", leaving out what was not recorded.
func describeImport(id int64, actor, via, source string) string {
	d := fmt.Sprintf("import %d", id)
	if source != "" {
		d += " of " + source
	}
	if actor != "" {
		d += " by " + actor
	}
	if via != "" {
		d += " via " + via
	}
	return d
}
