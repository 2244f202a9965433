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

// TestClaimOfOneKindLeavesTheOthersQueued: a relay at its admission cap claims stops
// only; the starts stay queued in their order, and a subject's stop still waits behind
// its own earlier start.
func TestClaimOfOneKindLeavesTheOthersQueued(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := newIntentFixture(t, s, "a", "b", "c")
		f.accept("a", "p1")
		started := f.claim(1, time.Hour)
		if err := s.CompleteIntents(ctx, store.OutcomeStarted, started[0].ID); err != nil {
			t.Fatal(err)
		}
		f.accept("b", "p1")
		f.accept("c", "p1")
		for _, subject := range []string{"a", "b"} {
			// b's start is queued, never claimed: its stop cancels it on the spot.
			if _, err := s.AcceptStop(ctx, store.StopRequest{Source: "koogallery", Subject: subject, Reason: store.StateRenewed, Payload: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
		}
		stops, err := s.ClaimIntents(ctx, store.ClaimOptions{Owner: "test", Limit: 10, Lease: time.Hour, Kind: store.IntentStop})
		if err != nil {
			t.Fatal(err)
		}
		if got := kinds(stops); len(got) != 1 || got[0] != "stop:a" {
			t.Fatalf("claim of stops = %v, want a's stop alone", got)
		}
		if got := kinds(f.claim(10, time.Hour)); len(got) != 1 || got[0] != "start:c" {
			t.Fatalf("then claim = %v, want c's start", got)
		}
	})
}
