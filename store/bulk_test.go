package store_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
)

// rowsOf yields subs as import rows on lines 2, 3, ... (line 1 is a file's header).
func rowsOf(subs ...store.Subscription) iter.Seq2[store.ImportRow, error] {
	return func(yield func(store.ImportRow, error) bool) {
		for i, s := range subs {
			if !yield(store.ImportRow{Line: i + 2, Subscription: s}, nil) {
				return
			}
		}
	}
}

func importRows(t *testing.T, s *store.Store, opts store.ImportOptions, subs ...store.Subscription) (store.ImportStats, error) {
	t.Helper()
	return s.ImportSubscriptions(context.Background(), rowsOf(subs...), opts)
}

func mustImport(t *testing.T, s *store.Store, subs ...store.Subscription) store.ImportStats {
	t.Helper()
	stats, err := importRows(t, s, store.ImportOptions{}, subs...)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return stats
}

// registryDump lists every subscription with its history, to prove an import left the
// registry exactly as it was.
func registryDump(t *testing.T, s *store.Store) string {
	t.Helper()
	var b strings.Builder
	err := s.EachSubscription(context.Background(), func(sub store.Subscription) error {
		fmt.Fprintf(&b, "%+v %s\n", sub, storetest.History(t, s, sub.ID))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// many returns n subscriptions, instances n0000, n0001, ….
func many(n int) []store.Subscription {
	subs := make([]store.Subscription, n)
	for i := range subs {
		subs[i] = store.Subscription{InstanceID: fmt.Sprintf("n%04d", i), CarrierUserID: "u", PackageID: "p"}
	}
	return subs
}

// failingAfter yields subs, as lines 2, 3, …, and then err.
func failingAfter(subs []store.Subscription, err error) iter.Seq2[store.ImportRow, error] {
	return func(yield func(store.ImportRow, error) bool) {
		for i, sub := range subs {
			if !yield(store.ImportRow{Line: i + 2, Subscription: sub}, nil) {
				return
			}
		}
		yield(store.ImportRow{}, err)
	}
}

func wantConflict(t *testing.T, err error, want map[int]string) {
	t.Helper()
	var conflict *store.ImportConflictError
	if !errors.As(err, &conflict) {
		t.Fatalf("err = %v, want an *ImportConflictError", err)
	}
	if conflict.Total != len(want) || len(conflict.Problems) != len(want) {
		t.Fatalf("problems = %+v (total %d), want rows %v", conflict.Problems, conflict.Total, want)
	}
	for _, p := range conflict.Problems {
		if !strings.Contains(p.Reason, want[p.Line]) {
			t.Errorf("row %d: %q, want it to mention %q", p.Line, p.Reason, want[p.Line])
		}
	}
}

var expire = time.Date(2026, 10, 31, 16, 0, 0, 0, time.UTC)

func TestBulkInsertRecordsImported(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		stats := mustImport(t, s,
			store.Subscription{InstanceID: "i1", OrderID: "o1", CarrierUserID: "u1", PackageID: "p1", CarrierOrderID: "co1",
				CarrierOrderTime: "2026-09-01T00:00:00Z", ExpireTime: expire},
			store.Subscription{GIccid: "8986001", PackageCode: "PK1", CarrierUserID: "u2", PackageID: "p2"},
			store.Subscription{OrderID: "o3", CarrierUserID: "u3", PackageID: "p3"},
		)
		if stats != (store.ImportStats{ImportID: 1, Inserted: 3}) {
			t.Fatalf("stats = %+v", stats)
		}
		sub, err := s.SubscriptionByInstance(ctx, "i1")
		if err != nil || sub.OrderID != "o1" || sub.CarrierOrderID != "co1" || !sub.ExpireTime.Equal(expire) || sub.Status != store.StatusActive {
			t.Fatalf("i1 = %+v, %v", sub, err)
		}
		if got := storetest.History(t, s, sub.ID); got != "imported (import 1)" {
			t.Fatalf("events of i1 = %v", got)
		}
		sim, err := s.SubscriptionBySIM(ctx, "8986001", "PK1")
		if err != nil || sim.InstanceID != "" || sim.CarrierUserID != "u2" {
			t.Fatalf("SIM = %+v, %v", sim, err)
		}
		if got := storetest.History(t, s, sim.ID); got != "imported (import 1)" {
			t.Fatalf("events of the SIM = %v", got)
		}
		if _, err := s.SubscriptionByOrder(ctx, "o3"); err != nil {
			t.Fatal(err)
		}
		// New rows into a registry that is no longer empty take the matching path.
		stats = mustImport(t, s, store.Subscription{InstanceID: "i4", CarrierUserID: "u4", PackageID: "p4"})
		if stats != (store.ImportStats{ImportID: 2, Inserted: 1}) {
			t.Fatalf("second import: %+v", stats)
		}
		i4, err := s.SubscriptionByInstance(ctx, "i4")
		if err != nil || i4.ID <= sim.ID {
			t.Fatalf("i4 = %+v, %v (ids must grow)", i4, err)
		}
	})
}

func TestBulkUpdateKeepsStateAndNamesChangedFields(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		mustImport(t, s, store.Subscription{InstanceID: "i1", OrderID: "o1", CarrierUserID: "u1", PackageID: "p1", ExpireTime: expire},
			store.Subscription{GIccid: "8986001", PackageCode: "PK1", CarrierUserID: "u2", PackageID: "p2"})
		before, _ := s.SubscriptionByInstance(ctx, "i1")
		if _, err := s.Freeze(ctx, before.ID, store.PeriodOf(before), false); err != nil {
			t.Fatal(err)
		}
		later := expire.AddDate(0, 1, 0)
		stats := mustImport(t, s,
			store.Subscription{InstanceID: "i1", OrderID: "o1", CarrierUserID: "u1b", PackageID: "p1", ExpireTime: later},
			store.Subscription{GIccid: "8986001", PackageCode: "PK1", CarrierUserID: "u2", PackageID: "p2b", InstanceID: ""},
		)
		if stats != (store.ImportStats{ImportID: 2, Updated: 2}) {
			t.Fatalf("stats = %+v", stats)
		}
		after, _ := s.SubscriptionByInstance(ctx, "i1")
		if after.ID != before.ID || after.CarrierUserID != "u1b" || !after.ExpireTime.Equal(later) ||
			after.Status != store.StatusFrozen || after.FrozenPeriod != store.PeriodOf(before) {
			t.Fatalf("after = %+v", after)
		}
		want := "imported (import 1)|frozen (period " + store.PeriodOf(before) + ")|updated (changed carrierUserId, expireTime; import 2)"
		if got := storetest.History(t, s, after.ID); got != want {
			t.Fatalf("events = %v, want %v", got, want)
		}
		sim, _ := s.SubscriptionBySIM(ctx, "8986001", "PK1")
		if sim.PackageID != "p2b" {
			t.Fatalf("SIM = %+v", sim)
		}
		// A row identified by its SIM may add the instance ID; a row identified by its
		// instance keeps the SIM it does not name.
		stats = mustImport(t, s, store.Subscription{GIccid: "8986001", PackageCode: "PK1", CarrierUserID: "u2", PackageID: "p2b", OrderID: "o2"},
			store.Subscription{InstanceID: "i1", OrderID: "o1", CarrierUserID: "u1b", PackageID: "p1", ExpireTime: later, GIccid: "8986009", PackageCode: "PK9"})
		if stats != (store.ImportStats{ImportID: 3, Updated: 2}) {
			t.Fatalf("third import: %+v", stats)
		}
		if got, _ := s.SubscriptionBySIM(ctx, "8986009", "PK9"); got.ID != after.ID {
			t.Fatalf("i1 did not take SIM 8986009: %+v", got)
		}
		if got := storetest.History(t, s, after.ID); !strings.HasSuffix(got, "|updated (changed gIccid, packageCode; import 3)") {
			t.Fatalf("events = %v", got)
		}
	})
}

func TestBulkUnchangedRowsWriteNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		rows := []store.Subscription{
			{InstanceID: "i1", OrderID: "o1", CarrierUserID: "u1", PackageID: "p1", ExpireTime: expire},
			{GIccid: "8986001", PackageCode: "PK1", CarrierUserID: "u2", PackageID: "p2"},
			{OrderID: "o3", CarrierUserID: "u3", PackageID: "p3"},
		}
		mustImport(t, s, rows...)
		before := registryDump(t, s)
		if stats := mustImport(t, s, rows...); stats != (store.ImportStats{Unchanged: 3}) {
			t.Fatalf("stats = %+v", stats)
		}
		if after := registryDump(t, s); after != before {
			t.Fatalf("an unchanged import wrote:\nbefore %s\nafter  %s", before, after)
		}
		// The SIM row says nothing of an instance: that is no change either.
		if stats := mustImport(t, s, store.Subscription{InstanceID: "i1", OrderID: "o1", CarrierUserID: "u1", PackageID: "p1", ExpireTime: expire}); stats.Unchanged != 1 {
			t.Fatalf("stats = %+v", stats)
		}
	})
}

func TestBulkMixedInsertUpdateUnchanged(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		mustImport(t, s, store.Subscription{InstanceID: "i1", CarrierUserID: "u1", PackageID: "p1"},
			store.Subscription{InstanceID: "i2", CarrierUserID: "u2", PackageID: "p2"},
			store.Subscription{GIccid: "8986001", PackageCode: "PK1", CarrierUserID: "u3", PackageID: "p3"})
		var progress []store.ImportProgress
		stats, err := importRows(t, s, store.ImportOptions{Total: 5, ApplyBatch: 2, Progress: func(p store.ImportProgress) { progress = append(progress, p) }},
			store.Subscription{InstanceID: "i1", CarrierUserID: "u1", PackageID: "p1"},                       // unchanged
			store.Subscription{InstanceID: "i2", CarrierUserID: "u2", PackageID: "p2-new"},                   // updated
			store.Subscription{InstanceID: "i3", CarrierUserID: "u3", PackageID: "p3"},                       // inserted
			store.Subscription{GIccid: "8986001", PackageCode: "PK1", CarrierUserID: "u3b", PackageID: "p3"}, // updated
			store.Subscription{GIccid: "8986002", PackageCode: "PK1", CarrierUserID: "u5", PackageID: "p5"},  // inserted
		)
		if err != nil || stats != (store.ImportStats{ImportID: 2, Inserted: 2, Updated: 2, Unchanged: 1}) {
			t.Fatalf("stats = %+v, %v", stats, err)
		}
		for _, c := range []struct{ instance, iccid, want string }{
			{"i1", "", "imported (import 1)"}, {"i2", "", "imported (import 1)|updated (changed packageId; import 2)"}, {"i3", "", "imported (import 2)"},
			{"", "8986001", "imported (import 1)|updated (changed carrierUserId; import 2)"}, {"", "8986002", "imported (import 2)"},
		} {
			var sub store.Subscription
			var err error
			if c.instance != "" {
				sub, err = s.SubscriptionByInstance(ctx, c.instance)
			} else {
				sub, err = s.SubscriptionBySIM(ctx, c.iccid, "PK1")
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := storetest.History(t, s, sub.ID); got != c.want {
				t.Errorf("%s%s: events %s, want %s", c.instance, c.iccid, got, c.want)
			}
		}
		last := progress[len(progress)-1]
		if last.Phase != store.PhaseApplying || last.Done != 5 || last.Total != 5 {
			t.Fatalf("last progress = %+v (all %+v)", last, progress)
		}
	})
}

