package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kooflow/kooflow/store"
)

// intentFixture registers subscriptions and accepts expiries for them.
type intentFixture struct {
	t    *testing.T
	s    *store.Store
	subs map[string]store.Subscription
}

func newIntentFixture(t *testing.T, s *store.Store, instances ...string) *intentFixture {
	t.Helper()
	var subs []store.Subscription
	for _, id := range instances {
		subs = append(subs, store.Subscription{InstanceID: id, CarrierUserID: "u-" + id, PackageID: "p"})
	}
	if _, err := s.UpsertSubscriptions(context.Background(), subs); err != nil {
		t.Fatal(err)
	}
	f := &intentFixture{t: t, s: s, subs: map[string]store.Subscription{}}
	for _, id := range instances {
		sub, err := s.SubscriptionByInstance(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		f.subs[id] = sub
	}
	return f
}

func (f *intentFixture) accept(instance, period string) store.Acceptance {
	f.t.Helper()
	sub := f.subs[instance]
	id := "expire/koogallery/" + instance + "/" + period
	acc, err := f.s.AcceptExpiry(context.Background(), store.ExpiryIntent{
		Expiration: store.Expiration{WorkflowID: id, Source: "koogallery", Subject: instance, Period: period, SubscriptionID: sub.ID,
			CarrierUserID: sub.CarrierUserID, PackageID: sub.PackageID},
		Input:    []byte(`{"Subject":"` + instance + `"}`),
		Delivery: store.Delivery{Source: "koogallery", Activity: "expireInstance", Subject: instance, Answer: "000000"},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return acc
}

func (f *intentFixture) claim(limit int, lease time.Duration) []store.Intent {
	f.t.Helper()
	in, err := f.s.ClaimIntents(context.Background(), store.ClaimOptions{Owner: "test", Limit: limit, Lease: lease})
	if err != nil {
		f.t.Fatal(err)
	}
	return in
}

func kinds(intents []store.Intent) []string {
	var out []string
	for _, in := range intents {
		out = append(out, in.Kind+":"+in.Subject)
	}
	return out
}

func TestAcceptExpiryQueuesOnceWithItsDelivery(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := newIntentFixture(t, s, "i1")
		first := f.accept("i1", "current")
		if first.Existing || first.State != store.StateAccepted {
			t.Fatalf("first acceptance = %+v", first)
		}
		again := f.accept("i1", "current")
		if !again.Existing || again.WorkflowID != first.WorkflowID {
			t.Fatalf("duplicate acceptance = %+v", again)
		}
		pending, err := s.PendingIntents(ctx, "", 10)
		if err != nil || len(pending) != 1 || pending[0].WorkflowID != first.WorkflowID || string(pending[0].Payload) != `{"Subject":"i1"}` {
			t.Fatalf("pending = %+v, %v", pending, err)
		}
		exp, err := s.Expiration(ctx, first.WorkflowID)
		if err != nil || exp.State != store.StateAccepted {
			t.Fatalf("expiration = %+v, %v", exp, err)
		}
		deliveries, err := s.Deliveries(ctx, store.DeliveryFilter{Subjects: []string{"i1"}, Limit: 10})
		if err != nil || len(deliveries) != 2 || deliveries[0].WorkflowID != first.WorkflowID {
			t.Fatalf("deliveries = %+v, %v", deliveries, err)
		}
		// Newest first: the duplicate, then the delivery that queued the expiry.
		if deliveries[0].Outcome != store.DeliveryDuplicate || deliveries[1].Outcome != store.DeliveryAccepted || deliveries[1].Answer != "000000" {
			t.Fatalf("delivery outcomes = %q, %q (answer %q), want duplicate, accepted", deliveries[0].Outcome, deliveries[1].Outcome, deliveries[1].Answer)
		}
		b, err := s.Backlog(ctx)
		if err != nil || b.Pending != 1 || b.Oldest.IsZero() || time.Since(b.Oldest) > time.Minute {
			t.Fatalf("backlog = %+v, %v", b, err)
		}
	})
}

func TestClaimKeepsEachSubjectInOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := newIntentFixture(t, s, "a", "b")
		f.accept("a", "p1")
		f.accept("b", "p1")
		// A relay claims a's start and has not finished it when the renewal comes:
		// the stop must wait behind it.
		first := f.claim(1, time.Hour)
		if got := kinds(first); len(got) != 1 || got[0] != "start:a" {
			t.Fatalf("first claim = %v", got)
		}
		stop, err := s.AcceptStop(ctx, store.StopRequest{Source: "koogallery", Subject: "a", Reason: store.StateRenewed, Payload: []byte(`{}`)})
		if err != nil || !stop.Queued || len(stop.Cancelled) != 0 {
			t.Fatalf("stop of a claimed start = %+v, %v", stop, err)
		}
		if got := kinds(f.claim(10, time.Hour)); len(got) != 1 || got[0] != "start:b" {
			t.Fatalf("while a's start is in flight, claim = %v, want only b's start", got)
		}
		if err := s.CompleteIntents(ctx, store.OutcomeStarted, first[0].ID); err != nil {
			t.Fatal(err)
		}
		if got := kinds(f.claim(10, time.Hour)); len(got) != 1 || got[0] != "stop:a" {
			t.Fatalf("after a's start, claim = %v, want a's stop", got)
		}
		pendingStop, ok, err := s.PendingStop(ctx, "a", first[0].ID)
		if err != nil || !ok || pendingStop.Kind != store.IntentStop {
			t.Fatalf("pending stop = %+v, %v, %v", pendingStop, ok, err)
		}
	})
}

