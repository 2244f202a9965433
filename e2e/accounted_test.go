package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/devapp"
	"github.com/kooflow/kooflow/koogallery"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
)

// operator is the door an operator's command acts through, as the CLI builds it.
func (e *env) operator() *starter.Operator {
	return &starter.Operator{Store: e.app.Store, Actor: starter.Actor{Name: "e2e-operator", Via: starter.ViaCLI, Host: "test"},
		Dial: func(context.Context) (client.Client, error) { return e.app.Client, nil }}
}

// gauge reads kooflow_expirations{state} from /metrics.
func (e *env) gauge(state string) float64 {
	e.t.Helper()
	_, families := e.scrape()
	return value(families, "kooflow_expirations", map[string]string{"state": state})
}

// lastDelivery is the newest delivery-log row about subject.
func (e *env) lastDelivery(subject string) store.Delivery {
	e.t.Helper()
	ds, err := e.app.Store.Deliveries(context.Background(), store.DeliveryFilter{Subjects: []string{subject}, Limit: 1})
	if err != nil || len(ds) != 1 {
		e.t.Fatalf("deliveries of %s = %+v, %v", subject, ds, err)
	}
	return ds[0]
}

// TestRegistryConflictIsHeldThenRunByAnOperator: KooGallery reports an instance expired
// that the registry has running until years ahead and that KooGallery never renewed. The
// expiry is answered 000000, held as a conflict (store, gauge, delivery log), and runs
// once — frozen, KooDrive told — when an operator's expire decides it. An expiry after a
// renewal KooGallery did report is ignored, and recorded as ignored.
func TestRegistryConflictIsHeldThenRunByAnOperator(t *testing.T) {
	e := newEnv(t)
	until := time.Now().AddDate(4, 0, 0).UTC().Truncate(time.Second)
	e.importSubscriptions(
		store.Subscription{InstanceID: "inst-conflict", CarrierUserID: "user-conflict", PackageID: "pkg-1", ExpireTime: until},
		store.Subscription{InstanceID: "inst-renewed", CarrierUserID: "user-renewed", PackageID: "pkg-1", ExpireTime: time.Now().Add(-time.Hour)},
	)
	workflowID := "expire/koogallery/inst-conflict/" + until.Format("20060102150405")

	a := e.expire("inst-conflict", nil)
	if a.Result.ResultCode != koogallery.Success || !strings.Contains(a.Result.ResultMsg, "held for an operator") {
		t.Fatalf("expiry of an instance registered until %s: %+v", until, a)
	}
	held := e.waitState(workflowID, store.StateConflict, 5*time.Second)
	if !strings.Contains(held.LastError, until.Format(time.RFC3339)) {
		t.Errorf("held conflict does not name the registry's date: %q", held.LastError)
	}
	if d := e.lastDelivery("inst-conflict"); d.Outcome != store.DeliveryConflict || d.Reason != "registry-date-conflict" || d.WorkflowID != workflowID {
		t.Errorf("delivery = %+v", d)
	}
	if g := e.gauge(store.StateConflict); g != 1 {
		t.Errorf("kooflow_expirations{state=conflict} = %v, want 1", g)
	}
	time.Sleep(500 * time.Millisecond) // a relay that wrongly took the held start would have started it by now
	if n := len(e.notificationsFor("user-conflict")); n != 0 || e.frozenEvents("inst-conflict") != 0 {
		t.Fatalf("a held conflict froze or notified (%d notifications)", n)
	}

	if _, acc, err := e.operator().Expire(context.Background(), "inst-conflict", false); err != nil || acc.Existing || acc.WorkflowID != workflowID {
		t.Fatalf("operator's expire = %+v, %v", acc, err)
	}
	e.app.Relay.Nudge()
	e.waitState(workflowID, store.StateReserved, 60*time.Second)
	if n := len(e.notificationsFor("user-conflict")); n != 1 || e.frozenEvents("inst-conflict") != 1 {
		t.Fatalf("after the operator ran it: %d notifications, %d freezes; want 1 and 1", n, e.frozenEvents("inst-conflict"))
	}
	if g := e.gauge(store.StateConflict); g != 0 {
		t.Errorf("kooflow_expirations{state=conflict} = %v after it ran, want 0", g)
	}
	entries, err := e.app.Store.AuditEntries(context.Background(), store.AuditFilter{Subjects: []string{workflowID}})
	if err != nil || len(entries) != 1 || entries[0].Action != "expire" || entries[0].Result != store.AuditOK || entries[0].Actor != "e2e-operator" {
		t.Fatalf("audit of the decision = %+v, %v", entries, err)
	}

	e.renew("inst-renewed", "CS-renewal-1")
	a = e.expire("inst-renewed", nil)
	if a.Result.ResultCode != koogallery.Success || !strings.Contains(a.Result.ResultMsg, "KooGallery renewed") {
		t.Fatalf("expiry after a recorded renewal: %+v", a)
	}
	if d := e.lastDelivery("inst-renewed"); d.Outcome != store.DeliveryIgnored || d.Reason != "renewed-by-koogallery" {
		t.Errorf("delivery after the renewal = %+v", d)
	}
	if exps, _ := e.app.Store.Expirations(context.Background(), store.ExpirationFilter{Subject: "inst-renewed"}); len(exps) != 0 {
		t.Errorf("an expiry after a renewal made expirations %+v", exps)
	}
}

