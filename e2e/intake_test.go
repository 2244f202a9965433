package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/devapp"
	"github.com/kooflow/kooflow/koogallery"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/workflows"
)

// The intake answers KooGallery from kooflow's store alone: these tests take Temporal
// away, crash the relay at its worst moments and deliver out of order, and check that no
// sender ever sees an error for it and no expiry is lost or doubled.

func (e *env) stopTemporal() {
	e.t.Helper()
	if err := e.app.StopTemporal(); err != nil {
		e.t.Fatalf("stop Temporal: %v", err)
	}
}

func (e *env) startTemporal() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := e.app.StartTemporal(ctx); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) importInstances(prefix string, n int) []string {
	e.t.Helper()
	var subs []store.Subscription
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s-%03d", prefix, i)
		ids = append(ids, id)
		subs = append(subs, store.Subscription{InstanceID: id, CarrierUserID: "user-" + id, PackageID: "pkg"})
	}
	e.importSubscriptions(subs...)
	return ids
}

func expiryID(instance string) string {
	return starter.ExpirationWorkflowID(contract.ExpirationInput{Source: starter.SourceKooGallery, Subject: instance, Period: "current"})
}

// expectAccepted sends an expiry and requires 000000 within KooGallery's 5 seconds.
func (e *env) expectAccepted(instance string) {
	e.t.Helper()
	a := e.expire(instance, nil)
	if a.Result.ResultCode != koogallery.Success || a.Elapsed > 5*time.Second {
		e.t.Fatalf("expire %s: %+v, want 000000 within 5 s", instance, a)
	}
}

func (e *env) expectNotifiedOnce(ids []string) {
	e.t.Helper()
	for _, id := range ids {
		e.waitState(expiryID(id), store.StateReserved, 90*time.Second)
	}
	for _, id := range ids {
		if n := len(e.notificationsFor("user-" + id)); n != 1 {
			e.t.Errorf("%s: KooDrive notified %d times, want 1", id, n)
		}
		if n := e.frozenEvents(id); n != 1 {
			e.t.Errorf("%s: frozen %d times, want 1", id, n)
		}
	}
	if b, err := e.app.Store.Backlog(context.Background()); err != nil || b.Pending != 0 {
		e.t.Errorf("backlog after delivery = %+v, %v", b, err)
	}
}

func TestTemporalDownIntakeStillAcceptsAndRelaysOnReturn(t *testing.T) {
	e := newEnv(t)
	ids := e.importInstances("down", 50)
	e.stopTemporal()
	for _, id := range ids {
		e.expectAccepted(id)
	}
	resp, err := http.Get(e.app.WebhookURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz with Temporal down = %d, want 200 (the intake only needs its store)", resp.StatusCode)
	}
	if _, families := e.scrape(); value(families, "kooflow_intake_pending", nil) != 50 {
		t.Fatalf("kooflow_intake_pending = %v, want 50", value(families, "kooflow_intake_pending", nil))
	}
	e.startTemporal()
	e.expectNotifiedOnce(ids)
	// Each intent is delivered once, as "started" or as "existing": Temporal coming back
	// under load may take a start and lose its answer (the relay's call times out while
	// the server persists it), and the next pass then finds the workflow. Which of the two
	// is timing; that no expiry was started twice is what expectNotifiedOnce checked.
	_, families := e.scrape()
	relayed := func(outcome string) float64 {
		return value(families, "kooflow_intake_relayed_total", map[string]string{"kind": "start", "outcome": outcome})
	}
	started, existing, failed := relayed(store.OutcomeStarted), relayed(store.OutcomeExisting), relayed("failed")
	t.Logf("relayed starts: %v started, %v existing, %v failed attempts", started, existing, failed)
	if started+existing != 50 || started < 1 {
		t.Errorf("relayed starts = %v started + %v existing, want 50 in all", started, existing)
	}
}

// TestQueuedIntentsSurviveTheWebhookDying stops the whole process while its intents are
// queued (Temporal down, so its relay delivered nothing) and starts a new one: the
// commit, not the process, carries the expiry.
func TestQueuedIntentsSurviveTheWebhookDying(t *testing.T) {
	e := newEnv(t)
	ids := e.importInstances("crash", 20)
	e.stopTemporal()
	for _, id := range ids {
		e.expectAccepted(id)
	}
	e.stop()
	e.start()
	e.expectNotifiedOnce(ids)
}

