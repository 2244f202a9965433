package activities_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/koodrive/sandbox/sandboxtest"
	"github.com/kooflow/kooflow/metrics"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
)

// TestSetExpirationStateMirrorsTheWorkflowAndCountsStalls: the state and the stall reason
// reach the store row operators list, and a stall is counted for the alert.
func TestSetExpirationStateMirrorsTheWorkflowAndCountsStalls(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			w := newExpirationWorld(t, b.DSN(t), sandboxtest.Start(t))
			m := metrics.New()
			w.a.Metrics = m
			change := contract.StateChange{WorkflowID: testWorkflowID, State: contract.StateStalled, LastError: "KooDrive rejected the notification", Source: "koogallery", Round: 1}
			if _, err := w.env.ExecuteActivity(w.a.SetExpirationState, change); err != nil {
				t.Fatal(err)
			}
			if rec := w.record(t); rec.State != store.StateStalled || rec.LastError != change.LastError {
				t.Fatalf("store row = %+v, want stalled with the reason", rec)
			}
			if got := testutil.ToFloat64(m.ExpirationsStalled.WithLabelValues("koogallery")); got != 1 {
				t.Fatalf("stalled counter = %v, want 1", got)
			}
			// The same change again — an attempt retried after the first one wrote — finds
			// the row moved already: the stall is counted once.
			if _, err := w.env.ExecuteActivity(w.a.SetExpirationState, change); err != nil {
				t.Fatal(err)
			}
			if got := testutil.ToFloat64(m.ExpirationsStalled.WithLabelValues("koogallery")); got != 1 {
				t.Fatalf("stalled counter after a repeated write = %v, want 1", got)
			}
		})
	}
}

// TestFreezeSubscriptionFreezesOnlyTheExpiredPeriod: a KooGallery expiry freezes its own
// period once (a repeat changes nothing), and leaves an instance renewed since active.
func TestFreezeSubscriptionFreezesOnlyTheExpiredPeriod(t *testing.T) {
	ctx := context.Background()
	w := newExpirationWorld(t, storetest.SQLiteDSN(t), sandboxtest.Start(t))
	for range 2 {
		if _, err := w.env.ExecuteActivity(w.a.FreezeSubscription, w.input); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := w.store.Subscription(ctx, w.input.SubscriptionID)
	if err != nil || sub.Status != store.StatusFrozen || sub.FrozenPeriod != w.input.Period {
		t.Fatalf("subscription = %+v, %v; want frozen for %s", sub, err, w.input.Period)
	}
	events, err := w.store.Events(ctx, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	frozen := 0
	for _, e := range events {
		if e.Event == "frozen" {
			frozen++
		}
	}
	if frozen != 1 {
		t.Fatalf("history has %d frozen events, want 1: %+v", frozen, events)
	}

	renewed := newExpirationWorld(t, storetest.SQLiteDSN(t), sandboxtest.Start(t))
	if _, err := renewed.store.Renew(ctx, renewed.input.SubscriptionID, time.Now().Add(30*24*time.Hour), "renewal-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := renewed.env.ExecuteActivity(renewed.a.FreezeSubscription, renewed.input); err != nil {
		t.Fatal(err)
	}
	if sub, err := renewed.store.Subscription(ctx, renewed.input.SubscriptionID); err != nil || sub.Status != store.StatusActive {
		t.Fatalf("renewed subscription = %+v, %v; want it left active", sub, err)
	}
}