func TestBulkIdentityConflictsAreNamedAndNothingIsApplied(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		mustImport(t, s,
			store.Subscription{InstanceID: "i1", CarrierUserID: "u1", PackageID: "p1"},
			store.Subscription{InstanceID: "i2", OrderID: "o2", CarrierUserID: "u2", PackageID: "p2", GIccid: "8986002", PackageCode: "PK2"},
			store.Subscription{OrderID: "o3", CarrierUserID: "u3", PackageID: "p3"})
		before := registryDump(t, s)
		_, err := importRows(t, s, store.ImportOptions{},
			store.Subscription{InstanceID: "i9", CarrierUserID: "u9", PackageID: "p9"},                                        // fine on its own (line 2)
			store.Subscription{InstanceID: "i1", CarrierUserID: "u1", PackageID: "p1", GIccid: "8986002", PackageCode: "PK2"}, // line 3
			store.Subscription{InstanceID: "i7", CarrierUserID: "u7", PackageID: "p7", GIccid: "8986002", PackageCode: "PK2"}, // line 4
			store.Subscription{InstanceID: "i1", OrderID: "o3", CarrierUserID: "u1", PackageID: "p1"},                         // line 5
		)
		wantConflict(t, err, map[int]string{
			3: "identity conflict: instanceId i1 is subscription 1, but gIccid 8986002 packageCode PK2 belongs to subscription 2 (instanceId i2, gIccid 8986002 packageCode PK2, orderId o2)",
			4: "instanceId i7 is new to the registry, but gIccid 8986002 packageCode PK2 belongs to subscription 2",
			5: "instanceId i1 is already on row 3",
		})
		if !strings.Contains(err.Error(), "nothing imported") {
			t.Errorf("message %q does not say nothing was imported", err)
		}
		if after := registryDump(t, s); after != before {
			t.Fatalf("a refused import wrote:\nbefore %s\nafter  %s", before, after)
		}
		// An orderId held by another subscription.
		_, err = importRows(t, s, store.ImportOptions{}, store.Subscription{InstanceID: "i1", OrderID: "o3", CarrierUserID: "u1", PackageID: "p1"})
		wantConflict(t, err, map[int]string{2: "instanceId i1 is subscription 1, but orderId o3 belongs to subscription 3 (orderId o3)"})
		if after := registryDump(t, s); after != before {
			t.Fatal("a refused import wrote")
		}
	})
}