// stalled sends an expiry that KooDrive rejects, so it waits for an operator.
func (e *env) stalled(instance string) string {
	e.t.Helper()
	e.importSubscriptions(store.Subscription{InstanceID: instance, CarrierUserID: "user-" + instance, PackageID: "pkg-1"})
	e.kd.RejectWith("10020001", "carrier is not whitelisted")
	if a := e.expire(instance, nil); a.Result.ResultCode != koogallery.Success {
		e.t.Fatalf("expiry of %s: %+v", instance, a)
	}
	workflowID := "expire/koogallery/" + instance + "/current"
	e.waitState(workflowID, store.StateStalled, 60*time.Second)
	return workflowID
}

// TestTerminatedExpiryIsFoundAndRunAgain: a stalled expiry terminated through Temporal's
// API (the UI's Terminate) is found by the sweep, recorded as terminated and dropped from
// the stalled gauge; the operator's retry starts it again under the same workflow ID,
// and KooDrive is told exactly once.
func TestTerminatedExpiryIsFoundAndRunAgain(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	start := time.Now()
	workflowID := e.stalled("inst-terminated")
	if g := e.gauge(store.StateStalled); g != 1 {
		t.Fatalf("stalled gauge = %v, want 1", g)
	}
	if err := e.app.Client.TerminateWorkflow(ctx, workflowID, "", "clicked Terminate in the Temporal UI"); err != nil {
		t.Fatal(err)
	}
	var found []starter.Drift
	deadline := time.Now().Add(30 * time.Second)
	for len(found) == 0 && time.Now().Before(deadline) {
		var err error
		if found, err = starter.SweepDrift(ctx, e.app.Client, e.app.Store, start); err != nil {
			t.Fatal(err)
		}
		if len(found) == 0 {
			time.Sleep(200 * time.Millisecond) // visibility is updated asynchronously
		}
	}
	if len(found) != 1 || found[0].WorkflowID != workflowID || found[0].Status != "Terminated" || found[0].State != store.StateTerminated {
		t.Fatalf("sweep found %+v", found)
	}
	if again, err := starter.SweepDrift(ctx, e.app.Client, e.app.Store, start); err != nil || len(again) != 0 {
		t.Fatalf("a second sweep found %+v, %v", again, err)
	}
	rec := e.waitState(workflowID, store.StateTerminated, time.Second)
	if !strings.Contains(rec.LastError, "kooflow retry "+workflowID) {
		t.Errorf("terminated expiration says %q, not how to run it again", rec.LastError)
	}
	if g := e.gauge(store.StateStalled); g != 0 {
		t.Errorf("stalled gauge = %v after the termination, want 0", g)
	}
	if g := e.gauge(store.StateTerminated); g != 1 {
		t.Errorf("terminated gauge = %v, want 1", g)
	}

	e.kd.ClearFaults()
	results, err := e.operator().RetryStalled(ctx, "inst-terminated")
	if err != nil || len(results) != 1 || !results[0].Restarted || results[0].Err != nil {
		t.Fatalf("retry = %+v, %v", results, err)
	}
	e.waitState(workflowID, store.StateReserved, 60*time.Second)
	e.recordHistory(workflowID, "expiration-terminated-then-restarted")
	if n := len(e.notificationsFor("user-inst-terminated")); n != 1 {
		t.Fatalf("KooDrive notified %d times, want 1", n)
	}
	if n := e.frozenEvents("inst-terminated"); n != 1 {
		t.Fatalf("frozen %d times, want 1", n)
	}
	// Reserved now: it is never started again.
	if err := starter.Restart(ctx, e.app.Client, e.app.Store, workflowID); !errors.Is(err, starter.ErrNotDrifted) {
		t.Fatalf("restart of a reserved expiration: %v", err)
	}
}

