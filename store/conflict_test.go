package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kooflow/kooflow/store"
)

// hold accepts the expiry of instance for period as a conflict held for an operator.
func (f *intentFixture) hold(instance, period string, runHeld bool) store.Acceptance {
	f.t.Helper()
	sub := f.subs[instance]
	in := store.ExpiryIntent{
		Expiration: store.Expiration{WorkflowID: "expire/koogallery/" + instance + "/" + period, Source: "koogallery", Subject: instance,
			Period: period, SubscriptionID: sub.ID, CarrierUserID: sub.CarrierUserID, PackageID: sub.PackageID},
		Input:    []byte(`{"Subject":"` + instance + `"}`),
		Delivery: store.Delivery{Source: "koogallery", Activity: "expireInstance", Subject: instance, Answer: "000000", Outcome: store.DeliveryConflict},
	}
	if runHeld {
		in.RunHeld, in.Delivery = true, store.Delivery{}
	} else {
		in.Hold = "the registry has it running until 2030"
	}
	acc, err := f.s.AcceptExpiry(context.Background(), in)
	if err != nil {
		f.t.Fatal(err)
	}
	return acc
}

func (f *intentFixture) state(workflowID string) store.Expiration {
	f.t.Helper()
	e, err := f.s.Expiration(context.Background(), workflowID)
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

// TestHeldConflictWaitsForAnOperator: a conflict is kept with its reason and a delivery
// row, is claimed by no relay, is a duplicate when delivered again, and runs once an
// operator releases it.
func TestHeldConflictWaitsForAnOperator(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := newIntentFixture(t, s, "a")
		acc := f.hold("a", "2030", false)
		if acc.Existing || acc.State != store.StateConflict {
			t.Fatalf("hold = %+v", acc)
		}
		if e := f.state(acc.WorkflowID); e.State != store.StateConflict || !strings.Contains(e.LastError, "2030") {
			t.Fatalf("held expiration = %+v", e)
		}
		if claimed := f.claim(10, 0); len(claimed) != 0 {
			t.Fatalf("a relay claimed a held conflict: %v", kinds(claimed))
		}
		if again := f.hold("a", "2030", false); !again.Existing || again.State != store.StateConflict {
			t.Fatalf("second delivery = %+v", again)
		}
		deliveries, err := s.Deliveries(ctx, store.DeliveryFilter{Subjects: []string{"a"}})
		if err != nil || len(deliveries) != 2 || deliveries[0].Outcome != store.DeliveryDuplicate || deliveries[1].Outcome != store.DeliveryConflict {
			t.Fatalf("deliveries = %+v, %v", deliveries, err)
		}
		run := f.hold("a", "2030", true)
		if run.Existing || run.State != store.StateAccepted {
			t.Fatalf("run by operator = %+v", run)
		}
		if e := f.state(acc.WorkflowID); e.State != store.StateAccepted || e.LastError != "" {
			t.Fatalf("released expiration = %+v", e)
		}
		if claimed := f.claim(10, 0); len(claimed) != 1 || claimed[0].WorkflowID != acc.WorkflowID {
			t.Fatalf("claimed after the operator ran it = %v", kinds(claimed))
		}
		if again := f.hold("a", "2030", true); !again.Existing {
			t.Fatalf("running it twice queued it twice: %+v", again)
		}
	})
}

// TestRenewalOrNewExpiryEndsAHeldConflict: KooGallery's renewal ends a held conflict as
// renewed, and an expiry of another period (after the registry was corrected)
// supersedes it; neither leaves it held.
func TestRenewalOrNewExpiryEndsAHeldConflict(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := newIntentFixture(t, s, "a", "b")
		held := f.hold("a", "2030", false)
		stop, err := s.AcceptStop(ctx, store.StopRequest{Source: "koogallery", Subject: "a", Reason: store.StateRenewed, Detail: "renewal order r1", Payload: []byte(`{}`)})
		if err != nil || len(stop.Cancelled) != 1 || stop.Queued {
			t.Fatalf("stop = %+v, %v", stop, err)
		}
		if e := f.state(held.WorkflowID); e.State != store.StateRenewed {
			t.Fatalf("after the renewal = %+v", e)
		}

		heldB := f.hold("b", "2030", false)
		due := f.accept("b", "202612")
		if e := f.state(heldB.WorkflowID); e.State != store.StateSuperseded || !strings.Contains(e.LastError, due.WorkflowID) {
			t.Fatalf("after an expiry of another period = %+v", e)
		}
		if run := f.hold("b", "2030", true); !run.Existing || run.State != store.StateSuperseded {
			t.Fatalf("a superseded conflict ran: %+v", run)
		}
		if claimed := f.claim(10, 0); len(claimed) != 1 || claimed[0].WorkflowID != due.WorkflowID {
			t.Fatalf("claimed = %v", kinds(claimed))
		}
	})
}

// TestMarkClosedMovesOnlyOpenExpirations: a sweep records an unfinished workflow only
// over an open row (never over a workflow's own last write), and only a terminated or
// cancelled one reopens, once.
func TestMarkClosedMovesOnlyOpenExpirations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := newIntentFixture(t, s, "a", "b")
		open := f.accept("a", "p1").WorkflowID
		done := f.accept("b", "p1").WorkflowID
		if err := s.SetExpirationState(ctx, done, store.StateReserved, ""); err != nil {
			t.Fatal(err)
		}
		if moved, err := s.MarkExpirationClosed(ctx, done, store.StateTerminated, "terminated"); err != nil || moved {
			t.Fatalf("a reserved expiration was marked terminated: %v, %v", moved, err)
		}
		if moved, err := s.MarkExpirationClosed(ctx, open, store.StateTerminated, "terminated in Temporal"); err != nil || !moved {
			t.Fatalf("mark open = %v, %v", moved, err)
		}
		if e := f.state(open); e.State != store.StateTerminated || e.LastError != "terminated in Temporal" {
			t.Fatalf("marked = %+v", e)
		}
		if moved, err := s.ReopenExpiration(ctx, open, ""); err != nil || !moved {
			t.Fatalf("reopen = %v, %v", moved, err)
		}
		if moved, err := s.ReopenExpiration(ctx, open, ""); err != nil || moved {
			t.Fatalf("reopened twice: %v, %v", moved, err)
		}
		if e := f.state(open); e.State != store.StateAccepted {
			t.Fatalf("reopened = %+v", e)
		}
	})
}
