package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// PeriodOf names the paid period a subscription is in: its expiry time in UTC, or
// "current" when the registry does not know it. A renewal moves the expiry time, so an
// expiry after a renewal is a new period.
func PeriodOf(sub Subscription) string {
	if sub.ExpireTime.IsZero() {
		return "current"
	}
	return sub.ExpireTime.UTC().Format(PeriodLayout)
}

// SubscriptionByOrder looks a subscription up by its purchase order ID. (Lookups by
// order also require a non-empty order_id, so that the partial index
// subscriptions_order serves them: from order_id = ? alone SQLite, and PostgreSQL's
// generic plans, scan the whole registry.)
func (s *Store) SubscriptionByOrder(ctx context.Context, orderID string) (Subscription, error) {
	sub, err := scanSubscription(s.db.QueryRowContext(ctx, s.rebind("SELECT "+subscriptionColumns+" FROM subscriptions WHERE order_id = ? AND order_id <> ''"), orderID))
	if err != nil {
		return Subscription{}, fmt.Errorf("subscription for order %s: %w", orderID, err)
	}
	return sub, nil
}

// ProvisionInstance is KooGallery's purchase: the subscription of sub.OrderID gets
// sub.InstanceID. A subscription already known for the order (an earlier delivery of the
// same purchase, or a mapping imported by orderId) is returned as it is, with the instance
// ID it already has or the given one; otherwise sub is inserted.
func (s *Store) ProvisionInstance(ctx context.Context, sub Subscription) (Subscription, bool, error) {
	created := false
	err := s.durableTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		created = false
		var id int64
		var instance string
		err := tx.QueryRowContext(ctx, s.rebind("SELECT id, COALESCE(instance_id, '') FROM subscriptions WHERE order_id = ? AND order_id <> ''"), sub.OrderID).Scan(&id, &instance)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			now := s.stamp()
			id, err = s.insertID(ctx, tx, `INSERT INTO subscriptions (instance_id, order_id, carrier_user_id, package_id, carrier_order_id,
 carrier_order_time, expire_time, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?, ?)`,
				sub.InstanceID, sub.OrderID, sub.CarrierUserID, sub.PackageID, sub.CarrierOrderID, sub.CarrierOrderTime, formatTime(sub.ExpireTime), now, now)
			if err != nil {
				return err
			}
			created = true
			return s.addEvent(ctx, tx, id, "purchased", "order "+sub.OrderID)
		case err != nil:
			return err
		case instance == "":
			if _, err := s.exec(ctx, tx, "UPDATE subscriptions SET instance_id = ?, updated_at = ? WHERE id = ?", sub.InstanceID, s.stamp(), id); err != nil {
				return err
			}
			return s.addEvent(ctx, tx, id, "purchased", "order "+sub.OrderID+" (imported mapping)")
		}
		return nil
	})
	if err != nil {
		return Subscription{}, false, fmt.Errorf("provision instance for order %s: %w", sub.OrderID, err)
	}
	stored, err := s.SubscriptionByOrder(ctx, sub.OrderID)
	return stored, created, err
}

// RenewResult says what a renewal changed.
type RenewResult struct {
	// Changed is false when the subscription already had this expiry time.
	Changed bool
	// Unfrozen is true when a frozen subscription became active again.
	Unfrozen bool
}

// Renew moves a subscription's expiry time (a renewal, order renewalOrderID) and
// unfreezes a frozen subscription whose new expiry is after now. A released subscription
// cannot be renewed.
func (s *Store) Renew(ctx context.Context, subscriptionID int64, expire time.Time, renewalOrderID string, now time.Time) (RenewResult, error) {
	var res RenewResult
	err := s.durableTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res = RenewResult{}
		sub, err := scanSubscription(tx.QueryRowContext(ctx, s.rebind("SELECT "+subscriptionColumns+" FROM subscriptions WHERE id = ?"), subscriptionID))
		if err != nil {
			return err
		}
		if sub.Status == StatusReleased {
			return ErrReleased
		}
		status := sub.Status
		if sub.Status == StatusFrozen && expire.After(now) {
			status, res.Unfrozen = StatusActive, true
		}
		if sub.ExpireTime.Equal(expire) && sub.RenewedUntil.Equal(expire) && !res.Unfrozen {
			return nil
		}
		res.Changed = true
		if _, err := s.exec(ctx, tx, "UPDATE subscriptions SET expire_time = ?, renewed_until = ?, status = ?, updated_at = ? WHERE id = ?",
			formatTime(expire), formatTime(expire), status, s.stamp(), subscriptionID); err != nil {
			return err
		}
		if err := s.addEvent(ctx, tx, subscriptionID, "renewed", fmt.Sprintf("until %s, order %s", expire.UTC().Format(time.RFC3339), renewalOrderID)); err != nil {
			return err
		}
		if res.Unfrozen {
			return s.addEvent(ctx, tx, subscriptionID, "unfrozen", "renewal "+renewalOrderID)
		}
		return nil
	})
	if err != nil {
		return RenewResult{}, fmt.Errorf("renew subscription %d: %w", subscriptionID, err)
	}
	return res, nil
}

// ErrReleased is returned for changes to a released subscription.
var ErrReleased = errors.New("subscription is released")

// SetStatus moves a subscription to active (unfreeze) or released, recording why. It
// reports whether anything changed; a released subscription stays released.
func (s *Store) SetStatus(ctx context.Context, subscriptionID int64, status, detail string) (bool, error) {
	changed := false
	err := s.durableTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		changed = false
		res, err := s.exec(ctx, tx, "UPDATE subscriptions SET status = ?, updated_at = ? WHERE id = ? AND status <> ? AND status <> 'released'",
			status, s.stamp(), subscriptionID, status)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		changed = true
		event := map[string]string{StatusActive: "unfrozen", StatusReleased: "released", StatusFrozen: "frozen"}[status]
		return s.addEvent(ctx, tx, subscriptionID, event, detail)
	})
	if err != nil {
		return false, fmt.Errorf("set subscription %d %s: %w", subscriptionID, status, err)
	}
	return changed, nil
}

// UseNonce records a V2 request nonce and reports whether it was fresh. Nonces older than
// keep are forgotten.
func (s *Store) UseNonce(ctx context.Context, nonce string, keep time.Duration) (bool, error) {
	now := s.now()
	if _, err := s.exec(ctx, s.db, "DELETE FROM koogallery_nonces WHERE seen_at < ?", formatTime(now.Add(-keep))); err != nil {
		return false, fmt.Errorf("forget old nonces: %w", err)
	}
	res, err := s.exec(ctx, s.db, "INSERT INTO koogallery_nonces (nonce, seen_at) VALUES (?, ?) ON CONFLICT (nonce) DO NOTHING", nonce, formatTime(now))
	if err != nil {
		return false, fmt.Errorf("record nonce: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