func TestDuplicateDeliveriesWhileQueuedMakeOneExpiry(t *testing.T) {
	e := newEnv(t)
	ids := e.importInstances("dup", 1)
	e.stopTemporal()
	for range 5 {
		e.expectAccepted(ids[0])
	}
	pending, err := e.app.Store.PendingIntents(context.Background(), ids[0], 10)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending intents = %+v, %v, want exactly 1", pending, err)
	}
	e.startTemporal()
	e.expectNotifiedOnce(ids)
	e.expectAccepted(ids[0]) // and after the run, still one
	if n := len(e.notificationsFor("user-" + ids[0])); n != 1 {
		t.Fatalf("notifications = %d", n)
	}
}

// TestRenewalWhileQueuedNeverFreezes: the expiry was accepted and the relay has been
// trying to start it while Temporal was down; then the renewal arrives. When Temporal
// returns, nothing may be frozen or told to KooDrive.
func TestRenewalWhileQueuedNeverFreezes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const id = "renew-q"
	e.importSubscriptions(store.Subscription{InstanceID: id, CarrierUserID: "user-" + id, PackageID: "pkg"})
	e.stopTemporal()
	e.expectAccepted(id)
	// Let the relay fail at least once, so the start is no longer cancellable on the spot.
	deadline := time.Now().Add(30 * time.Second)
	for {
		pending, err := e.app.Store.PendingIntents(ctx, id, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) == 1 && pending[0].Attempts > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the relay never tried the queued start: %+v", pending)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.renew(id, "RENEW-1")
	e.startTemporal()
	// Either the relay cancels the start (Temporal never had it) or a start that was in
	// flight when Temporal returned lands, and the workflow's rule-book check ends it:
	// both end renewed, and neither freezes or notifies.
	e.waitState(expiryID(id), store.StateRenewed, 60*time.Second)
	waitBacklogEmpty(t, e.app.Store)
	if n := len(e.notificationsFor("user-" + id)); n != 0 {
		t.Fatalf("KooDrive was notified %d times for a renewed instance", n)
	}
	if n := e.frozenEvents(id); n != 0 {
		t.Fatalf("the renewed instance was frozen %d times", n)
	}
}

// TestRenewalBeforeAnyRelayTouchedItCancelsTheStart: with no relay running, a renewal
// cancels the queued start on the spot; no workflow ever exists.
func TestRenewalBeforeAnyRelayTouchedItCancelsTheStart(t *testing.T) {
	e, relay := newQueuedExpiry(t, "renew-first")
	ctx := context.Background()
	const id = "renew-first"
	e.renew(id, "RENEW-2")
	if rec, err := e.app.Store.Expiration(ctx, expiryID(id)); err != nil || rec.State != store.StateRenewed {
		t.Fatalf("expiration after the renewal = %+v, %v", rec, err)
	}
	if n, err := relay.DeliverSubject(ctx, id); err != nil || n != 0 {
		t.Fatalf("relay delivered %d, %v; want nothing left to deliver", n, err)
	}
	_, err := e.app.Client.DescribeWorkflowExecution(ctx, expiryID(id), "")
	var notFound *serviceerror.NotFound
	if !errors.As(err, &notFound) {
		t.Fatalf("a workflow exists for the cancelled expiry: %v", err)
	}
}

