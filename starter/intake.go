package starter

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/store"
)

// Intake accepts expiries and stops on behalf of the senders (KooGallery, SmartHub, the
// operator CLI) by committing them to kooflow's store — the transactional outbox — so
// the answer "done" depends on the store alone, never on Temporal's availability or
// latency. The Relay delivers what Intake committed.
//
// Crash windows, and why none loses or doubles an expiry:
//   - between the commit and the answer: the sender did not hear "done" and retries; the
//     retry finds the expiry in the store (Acceptance.Existing) and is answered "done"
//     without a second intent, while the relay starts the first one.
//   - between the relay's start and its mark (see Relay): the intent stays pending, is
//     claimed again after the lease, and the start finds the workflow already there.
type Intake struct {
	Store *store.Store
	// Nudge, when set, is called after every commit: it wakes the in-process relay, so a
	// start normally begins at once (the fast path) instead of at the relay's next poll.
	Nudge func()
	// NotifyWindow, when set, replaces the one-hour rule in the inputs it queues
	// (rehearsals and reliability runs).
	NotifyWindow time.Duration
}

// AcceptExpiry durably accepts the expiry v (an accepted Verdict, or a held conflict)
// carried by delivery, once per expiry: a duplicate finds it and queues nothing.
// smartHubEventID, when set, marks that stored push as started. A held conflict is
// recorded in state conflict and queued for no relay until an operator runs it: the
// same verdict after RunByOperator releases it. When it returns nil the sender may be
// told "done".
func (i *Intake) AcceptExpiry(ctx context.Context, v Verdict, delivery store.Delivery, smartHubEventID string) (store.Acceptance, error) {
	if !v.Accept && !v.Held() {
		return store.Acceptance{}, fmt.Errorf("accept expiry: the rule book ignores it: %s", v.Ignored)
	}
	in := v.Input
	if in.NotifyWindow == 0 {
		in.NotifyWindow = i.NotifyWindow
	}
	payload, err := json.Marshal(in)
	if err != nil {
		return store.Acceptance{}, fmt.Errorf("encode input of %s: %w", v.WorkflowID, err)
	}
	delivery.WorkflowID = v.WorkflowID
	intent := store.ExpiryIntent{
		Expiration: store.Expiration{
			WorkflowID: v.WorkflowID, Source: in.Source, Subject: in.Subject, Period: in.Period, SubscriptionID: in.SubscriptionID,
			CarrierUserID: in.CarrierUserID, PackageID: in.PackageID, Test: in.Test,
		},
		Input: payload, Delivery: delivery, SmartHubEventID: smartHubEventID, RunHeld: v.Accept && v.Held(),
	}
	if !v.Accept {
		intent.Hold = v.Conflict
		intent.Delivery.Outcome, intent.Delivery.Reason = store.DeliveryConflict, v.Rule
	}
	acc, err := i.Store.AcceptExpiry(ctx, intent)
	if err != nil {
		return acc, err
	}
	if !acc.Existing && acc.State != store.StateConflict {
		i.nudge()
	}
	return acc, nil
}

// AcceptStop durably records that KooGallery overtook the open expirations of subject
// (reason store.StateRenewed or store.StateReleased): queued starts that never reached
// Temporal are cancelled at once, and a stop for the others is queued behind them.
func (i *Intake) AcceptStop(ctx context.Context, source, subject, reason, detail string) (store.StopAcceptance, error) {
	payload, err := json.Marshal(contract.StopRequest{Reason: reason, Detail: detail})
	if err != nil {
		return store.StopAcceptance{}, fmt.Errorf("encode stop of %s: %w", subject, err)
	}
	acc, err := i.Store.AcceptStop(ctx, store.StopRequest{Source: source, Subject: subject, Reason: reason, Detail: detail, Payload: payload})
	if err != nil {
		return acc, err
	}
	if acc.Queued {
		i.nudge()
	}
	return acc, nil
}

func (i *Intake) nudge() {
	if i.Nudge != nil {
		i.Nudge()
	}
}
