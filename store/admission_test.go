package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/kooflow/kooflow/store"
)

// TestActiveExpirationsCountWhatTemporalWorksOn: an accepted expiry waiting in the queue
// is not Temporal's; once its start is delivered (started or found existing) it is,
// through freezing and notifying, until its workflow reserves or stalls it. The relay's
// admission cap limits this count.
func TestActiveExpirationsCountWhatTemporalWorksOn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		active := func(want int, when string) {
			t.Helper()
			if n, err := s.ActiveExpirations(ctx); err != nil || n != want {
				t.Fatalf("%s: active = %d, %v; want %d", when, n, err, want)
			}
		}
		f := newIntentFixture(t, s, "a", "b", "c", "d")
		ids := map[string]string{}
		for _, inst := range []string{"a", "b", "c", "d"} {
			ids[inst] = f.accept(inst, "p1").WorkflowID
		}
		active(0, "four expiries queued")

		claimed := f.claim(3, time.Hour) // a, b, c
		active(0, "claimed, not yet started")
		if err := s.CompleteIntents(ctx, store.OutcomeStarted, claimed[0].ID, claimed[1].ID); err != nil {
			t.Fatal(err)
		}
		if err := s.CompleteIntents(ctx, store.OutcomeExisting, claimed[2].ID); err != nil {
			t.Fatal(err)
		}
		active(3, "three starts delivered, their workflows not yet at work")

		for inst, state := range map[string]string{"a": store.StateFreezing, "b": store.StateNotifying} {
			if err := s.SetExpirationState(ctx, ids[inst], state, ""); err != nil {
				t.Fatal(err)
			}
		}
		active(3, "freezing and notifying")
		if err := s.SetExpirationState(ctx, ids["a"], store.StateReserved, ""); err != nil {
			t.Fatal(err)
		}
		if err := s.SetExpirationState(ctx, ids["b"], store.StateStalled, "KooDrive refused"); err != nil {
			t.Fatal(err)
		}
		active(1, "one reserved, one stalled (waiting for an operator)")
		if err := s.SetExpirationState(ctx, ids["b"], store.StateNotifying, ""); err != nil {
			t.Fatal(err)
		}
		active(2, "the stalled one retried by an operator")
	})
}

// TestClaimOfStopsLeavesTheStartsQueued: a relay at its admission cap claims stops, and
// the starts a pending stop overtook (settled without starting anything); the other
// starts stay queued in their order, and a subject's stop still waits behind its own
// earlier start.
func TestClaimOfStopsLeavesTheStartsQueued(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := newIntentFixture(t, s, "a", "b", "c", "d")
		f.accept("a", "p1")
		started := f.claim(1, time.Hour)
		if err := s.CompleteIntents(ctx, store.OutcomeStarted, started[0].ID); err != nil {
			t.Fatal(err)
		}
		f.accept("d", "p1")
		tried := f.claim(1, time.Hour) // d's start tried and deferred: its answer may have been lost
		if err := s.DeferIntent(ctx, tried[0].ID, "deadline exceeded", time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		f.accept("b", "p1")
		f.accept("c", "p1")
		for _, subject := range []string{"a", "b", "d"} {
			// b's start is queued, never claimed: its stop cancels it on the spot.
			if _, err := s.AcceptStop(ctx, store.StopRequest{Source: "koogallery", Subject: subject, Reason: store.StateRenewed, Payload: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
		}
		stops, err := s.ClaimIntents(ctx, store.ClaimOptions{Owner: "test", Limit: 10, Lease: time.Hour, StopsOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := kinds(stops); len(got) != 2 || got[0] != "start:d" || got[1] != "stop:a" {
			t.Fatalf("claim of stops = %v, want a's stop and d's overtaken start", got)
		}
		if got := kinds(f.claim(10, time.Hour)); len(got) != 1 || got[0] != "start:c" {
			t.Fatalf("then claim = %v, want c's start", got)
		}
	})
}

// TestStaleActiveExpirationsAreTheOnesToAskAbout: an expiry counted as Temporal's that has
// shown no sign of life since the bound is listed, oldest first; a queued one, a stalled
// one and one that moved recently are not.
func TestStaleActiveExpirationsAreTheOnesToAskAbout(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := newIntentFixture(t, s, "started", "notifying", "stalled", "queued")
		ids := map[string]string{}
		for _, inst := range []string{"started", "notifying", "stalled", "queued"} {
			ids[inst] = f.accept(inst, "p1").WorkflowID
		}
		claimed := f.claim(3, time.Hour) // started, notifying, stalled
		for _, in := range claimed {
			if err := s.CompleteIntents(ctx, store.OutcomeStarted, in.ID); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.SetExpirationState(ctx, ids["notifying"], store.StateNotifying, ""); err != nil {
			t.Fatal(err)
		}
		if err := s.SetExpirationState(ctx, ids["stalled"], store.StateStalled, "KooDrive refused"); err != nil {
			t.Fatal(err)
		}
		if got, err := s.StaleActiveExpirations(ctx, time.Now().Add(-time.Hour), 10); err != nil || len(got) != 0 {
			t.Fatalf("stale an hour ago = %v, %v; want none", got, err)
		}
		got, err := s.StaleActiveExpirations(ctx, time.Now().Add(time.Minute), 10)
		if err != nil || len(got) != 2 || got[0] != ids["started"] || got[1] != ids["notifying"] {
			t.Fatalf("stale a minute from now = %v, %v; want the started one, then the notifying one", got, err)
		}
		for inst, want := range map[string]bool{"started": true, "queued": false} {
			if started, err := s.ExpirationStarted(ctx, ids[inst]); err != nil || started != want {
				t.Errorf("%s: started %v, %v; want %v", inst, started, err, want)
			}
		}
	})
}