// TestStartAfterRenewalEndsWithoutFreezing: the workflow starts although the registry
// says the instance was renewed since its expiry was accepted (the stop never reached
// the queue, e.g. a renewal imported by an operator): its rule-book check ends it.
func TestStartAfterRenewalEndsWithoutFreezing(t *testing.T) {
	e, relay := newQueuedExpiry(t, "renew-late")
	ctx := context.Background()
	const id = "renew-late"
	sub, err := e.app.Store.SubscriptionByInstance(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.app.Store.Renew(ctx, sub.ID, time.Now().Add(30*24*time.Hour), "RENEW-3", time.Now()); err != nil {
		t.Fatal(err)
	}
	if n, err := relay.DeliverSubject(ctx, id); err != nil || n != 1 {
		t.Fatalf("relay delivered %d, %v", n, err)
	}
	e.waitState(expiryID(id), store.StateRenewed, 30*time.Second)
	if n, f := len(e.notificationsFor("user-"+id)), e.frozenEvents(id); n != 0 || f != 0 {
		t.Fatalf("%d notifications, %d freezes for a renewed instance", n, f)
	}
	e.recordHistory(expiryID(id), "expiration-overtaken-before-start")
}

// newQueuedExpiry starts kooflow without a relay and accepts an expiry of instance, which
// stays queued; the returned relay is the test's to run.
func newQueuedExpiry(t *testing.T, instance string) (*env, *starter.Relay) {
	t.Helper()
	e := newEnvWith(t, func(o *devapp.Options) { o.NoRelay = true })
	e.importSubscriptions(store.Subscription{InstanceID: instance, CarrierUserID: "user-" + instance, PackageID: "pkg"})
	e.expectAccepted(instance)
	return e, &starter.Relay{Store: e.app.Store, Client: e.app.Client, Owner: "test"}
}

func (e *env) renew(instance, order string) {
	e.t.Helper()
	renewal := koogallery.Params{"activity": "refreshInstance", "instanceId": instance, "orderId": order,
		"expireTime": time.Now().Add(30 * 24 * time.Hour).UTC().Format("20060102150405"),
		"timeStamp":  time.Now().UTC().Format("20060102150405") + "000", "testFlag": "0"}
	if a := e.get("/koogallery/produce?" + koogallery.SignedQuery(testKey, renewal)); a.Result.ResultCode != koogallery.Success {
		e.t.Fatalf("renewal of %s: %+v", instance, a)
	}
}

func waitBacklogEmpty(t *testing.T, st *store.Store) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := st.Backlog(context.Background()); err == nil && b.Pending == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the intake backlog did not drain")
}

// TestCrashBetweenCommitAndAnswer: the intent is committed but the process dies before
// KooGallery hears 000000. KooGallery retries; the retry must be answered 000000 and
// must not make a second expiry.
func TestCrashBetweenCommitAndAnswer(t *testing.T) {
	e := newEnv(t)
	const id = "crash-answer"
	e.importSubscriptions(store.Subscription{InstanceID: id, CarrierUserID: "user-" + id, PackageID: "pkg"})
	sub, err := e.app.Store.SubscriptionByInstance(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	v := starter.KooGalleryExpiry(sub, false, time.Now())
	if _, err := e.app.Intake.AcceptExpiry(context.Background(), v, store.Delivery{Source: "koogallery", Activity: "expireInstance", Subject: id, Answer: "000000"}, ""); err != nil {
		t.Fatal(err)
	}
	// ...the answer was never written. KooGallery's retry:
	e.expectAccepted(id)
	e.expectNotifiedOnce([]string{id})
}

// TestCrashBetweenStartAndMark: a relay started the workflow and died before marking the
// intent; the next relay must recognise the start, not double it.
func TestCrashBetweenStartAndMark(t *testing.T) {
	e := newEnvWith(t, func(o *devapp.Options) { o.NoRelay = true })
	ctx := context.Background()
	const id = "crash-mark"
	e.importSubscriptions(store.Subscription{InstanceID: id, CarrierUserID: "user-" + id, PackageID: "pkg"})
	e.expectAccepted(id)
	pending, err := e.app.Store.PendingIntents(ctx, id, 1)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending = %+v, %v", pending, err)
	}
	// The first relay's start reaches Temporal...
	var in contract.ExpirationInput
	if err := json.Unmarshal(pending[0].Payload, &in); err != nil {
		t.Fatal(err)
	}
	if _, err := e.app.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: pending[0].WorkflowID, TaskQueue: workflows.TaskQueue},
		workflows.ExpirationWorkflowV2Name, in); err != nil {
		t.Fatal(err)
	}
	// ...and it dies before marking. The next relay:
	relay := &starter.Relay{Store: e.app.Store, Client: e.app.Client, Owner: "second"}
	if n, err := relay.DeliverSubject(ctx, id); err != nil || n != 1 {
		t.Fatalf("second relay delivered %d, %v", n, err)
	}
	e.expectNotifiedOnce([]string{id})
	done, err := e.app.Store.PendingIntents(ctx, id, 1)
	if err != nil || len(done) != 0 {
		t.Fatalf("intent still pending after the second relay: %+v, %v", done, err)
	}
}
