package store_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
)

func forEachBackend(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			fn(t, storetest.Open(t, b.DSN(t)))
		})
	}
}

func TestReopenKeepsDataAndSkipsAppliedMigrations(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			dsn := b.DSN(t)
			s := storetest.Open(t, dsn)
			if _, err := s.UpsertSubscriptions(context.Background(), []store.Subscription{{InstanceID: "i1", CarrierUserID: "u1", PackageID: "p1"}}); err != nil {
				t.Fatal(err)
			}
			s.Close()
			again := storetest.Open(t, dsn)
			if _, err := again.SubscriptionByInstance(context.Background(), "i1"); err != nil {
				t.Fatalf("after reopen: %v", err)
			}
		})
	}
}

func TestUpsertByInstanceAndBySIM(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		expire := time.Date(2026, 10, 31, 16, 0, 0, 0, time.UTC)
		stats, err := s.UpsertSubscriptions(ctx, []store.Subscription{
			{InstanceID: "i1", OrderID: "o1", CarrierUserID: "u1", PackageID: "p1", ExpireTime: expire},
			{GIccid: "8986", PackageCode: "PK1", CarrierUserID: "u2", PackageID: "p2"},
		})
		if err != nil || stats.Inserted != 2 || stats.Updated != 0 {
			t.Fatalf("first import: %+v, %v", stats, err)
		}
		stats, err = s.UpsertSubscriptions(ctx, []store.Subscription{
			{InstanceID: "i1", OrderID: "o1", CarrierUserID: "u1b", PackageID: "p1"},
			{GIccid: "8986", PackageCode: "PK1", CarrierUserID: "u2", PackageID: "p2b"},
		})
		if err != nil || stats.Inserted != 0 || stats.Updated != 2 {
			t.Fatalf("second import: %+v, %v", stats, err)
		}
		sub, err := s.SubscriptionByInstance(ctx, "i1")
		if err != nil || sub.CarrierUserID != "u1b" || sub.Status != store.StatusActive {
			t.Fatalf("instance i1 = %+v, %v", sub, err)
		}
		sim, err := s.SubscriptionBySIM(ctx, "8986", "PK1")
		if err != nil || sim.PackageID != "p2b" {
			t.Fatalf("SIM = %+v, %v", sim, err)
		}
		if _, err := s.SubscriptionByInstance(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing instance: %v", err)
		}
	})
}

func TestFreezeIsIdempotentPerPeriod(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := s.UpsertSubscriptions(ctx, []store.Subscription{{InstanceID: "i1", CarrierUserID: "u1", PackageID: "p1"}}); err != nil {
			t.Fatal(err)
		}
		sub, _ := s.SubscriptionByInstance(ctx, "i1")
		for i, want := range []bool{true, false, false} {
			changed, err := s.Freeze(ctx, sub.ID, "20261031160000", false)
			if err != nil || changed != want {
				t.Fatalf("freeze %d: changed=%v err=%v, want %v", i, changed, err, want)
			}
		}
		if changed, err := s.Freeze(ctx, sub.ID, "20261130160000", false); err != nil || !changed {
			t.Fatalf("freeze for a new period: %v %v", changed, err)
		}
		events, err := s.Events(ctx, sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		var frozen int
		for _, e := range events {
			if e.Event == "frozen" {
				frozen++
			}
		}
		if frozen != 2 {
			t.Fatalf("frozen events = %d, want 2 (%+v)", frozen, events)
		}
		if _, err := s.Freeze(ctx, 9999, "x", false); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("freeze unknown subscription: %v", err)
		}
	})
}

func TestExpirationLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		s.UpsertSubscriptions(ctx, []store.Subscription{{InstanceID: "i1", CarrierUserID: "u1", PackageID: "p1"}})
		sub, _ := s.SubscriptionByInstance(ctx, "i1")
		e := store.Expiration{WorkflowID: "expire/koogallery/i1/x", Source: "koogallery", Subject: "i1", Period: "x",
			SubscriptionID: sub.ID, CarrierUserID: "u1", PackageID: "p1"}
		for i, want := range []bool{true, false} {
			isNew, err := s.RecordExpiration(ctx, e)
			if err != nil || isNew != want {
				t.Fatalf("record %d: new=%v err=%v", i, isNew, err)
			}
		}
		if err := s.RecordAttempt(ctx, e.WorkflowID, "KooDrive answered 503"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetExpirationState(ctx, e.WorkflowID, store.StateStalled, "hour spent"); err != nil {
			t.Fatal(err)
		}
		stalled, err := s.Expirations(ctx, store.ExpirationFilter{State: store.StateStalled})
		if err != nil || len(stalled) != 1 || stalled[0].Attempts != 1 || stalled[0].LastError != "hour spent" {
			t.Fatalf("stalled = %+v, %v", stalled, err)
		}
		if err := s.MarkNotified(ctx, e.WorkflowID); err != nil {
			t.Fatal(err)
		}
		s.SetExpirationState(ctx, e.WorkflowID, store.StateReserved, "")
		got, err := s.Expiration(ctx, e.WorkflowID)
		if err != nil || got.State != store.StateReserved || got.NotifiedAt.IsZero() || got.LastError != "" {
			t.Fatalf("reserved = %+v, %v", got, err)
		}
		counts, err := s.CountExpirationsByState(ctx)
		if err != nil || counts[store.StateReserved] != 1 {
			t.Fatalf("counts = %v, %v", counts, err)
		}
		if err := s.SetExpirationState(ctx, "nope", store.StateReserved, ""); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown expiration: %v", err)
		}
	})
}

func TestDeliveriesAndConcurrentWriters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := 0; i < 40; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.RecordDelivery(ctx, store.Delivery{Source: "koogallery", Activity: "expireInstance", Subject: "i1", Answer: "000000"})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Deliveries(ctx, store.DeliveryFilter{Subjects: []string{"i1"}, Limit: 100})
		if err != nil || len(got) != 40 {
			t.Fatalf("deliveries = %d, %v", len(got), err)
		}
	})
}

func TestOpenRejectsUnknownDSN(t *testing.T) {
	_, err := store.Open(context.Background(), "mysql://user:secret@host/db")
	if err == nil {
		t.Fatal("opened a mysql DSN")
	}
	if got := err.Error(); strings.Contains(got, "secret") {
		t.Fatalf("error leaks the password: %s", got)
	}
}

func TestSmartHubEvents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ev := store.SmartHubEvent{EventID: "e1", EventType: "RULE_TRIGGERED", TriggerType: "SERVICE_PACKAGE_EXPIRED", GIccid: "8986", PackageCode: "P", Raw: `{"eventId":"e1"}`}
		got, isNew, err := s.RecordSmartHubEvent(ctx, ev)
		if err != nil || !isNew || got.Status != store.EventReceived {
			t.Fatalf("first: %+v %v %v", got, isNew, err)
		}
		if err := s.SetSmartHubEventStatus(ctx, "e1", store.EventUnmatched, "", "SIM not in the registry"); err != nil {
			t.Fatal(err)
		}
		got, isNew, err = s.RecordSmartHubEvent(ctx, ev)
		if err != nil || isNew || got.Status != store.EventUnmatched {
			t.Fatalf("re-delivery: %+v %v %v", got, isNew, err)
		}
		list, err := s.SmartHubEvents(ctx, store.EventUnmatched, 10)
		if err != nil || len(list) != 1 || list[0].Raw != ev.Raw {
			t.Fatalf("unmatched = %+v, %v", list, err)
		}
		if err := s.SetSmartHubEventStatus(ctx, "nope", store.EventStarted, "", ""); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown event: %v", err)
		}
	})
}

// TestPostgresPoolIsBoundedAndKept: a burst of 128 concurrent requests, as a month-end
// storm sends the webhook, is served by at most PostgresMaxConns connections that stay
// open, instead of a new PostgreSQL connection for nearly every request (database/sql's
// default keeps two idle, and closed the rest after each request).
func TestPostgresPoolIsBoundedAndKept(t *testing.T) {
	s := storetest.Open(t, storetest.PostgresDSN(t))
	var wg sync.WaitGroup
	errs := make(chan error, 128)
	for g := 0; g < 128; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if _, err := s.SubscriptionByInstance(context.Background(), "absent"); !errors.Is(err, store.ErrNotFound) {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("lookup during the burst: %v", err)
	}
	st := s.PoolStats()
	if st.MaxOpenConnections != store.PostgresMaxConns || st.OpenConnections > store.PostgresMaxConns {
		t.Errorf("pool limit %d with %d open; want at most %d", st.MaxOpenConnections, st.OpenConnections, store.PostgresMaxConns)
	}
	if st.MaxIdleClosed != 0 {
		t.Errorf("%d connections were closed after a request for want of idle room; the pool should keep them", st.MaxIdleClosed)
	}
	if st.Idle < 3 {
		t.Errorf("%d idle connections after the burst; want the burst's connections kept", st.Idle)
	}
}
