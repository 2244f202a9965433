package e2e

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kooflow/kooflow/devapp"
	"github.com/kooflow/kooflow/koogallery"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
)

// TestAdmissionHoldsAStormAtTheCapOldestFirst: with the admission cap at 3 and KooDrive
// answering 503 (so every started expiry stays at work, retrying), eight accepted expiries
// put three in Temporal's hands and keep five in kooflow's queue, oldest first, and the
// metrics say so. A renewal of one at work still reaches it (stops pass the cap), and the
// room it leaves goes to the oldest waiting. Once KooDrive answers, every expiry is
// reserved and notified once.
func TestAdmissionHoldsAStormAtTheCapOldestFirst(t *testing.T) {
	const maxActive = 3
	e := newEnvWith(t, func(o *devapp.Options) { o.MaxActive = maxActive })
	var kooDriveDown atomic.Bool
	kooDriveDown.Store(true)
	e.kd.FailWhile(kooDriveDown.Load, http.StatusServiceUnavailable)
	ids := e.importInstances("adm", 8)
	for _, id := range ids {
		e.expectAccepted(id)
	}
	ctx := context.Background()

	e.waitActive(maxActive)
	time.Sleep(2 * time.Second) // two of the relay's looks at the count: it stays held
	e.waitActive(maxActive)
	e.expectQueued(ids[maxActive:]...)
	for _, id := range ids[:maxActive] {
		if rec, err := e.app.Store.Expiration(ctx, expiryID(id)); err != nil || (rec.State != store.StateFreezing && rec.State != store.StateNotifying) {
			t.Fatalf("%s, among the oldest three: %+v, %v; want it at work", id, rec, err)
		}
	}
	_, families := e.scrape()
	for family, want := range map[string]float64{
		"kooflow_intake_admission_cap": maxActive, "kooflow_intake_admission_held": 1,
		"kooflow_expirations_active": maxActive, "kooflow_intake_pending": float64(len(ids) - maxActive),
	} {
		if got := value(families, family, nil); got != want {
			t.Errorf("%s = %v, want %v", family, got, want)
		}
	}

	// KooGallery renews the oldest: its stop is delivered although the relay is held.
	e.mustSucceed("refresh", e.v1(koogallery.Params{"activity": "refreshInstance", "instanceId": ids[0], "orderId": "CS-renew-" + ids[0],
		"expireTime": time.Now().UTC().AddDate(0, 1, 0).Format(koogallery.ExpireTimeLayout)}))
	e.waitState(expiryID(ids[0]), store.StateRenewed, 30*time.Second)
	e.waitActive(maxActive)
	e.expectQueued(ids[maxActive+1:]...)

	kooDriveDown.Store(false)
	e.expectNotifiedOnce(ids[1:])
	if n := len(e.notificationsFor("user-" + ids[0])); n != 0 {
		t.Errorf("the renewed %s: KooDrive notified %d times", ids[0], n)
	}
	e.waitActive(0)
}

// waitActive waits until the store counts want expiries at work in Temporal.
func (e *env) waitActive(want int) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := e.app.Store.ActiveExpirations(context.Background())
		if err == nil && n == want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("active expirations = %d, %v; want %d within 30 s", n, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// expectQueued checks that exactly these instances' starts wait in the intake queue.
func (e *env) expectQueued(instances ...string) {
	e.t.Helper()
	pending, err := e.app.Store.PendingIntents(context.Background(), "", 100)
	if err != nil {
		e.t.Fatal(err)
	}
	var got []string
	for _, in := range pending {
		got = append(got, in.Kind+":"+in.Subject)
	}
	if len(got) != len(instances) {
		e.t.Fatalf("queued %v, want the starts of %v", got, instances)
	}
	for i, id := range instances {
		if got[i] != store.IntentStart+":"+id {
			e.t.Fatalf("queued %v, want the starts of %v", got, instances)
		}
	}
}

// TestAStartedExpiryTemporalNoLongerHasFreesItsPlace: an expiry whose start was delivered
// but whose workflow Temporal no longer has (deleted, or lost with a restored database)
// would hold a place under the admission cap for ever; the sweep of expiries silent for
// longer than VanishedAfter asks Temporal, records it as ended outside kooflow, and the
// place is free. A queued expiry Temporal never had is left to the relay.
func TestAStartedExpiryTemporalNoLongerHasFreesItsPlace(t *testing.T) {
	e := newEnvWith(t, func(o *devapp.Options) { o.NoRelay = true })
	ctx := context.Background()
	ids := e.importInstances("vanished", 2)
	for _, id := range ids {
		e.expectAccepted(id)
	}
	claimed, err := e.app.Store.ClaimIntents(ctx, store.ClaimOptions{Owner: "test", Limit: 1, Lease: time.Minute})
	if err != nil || len(claimed) != 1 || claimed[0].Subject != ids[0] {
		t.Fatalf("claim = %+v, %v", claimed, err)
	}
	// Its start was delivered, as the store records it, but Temporal has no such workflow.
	if err := e.app.Store.CompleteIntents(ctx, store.OutcomeStarted, claimed[0].ID); err != nil {
		t.Fatal(err)
	}
	e.waitActive(1)
	found, err := starter.SweepVanished(ctx, e.app.Client, e.app.Store, time.Now().Add(time.Minute))
	if err != nil || len(found) != 1 || found[0].WorkflowID != expiryID(ids[0]) || found[0].Status != "NotFound" {
		t.Fatalf("sweep found %+v, %v; want %s not found", found, err, expiryID(ids[0]))
	}
	e.waitActive(0)
	if rec, err := e.app.Store.Expiration(ctx, expiryID(ids[0])); err != nil || rec.State != store.StateTerminated {
		t.Fatalf("the vanished expiry: %+v, %v; want terminated", rec, err)
	}
	if d, err := starter.CheckExpiration(ctx, e.app.Client, e.app.Store, expiryID(ids[1])); err != nil || d != nil {
		t.Fatalf("the queued expiry: drift %+v, %v; want none", d, err)
	}
}
