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
	s := upgradeSQLiteFrom(t, 6,
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
	)
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

// TestUpgradeCountsTheStartsAlreadyDelivered opens a store as the release before
// migration 13 left it, with expiries accepted and queued, accepted and started (their
// workflows not yet at work), and notifying: after the upgrade the admission count finds
// the started ones, and the queued one stays the queue's.
func TestUpgradeCountsTheStartsAlreadyDelivered(t *testing.T) {
	ctx := context.Background()
	s := upgradeSQLiteFrom(t, 12,
		`INSERT INTO subscriptions (instance_id, carrier_user_id, package_id, expire_time, created_at, updated_at)
 VALUES ('i', 'u', 'p', '2026-11-30T00:00:00.000Z', '2026-11-30T23:00:00.000Z', '2026-11-30T23:00:00.000Z')`,
		`INSERT INTO expirations (workflow_id, source, subject, period, subscription_id, carrier_user_id, package_id, state, created_at, updated_at)
 SELECT w, 'koogallery', s, '2026-11', (SELECT id FROM subscriptions), 'u', 'p', st, '2026-11-30T23:00:00.000Z', '2026-11-30T23:00:00.000Z' FROM (
 SELECT 'queued' AS w, 'q' AS s, 'accepted' AS st UNION ALL SELECT 'started', 's', 'accepted' UNION ALL SELECT 'working', 'w', 'notifying') AS x`,
		`INSERT INTO intake_intents (kind, source, subject, workflow_id, payload, state, outcome, available_at, created_at, updated_at) VALUES
 ('start', 'koogallery', 'q', 'queued', '{}', 'pending', '', '2026-11-30T23:00:00.000Z', '2026-11-30T23:00:00.000Z', '2026-11-30T23:00:00.000Z'),
 ('start', 'koogallery', 's', 'started', '{}', 'done', 'started', '2026-11-30T23:00:00.000Z', '2026-11-30T23:00:00.000Z', '2026-11-30T23:00:00.000Z'),
 ('start', 'koogallery', 'w', 'working', '{}', 'done', 'started', '2026-11-30T23:00:00.000Z', '2026-11-30T23:00:00.000Z', '2026-11-30T23:00:00.000Z')`,
	)
	if n, err := s.ActiveExpirations(ctx); err != nil || n != 2 {
		t.Fatalf("active after the upgrade = %d, %v; want 2 (started and working)", n, err)
	}
	if b, err := s.Backlog(ctx); err != nil || b.Pending != 1 {
		t.Fatalf("backlog after the upgrade = %+v, %v; want the queued one", b, err)
	}
}

// upgradeSQLiteFrom writes a SQLite store as the release at migration version left it,
// with the rows statements insert, and opens it with this release (which migrates it).
func upgradeSQLiteFrom(t *testing.T, version int, statements ...string) *Store {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kooflow.db")
	old, err := openSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	old.now = time.Now
	if err := old.migrateTo(ctx, version); err != nil {
		t.Fatal(err)
	}
	for _, q := range statements {
		if _, err := old.db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	old.Close()
	s, err := Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatalf("the new release does not open the database of the release at migration %d: %v", version, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestUpgradeKeepsTheImportedHistoryOfEarlierReleases opens a store as the release before
// migration 14 left it, whose imports wrote an "imported" history row per subscription:
// that history is kept as it was, and a later import's update follows it, naming the
// import.
func TestUpgradeKeepsTheImportedHistoryOfEarlierReleases(t *testing.T) {
	ctx := context.Background()
	s := upgradeSQLiteFrom(t, 13,
		`INSERT INTO subscriptions (instance_id, carrier_user_id, package_id, created_at, updated_at)
 VALUES ('old-i', 'u', 'p', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')`,
		`INSERT INTO subscription_events (subscription_id, at, event, detail)
 SELECT id, '2026-01-01T00:00:00.000Z', 'imported', '' FROM subscriptions`,
	)
	stats, err := s.ImportSubscriptions(ctx, func(yield func(ImportRow, error) bool) {
		yield(ImportRow{Line: 1, Subscription: Subscription{InstanceID: "old-i", CarrierUserID: "u", PackageID: "p2"}}, nil)
	}, ImportOptions{Origin: ImportOrigin{Actor: "carol", Via: "cli", Source: "delta.csv"}})
	if err != nil || stats.ImportID != 1 || stats.Updated != 1 {
		t.Fatalf("import after the upgrade = %+v, %v", stats, err)
	}
	sub, err := s.SubscriptionByInstance(ctx, "old-i")
	if err != nil {
		t.Fatal(err)
	}
	events, err := s.Events(ctx, sub.ID)
	if err != nil || len(events) != 2 {
		t.Fatalf("events = %+v, %v", events, err)
	}
	if e := events[0]; e.Event != "imported" || e.Detail != "" || e.ImportID != 0 || !e.At.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("the earlier release's imported event = %+v", e)
	}
	if e := events[1]; e.Event != "updated" || e.Detail != "changed packageId; import 1 of delta.csv by carol via cli" || e.ImportID != 1 {
		t.Errorf("the update = %+v", e)
	}
}
