package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestUpgradeFromTheReleaseBeforeTheDeliveryLog opens a database as the release before
// migration 7 left it — deliveries with only their answer code, a renewed subscription —
// and checks that nothing is lost: every old delivery is classified from what it kept,
// and the renewal KooGallery reported still overtakes a late expiry.
func TestUpgradeFromTheReleaseBeforeTheDeliveryLog(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kooflow.db")
	old, err := openSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	old.now = time.Now
	if err := old.migrateTo(ctx, 6); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO subscriptions (instance_id, carrier_user_id, package_id, expire_time, created_at, updated_at)
 VALUES ('renewed-i', 'u', 'p', '2030-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')`,
		`INSERT INTO subscriptions (instance_id, carrier_user_id, package_id, expire_time, created_at, updated_at)
 VALUES ('imported-i', 'u', 'p', '2030-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')`,
		`INSERT INTO subscription_events (subscription_id, at, event, detail)
 SELECT id, '2026-02-01T00:00:00.000Z', 'renewed', 'until 2030-01-01T00:00:00Z, order r1' FROM subscriptions WHERE instance_id = 'renewed-i'`,
		`INSERT INTO deliveries (source, received_at, activity, subject, outcome, detail, workflow_id, request) VALUES
 ('koogallery', '2026-03-01T00:00:00.000Z', 'expireInstance', 'i1', '000000', 'success.', 'expire/koogallery/i1/p', ''),
 ('koogallery', '2026-03-01T00:00:01.000Z', 'expireInstance', 'i2', '000000', 'success. (renewed)', '', ''),
 ('koogallery', '2026-03-01T00:00:02.000Z', 'newInstance', 'i3', '000000', 'success.', '', ''),
 ('koogallery', '2026-03-01T00:00:03.000Z', 'expireInstance', 'i4', '000001', 'authentication failed', '', ''),
 ('koogallery', '2026-03-01T00:00:04.000Z', 'expireInstance', 'i5', '000005', 'store unavailable', '', '')`,
	} {
		if _, err := old.db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	old.Close()

	s, err := Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatalf("the new release does not open the old database: %v", err)
	}
	defer s.Close()
	got, err := s.Deliveries(ctx, DeliveryFilter{})
	if err != nil || len(got) != 5 {
		t.Fatalf("deliveries = %+v, %v", got, err)
	}
	want := map[string][2]string{
		"i1": {DeliveryAccepted, "000000"}, "i2": {DeliveryIgnored, "000000"}, "i3": {DeliveryAccepted, "000000"},
		"i4": {DeliveryRefused, "000001"}, "i5": {DeliveryUnavailable, "000005"},
	}
	for _, d := range got {
		if w := want[d.Subject]; d.Outcome != w[0] || d.Answer != w[1] {
			t.Errorf("delivery %s = outcome %q answer %q, want %q %q", d.Subject, d.Outcome, d.Answer, w[0], w[1])
		}
	}
	renewed, err := s.SubscriptionByInstance(ctx, "renewed-i")
	if err != nil || !renewed.RenewedUntil.Equal(renewed.ExpireTime) {
		t.Fatalf("renewed subscription = %+v, %v", renewed, err)
	}
	imported, err := s.SubscriptionByInstance(ctx, "imported-i")
	if err != nil || !imported.RenewedUntil.IsZero() {
		t.Fatalf("imported subscription = %+v, %v", imported, err)
	}
}