func TestStopCancelsQueuedStartsNoRelayTouched(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := newIntentFixture(t, s, "r")
		acc := f.accept("r", "p1")
		stop, err := s.AcceptStop(ctx, store.StopRequest{Source: "koogallery", Subject: "r", Reason: store.StateRenewed, Detail: "renewal order R1", Payload: []byte(`{}`)})
		if err != nil || stop.Queued || len(stop.Cancelled) != 1 || stop.Cancelled[0] != acc.WorkflowID {
			t.Fatalf("stop = %+v, %v", stop, err)
		}
		if got := f.claim(10, time.Hour); len(got) != 0 {
			t.Fatalf("claim after cancel = %v, want nothing", kinds(got))
		}
		exp, err := s.Expiration(ctx, acc.WorkflowID)
		if err != nil || exp.State != store.StateRenewed {
			t.Fatalf("cancelled expiration = %+v, %v", exp, err)
		}
		// A late duplicate of the cancelled expiry is recognised, not queued again.
		if again := f.accept("r", "p1"); !again.Existing || again.State != store.StateRenewed {
			t.Fatalf("late duplicate = %+v", again)
		}
		if b, err := s.Backlog(ctx); err != nil || b.Pending != 0 || !b.Oldest.IsZero() {
			t.Fatalf("backlog = %+v, %v", b, err)
		}
	})
}

func TestDeferredAndLeasedIntentsWaitTheirTurn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := newIntentFixture(t, s, "d")
		f.accept("d", "p1")
		claimed := f.claim(10, time.Hour)
		if len(claimed) != 1 || claimed[0].Attempts != 1 {
			t.Fatalf("claim = %+v", claimed)
		}
		if again := f.claim(10, time.Hour); len(again) != 0 {
			t.Fatalf("a leased intent was claimed again: %v", kinds(again))
		}
		if err := s.DeferIntent(ctx, claimed[0].ID, "temporal unavailable", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if again := f.claim(10, time.Hour); len(again) != 0 {
			t.Fatalf("a deferred intent was claimed before its time: %v", kinds(again))
		}
		if err := s.DeferIntent(ctx, claimed[0].ID, "temporal unavailable", time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		again := f.claim(10, time.Hour)
		if len(again) != 1 || again[0].Attempts != 2 || again[0].LastError != "temporal unavailable" {
			t.Fatalf("claim after the backoff = %+v", again)
		}
		// A relay that died with the lease leaves the intent to the next one.
		f.accept("d", "p2")
		if err := s.CompleteIntents(ctx, store.OutcomeStarted, again[0].ID); err != nil {
			t.Fatal(err)
		}
		if got := f.claim(10, -time.Second); len(got) != 1 {
			t.Fatalf("claim = %v", kinds(got))
		}
		if got := f.claim(10, time.Hour); len(got) != 1 || got[0].Attempts != 2 {
			t.Fatalf("claim after an expired lease = %+v", got)
		}
	})
}

// TestConcurrentRelaysNeverShareAnIntent is what lets several webhook replicas relay
// from one PostgreSQL: every intent is claimed by exactly one of them.
func TestConcurrentRelaysNeverShareAnIntent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const n = 200
		var instances []string
		for i := range n {
			instances = append(instances, fmt.Sprintf("c%03d", i))
		}
		f := newIntentFixture(t, s, instances...)
		for _, id := range instances {
			f.accept(id, "p1")
		}
		var (
			mu         sync.Mutex
			seen       = map[int64]string{}
			duplicates []string
			wg         sync.WaitGroup
		)
		for r := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				owner := fmt.Sprintf("relay-%d", r)
				for range n { // bounded: a broken claim cannot loop forever
					got, err := s.ClaimIntents(ctx, store.ClaimOptions{Owner: owner, Limit: 7, Lease: time.Hour})
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, in := range got {
						if prev, dup := seen[in.ID]; dup {
							duplicates = append(duplicates, fmt.Sprintf("intent %d claimed by %s and %s", in.ID, prev, owner))
						}
						seen[in.ID] = owner
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(duplicates) > 0 {
			t.Fatalf("%d intents claimed twice, e.g. %s", len(duplicates), duplicates[0])
		}
		if len(seen) != n {
			t.Fatalf("claimed %d intents, want %d", len(seen), n)
		}
	})
}