func TestBulkRepeatedSubscriptionsInOneFile(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { testRepeated(t, storetest.Open(t, b.DSN(t)), storetest.Open(t, b.DSN(t))) })
	}
}

func testRepeated(t *testing.T, s, empty *store.Store) {
	{
		mustImport(t, s, store.Subscription{InstanceID: "i1", OrderID: "o1", CarrierUserID: "u1", PackageID: "p1"})
		before := registryDump(t, s)
		_, err := importRows(t, s, store.ImportOptions{},
			store.Subscription{InstanceID: "n1", CarrierUserID: "u", PackageID: "p"},                                    // 2
			store.Subscription{InstanceID: "n1", CarrierUserID: "u", PackageID: "p"},                                    // 3: new instance twice
			store.Subscription{GIccid: "8986", PackageCode: "PK", CarrierUserID: "u", PackageID: "p"},                   // 4
			store.Subscription{InstanceID: "n5", GIccid: "8986", PackageCode: "PK", CarrierUserID: "u", PackageID: "p"}, // 5: SIM of row 4
			store.Subscription{InstanceID: "i1", CarrierUserID: "u", PackageID: "p"},                                    // 6
			store.Subscription{OrderID: "o1", CarrierUserID: "u", PackageID: "p"},                                       // 7: i1 again, by its order
			store.Subscription{InstanceID: "n8", OrderID: "o8", CarrierUserID: "u", PackageID: "p"},                     // 8
			store.Subscription{OrderID: "o8", CarrierUserID: "u", PackageID: "p"},                                       // 9: order of row 8
		)
		wantConflict(t, err, map[int]string{
			3: "instanceId n1 is already on row 2",
			5: "gIccid 8986 packageCode PK is already on row 4",
			7: "subscription 1, by another of its identities, is already on row 6",
			9: "orderId o8 is already on row 8",
		})
		if after := registryDump(t, s); after != before {
			t.Fatalf("a refused import wrote:\nbefore %s\nafter  %s", before, after)
		}
		// The same, into an empty registry (no matching at all before the apply).
		_, err = importRows(t, empty, store.ImportOptions{},
			store.Subscription{InstanceID: "n1", CarrierUserID: "u", PackageID: "p"},
			store.Subscription{InstanceID: "n1", CarrierUserID: "u", PackageID: "p"})
		wantConflict(t, err, map[int]string{3: "instanceId n1 is already on row 2"})
		if dump := registryDump(t, empty); dump != "" {
			t.Fatalf("a refused import wrote %s", dump)
		}
	}
}

func TestBulkFailureMidApplyAppliesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		mustImport(t, s, store.Subscription{InstanceID: "old", CarrierUserID: "u", PackageID: "p"})
		before := registryDump(t, s)
		// A repeated new instance on the last row: its unique violation comes in the last
		// of 100 apply batches, after 99 were written.
		rows := append(many(1000), store.Subscription{InstanceID: "n0003", CarrierUserID: "u", PackageID: "p"})
		_, err := importRows(t, s, store.ImportOptions{ApplyBatch: 10}, rows...)
		wantConflict(t, err, map[int]string{1002: "instanceId n0003 is already on row 5"})
		if after := registryDump(t, s); after != before {
			t.Fatal("a failure in the last batch left earlier batches applied")
		}
		// The import is cancelled after its first apply batch.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		applied := 0
		_, err = s.ImportSubscriptions(ctx, rowsOf(many(1000)...), store.ImportOptions{ApplyBatch: 10, Progress: func(p store.ImportProgress) {
			if p.Phase == store.PhaseApplying {
				applied = p.Done
				cancel()
			}
		}})
		if !errors.Is(err, context.Canceled) || applied == 0 {
			t.Fatalf("err = %v after %d applied rows, want context.Canceled after some", err, applied)
		}
		if after := registryDump(t, s); after != before {
			t.Fatal("a cancelled import left its first batches applied")
		}
		// The source fails half way: nothing is applied either.
		_, err = s.ImportSubscriptions(context.Background(), failingAfter(many(600), errors.New("disk on fire")), store.ImportOptions{})
		if err == nil || !strings.Contains(err.Error(), "disk on fire") {
			t.Fatalf("err = %v", err)
		}
		if after := registryDump(t, s); after != before {
			t.Fatal("a failed source left rows applied")
		}
		// The store still works afterwards on the same connections.
		if stats := mustImport(t, s, many(3)...); stats.Inserted != 3 {
			t.Fatalf("stats = %+v", stats)
		}
	})
}

func TestBulkLinesMustIncrease(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		_, err := s.ImportSubscriptions(context.Background(), func(yield func(store.ImportRow, error) bool) {
			_ = yield(store.ImportRow{Line: 5, Subscription: store.Subscription{InstanceID: "a", CarrierUserID: "u", PackageID: "p"}}, nil) &&
				yield(store.ImportRow{Line: 5, Subscription: store.Subscription{InstanceID: "b", CarrierUserID: "u", PackageID: "p"}}, nil)
		}, store.ImportOptions{})
		if err == nil || !strings.Contains(err.Error(), "lines must increase") {
			t.Fatalf("err = %v", err)
		}
		if dump := registryDump(t, s); dump != "" {
			t.Fatalf("wrote %s", dump)
		}
	})
}