// TestCancellationRequestEndsAnExpiry: "Request Cancellation" on a stalled expiry ends it
// as cancelled, the store and the gauge follow, and nothing is sent to KooDrive; the
// embedded Temporal UI starts with its write actions off.
func TestCancellationRequestEndsAnExpiry(t *testing.T) {
	e := newEnvWith(t, func(o *devapp.Options) { o.UIPort = 0 })
	ctx := context.Background()
	workflowID := e.stalled("inst-cancelled")
	if err := e.app.Client.CancelWorkflow(ctx, workflowID, ""); err != nil {
		t.Fatal(err)
	}
	e.waitState(workflowID, store.StateCancelled, 30*time.Second)
	e.recordHistory(workflowID, "expiration-cancelled-while-stalled")
	desc, err := e.app.Client.DescribeWorkflowExecution(ctx, workflowID, "")
	if err != nil || desc.GetWorkflowExecutionInfo().GetStatus().String() != "Canceled" {
		t.Fatalf("workflow = %v, %v; want Canceled", desc.GetWorkflowExecutionInfo().GetStatus(), err)
	}
	if n := len(e.notificationsFor("user-inst-cancelled")); n != 0 {
		t.Fatalf("KooDrive notified %d times after a cancellation", n)
	}
	if g := e.gauge(store.StateStalled); g != 0 {
		t.Errorf("stalled gauge = %v, want 0", g)
	}
	if g := e.gauge(store.StateCancelled); g != 1 {
		t.Errorf("cancelled gauge = %v, want 1", g)
	}

	resp, err := http.Get(e.app.Stack.UIURL() + "/api/v1/settings")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var settings struct{ DisableWriteActions bool }
	if err := json.NewDecoder(resp.Body).Decode(&settings); err != nil || !settings.DisableWriteActions {
		t.Fatalf("the embedded UI's write actions are on (DisableWriteActions=%v, %v)", settings.DisableWriteActions, err)
	}
}

// TestSchedulePauseKeepsTheNote: an operator pauses the monthly schedule with a note and
// unpauses it; Temporal keeps the note with the operator's name, the audit log both actions.
func TestSchedulePauseKeepsTheNote(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	op := e.operator()
	if err := op.SetSchedulePaused(ctx, true, "KooDrive maintenance until the 3rd"); err != nil {
		t.Fatal(err)
	}
	d, err := starter.DescribeSchedule(ctx, e.app.Client)
	if err != nil || !d.Schedule.State.Paused || !strings.Contains(d.Schedule.State.Note, "KooDrive maintenance until the 3rd (e2e-operator via cli)") {
		t.Fatalf("paused schedule = %+v, %v", d.Schedule.State, err)
	}
	if err := op.SetSchedulePaused(ctx, false, ""); err == nil {
		t.Fatal("an unpause without a note was accepted")
	}
	if err := op.SetSchedulePaused(ctx, false, "maintenance over"); err != nil {
		t.Fatal(err)
	}
	if d, err := starter.DescribeSchedule(ctx, e.app.Client); err != nil || d.Schedule.State.Paused {
		t.Fatalf("unpaused schedule = %+v, %v", d.Schedule.State, err)
	}
	entries, err := e.app.Store.AuditEntries(ctx, store.AuditFilter{Subjects: []string{starter.ScheduleID}})
	if err != nil || len(entries) != 3 || entries[0].Action != "schedule unpause" || entries[0].Result != store.AuditOK ||
		entries[1].Result != store.AuditFailed || entries[2].Action != "schedule pause" {
		t.Fatalf("audit = %+v, %v", entries, err)
	}
}