// TestImportIsRecordedOnceWithWhoRanIt: an import that changes the registry is one row of
// registry_imports with its origin and counts, not a history row per subscription, and a
// subscription's history names it; an import that changes nothing, and a refused one,
// leave no record.
func TestImportIsRecordedOnceWithWhoRanIt(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		rows := []store.Subscription{
			{InstanceID: "i1", CarrierUserID: "u1", PackageID: "p1"},
			{InstanceID: "i2", CarrierUserID: "u2", PackageID: "p2"},
			{GIccid: "8986001", PackageCode: "PK1", CarrierUserID: "u3", PackageID: "p3"},
		}
		origin := store.ImportOrigin{Actor: "alice", Via: "console", Source: "registry-2026-12.csv"}
		stats, err := importRows(t, s, store.ImportOptions{Origin: origin}, rows...)
		if err != nil || stats != (store.ImportStats{ImportID: 1, Inserted: 3}) {
			t.Fatalf("import = %+v, %v", stats, err)
		}
		if n := s.RowsForTest(t, "subscription_events"); n != 0 {
			t.Errorf("%d history rows written for 3 imported subscriptions, want 0 (the import's record says it)", n)
		}
		if n := s.RowsForTest(t, "registry_imports"); n != 1 {
			t.Errorf("%d import records, want 1", n)
		}
		sub, err := s.SubscriptionByInstance(ctx, "i2")
		if err != nil {
			t.Fatal(err)
		}
		events, err := s.Events(ctx, sub.ID)
		if err != nil || len(events) != 1 {
			t.Fatalf("events = %+v, %v", events, err)
		}
		if e := events[0]; e.Event != "imported" || e.ImportID != 1 || e.Detail != "import 1 of registry-2026-12.csv by alice via console" || e.At.IsZero() {
			t.Errorf("imported event = %+v", e)
		}
		if stats := mustImport(t, s, rows...); stats != (store.ImportStats{Unchanged: 3}) {
			t.Errorf("unchanged import = %+v, want no import id", stats)
		}
		_, err = importRows(t, s, store.ImportOptions{Origin: origin},
			store.Subscription{InstanceID: "i4", CarrierUserID: "u4", PackageID: "p4", GIccid: "8986001", PackageCode: "PK1"})
		wantConflict(t, err, map[int]string{1: "belongs to subscription"})
		if n := s.RowsForTest(t, "registry_imports"); n != 1 {
			t.Errorf("%d import records after an unchanged and a refused import, want still 1", n)
		}
		stats, err = importRows(t, s, store.ImportOptions{Origin: store.ImportOrigin{Actor: "bob", Via: "cli", Source: "fix.csv"}},
			store.Subscription{InstanceID: "i2", CarrierUserID: "u2", PackageID: "p2-big"})
		if err != nil || stats.ImportID != 2 || stats.Updated != 1 {
			t.Fatalf("update = %+v, %v", stats, err)
		}
		want := "imported (import 1 of registry-2026-12.csv by alice via console)|updated (changed packageId; import 2 of fix.csv by bob via cli)"
		if got := storetest.History(t, s, sub.ID); got != want {
			t.Errorf("history = %s\nwant       %s", got, want)
		}
	})
}

// TestFirstLoadThatFailsLeavesNothing: rows loaded straight into an empty registry are
// all or nothing like any import — a source failing half way, a cancellation during the
// load, or a repeated identity on the last row leave the registry empty and no import
// recorded; the repeated identity is named as the staged checks name it.
func TestFirstLoadThatFailsLeavesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		empty := func(when string) {
			t.Helper()
			if dump := registryDump(t, s); dump != "" {
				t.Fatalf("%s: the registry has %s", when, dump)
			}
			if n := s.RowsForTest(t, "registry_imports"); n != 0 {
				t.Fatalf("%s: %d imports recorded", when, n)
			}
		}
		_, err := s.ImportSubscriptions(context.Background(), failingAfter(many(15_000), errors.New("disk on fire")), store.ImportOptions{})
		if err == nil || !strings.Contains(err.Error(), "disk on fire") {
			t.Fatalf("err = %v", err)
		}
		empty("after a source that failed")

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		loaded := 0
		_, err = s.ImportSubscriptions(ctx, rowsOf(many(25_000)...), store.ImportOptions{Progress: func(p store.ImportProgress) {
			if p.Phase == store.PhaseApplying && loaded == 0 {
				loaded = p.Done
				cancel()
			}
		}})
		if !errors.Is(err, context.Canceled) || loaded == 0 || loaded == 25_000 {
			t.Fatalf("err = %v after %d loaded rows, want context.Canceled part way", err, loaded)
		}
		empty("after a cancelled load")

		indexes := strings.Join(s.RegistryIndexesForTest(t), "\n")
		rows := append(many(20_000), store.Subscription{InstanceID: "n0003", CarrierUserID: "u", PackageID: "p"})
		_, err = importRows(t, s, store.ImportOptions{}, rows...)
		wantConflict(t, err, map[int]string{20_001: "instanceId n0003 is already on row 4"})
		empty("after a repeated identity")

		stats, err := importRows(t, s, store.ImportOptions{}, many(3)...)
		if err != nil || stats.Inserted != 3 || stats.ImportID == 0 {
			t.Fatalf("a good load after them = %+v, %v", stats, err)
		}
		// On PostgreSQL a first load builds the registry's indexes again after its COPY:
		// refused or not, it leaves them as the migrations made them, and they work.
		if got := strings.Join(s.RegistryIndexesForTest(t), "\n"); got != indexes {
			t.Errorf("the registry's indexes after the loads:\n%s\nwant\n%s", got, indexes)
		}
		_, err = importRows(t, s, store.ImportOptions{}, store.Subscription{InstanceID: "other", OrderID: "o", CarrierUserID: "u", PackageID: "p"},
			store.Subscription{InstanceID: "n0001", OrderID: "o", CarrierUserID: "u", PackageID: "p"})
		wantConflict(t, err, map[int]string{3: "orderId o is already on row 2"})
	})
}

// TestARefusedFirstLoadNamesTheRowsWithoutInsertingThemAgain: a first load stopped by a
// repeated identity is staged and checked, and refused without a second insert of every
// row (the phases say so); rows that cannot be ranged over a second time are an error,
// not a silent empty import; a source that panics is an error, and nothing is written.
func TestARefusedFirstLoadNamesTheRowsWithoutInsertingThemAgain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		rows := append(many(30), store.Subscription{InstanceID: "n0003", CarrierUserID: "u", PackageID: "p"})
		var phases []string
		_, err := importRows(t, s, store.ImportOptions{ApplyBatch: 10, Progress: func(p store.ImportProgress) {
			if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
				phases = append(phases, p.Phase)
			}
		}}, rows...)
		wantConflict(t, err, map[int]string{32: "instanceId n0003 is already on row 5"})
		// (On PostgreSQL the first load got as far as building the indexes again.)
		if got := strings.TrimPrefix(strings.Join(phases, ","), "applying,indexing,"); got != "staging,checking" {
			t.Errorf("phases after the first load met the repeat = %s, want staging,checking (no second insert)", got)
		}

		once := false
		oneShot := func(yield func(store.ImportRow, error) bool) {
			if once {
				return
			}
			once = true
			rowsOf(rows...)(yield)
		}
		_, err = s.ImportSubscriptions(context.Background(), oneShot, store.ImportOptions{})
		if err == nil || !strings.Contains(err.Error(), "could not be read a second time") {
			t.Fatalf("a one-shot source after a refused first load: %v", err)
		}

		_, err = s.ImportSubscriptions(context.Background(), func(yield func(store.ImportRow, error) bool) {
			for i, sub := range many(20) {
				if i == 10 {
					panic("parser bug")
				}
				if !yield(store.ImportRow{Line: i + 2, Subscription: sub}, nil) {
					return
				}
			}
		}, store.ImportOptions{})
		if err == nil || !strings.Contains(err.Error(), "panicked: parser bug") {
			t.Fatalf("a panicking source: %v", err)
		}
		if dump := registryDump(t, s); dump != "" {
			t.Fatalf("the registry has %s", dump)
		}
		if n := s.RowsForTest(t, "registry_imports"); n != 0 {
			t.Fatalf("%d imports recorded", n)
		}
	})
}

// TestConcurrentFirstLoadsOfTheSameRowsBothSucceed: two imports of the same subscriptions
// in opposite orders, started together into an empty registry, run one after the other
// (on PostgreSQL they would otherwise wait on each other's uncommitted rows until one was
// aborted as a deadlock): one inserts every row, the other finds them all unchanged.
func TestConcurrentFirstLoadsOfTheSameRowsBothSucceed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		forward := many(2_000)
		backward := slices.Clone(forward)
		slices.Reverse(backward)
		results := make(chan store.ImportStats, 2)
		errs := make(chan error, 2)
		for _, rows := range [][]store.Subscription{forward, backward} {
			go func() {
				stats, err := s.ImportSubscriptions(context.Background(), rowsOf(rows...), store.ImportOptions{})
				results <- stats
				errs <- err
			}()
		}
		var inserted, unchanged int
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatalf("concurrent import: %v", err)
			}
			stats := <-results
			inserted += stats.Inserted
			unchanged += stats.Unchanged
		}
		if inserted != 2_000 || unchanged != 2_000 {
			t.Fatalf("inserted %d, unchanged %d; want 2000 each (one import each)", inserted, unchanged)
		}
	})
}

// TestAnImportNotConfirmedWritesNothing: ImportOptions.Confirm, asked once every row was
// read, can stop a first load and a staged import alike, with its error and nothing
// written.
func TestAnImportNotConfirmedWritesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		notSound := errors.New("row 7 is not sound")
		confirmed := 0
		opts := store.ImportOptions{Confirm: func() error { confirmed++; return notSound }}
		for _, when := range []string{"into an empty registry", "into a registry with rows"} {
			before := registryDump(t, s)
			if _, err := importRows(t, s, opts, many(50)...); !errors.Is(err, notSound) {
				t.Fatalf("%s: err = %v, want the confirmation's", when, err)
			}
			if after := registryDump(t, s); after != before {
				t.Fatalf("%s: an import not confirmed wrote:\nbefore %s\nafter  %s", when, before, after)
			}
			mustImport(t, s, store.Subscription{InstanceID: "other", CarrierUserID: "u", PackageID: "p"})
		}
		if confirmed != 2 {
			t.Errorf("Confirm asked %d times, want once an import", confirmed)
		}
	})
}

// TestAFirstLoadKeptWaitingForTheRegistryLoadsIntoTheIndexedTable: on PostgreSQL a first
// load drops the registry's indexes under an exclusive lock; while a long query holds
// the registry, it does not queue every other statement behind its wait, but loads into
// the indexed table after a second, leaving the indexes as they were.
func TestAFirstLoadKeptWaitingForTheRegistryLoadsIntoTheIndexedTable(t *testing.T) {
	for _, b := range storetest.Backends() {
		if b.Name != "postgres" {
			continue
		}
		t.Run(b.Name, func(t *testing.T) {
			s := storetest.Open(t, b.DSN(t))
			ctx := context.Background()
			indexes := strings.Join(s.RegistryIndexesForTest(t), "\n")
			conn, err := s.ConnForTest(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			reader, err := conn.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer reader.Rollback()
			var n int
			if err := reader.QueryRowContext(ctx, "SELECT COUNT(*) FROM subscriptions").Scan(&n); err != nil {
				t.Fatal(err)
			}
			// The reader keeps its lock until after the import: an import that waited for
			// it would end at this deadline instead.
			importCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			stats, err := s.ImportSubscriptions(importCtx, rowsOf(many(100)...), store.ImportOptions{})
			if err != nil || stats.Inserted != 100 {
				t.Fatalf("a first load beside a reader = %+v, %v", stats, err)
			}
			if got := strings.Join(s.RegistryIndexesForTest(t), "\n"); got != indexes {
				t.Errorf("the registry's indexes after the load:\n%s\nwant\n%s", got, indexes)
			}
		})
	}
}
