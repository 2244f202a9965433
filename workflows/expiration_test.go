package workflows_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/koodrive/sandbox"
	"github.com/kooflow/kooflow/koodrive/sandbox/sandboxtest"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
	kooworker "github.com/kooflow/kooflow/worker"
	"github.com/kooflow/kooflow/workflows"
)

// fixture runs the real activities against a real SQLite store and the KooDrive sandbox
// over real HTTP; only the workflow clock is simulated.
type fixture struct {
	env   *testsuite.TestWorkflowEnvironment
	store *store.Store
	kd    *sandbox.Sandbox
	input contract.ExpirationInput
}

const workflowID = "expire/koogallery/inst-1/20261031160000"

func newFixture(t *testing.T) *fixture {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartWorkflowOptions(clientStartOptions())
	st := storetest.OpenSQLite(t)
	ctx := context.Background()
	if _, err := st.UpsertSubscriptions(ctx, []store.Subscription{{InstanceID: "inst-1", CarrierUserID: "user-1", PackageID: "pkg-1",
		ExpireTime: time.Date(2026, 10, 31, 16, 0, 0, 0, time.UTC)}}); err != nil {
		t.Fatal(err)
	}
	sub, err := st.SubscriptionByInstance(ctx, "inst-1")
	if err != nil {
		t.Fatal(err)
	}
	kd := sandboxtest.Start(t)
	kooworker.Register(env, kooworker.Dependencies{Expiration: &activities.Expiration{Store: st, KooDrive: kd.Client}})
	return &fixture{env: env, store: st, kd: kd.Sandbox, input: contract.ExpirationInput{
		Source: "koogallery", Subject: "inst-1", Period: "20261031160000", SubscriptionID: sub.ID,
		InstanceID: "inst-1", CarrierUserID: "user-1", PackageID: "pkg-1",
	}}
}

func (f *fixture) run(t *testing.T) contract.ExpirationStatus {
	t.Helper()
	return f.runAs(t, workflows.ExpirationWorkflowV2Name)
}

// runAs runs the expiration under one of its registered workflow type names.
func (f *fixture) runAs(t *testing.T, workflowType string) contract.ExpirationStatus {
	t.Helper()
	f.env.ExecuteWorkflow(workflowType, f.input)
	if !f.env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := f.env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	var status contract.ExpirationStatus
	if err := f.env.GetWorkflowResult(&status); err != nil {
		t.Fatal(err)
	}
	return status
}

func (f *fixture) query(t *testing.T) contract.ExpirationStatus {
	t.Helper()
	v, err := f.env.QueryWorkflow(contract.QueryStatus)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	var status contract.ExpirationStatus
	if err := v.Get(&status); err != nil {
		t.Fatal(err)
	}
	return status
}

func (f *fixture) assertNotifiedOnce(t *testing.T) {
	t.Helper()
	got := f.kd.Notifications()
	if len(got) != 1 || got[0].CarrierUserID != "user-1" || got[0].PackageID != "pkg-1" || got[0].Type != 2 {
		t.Fatalf("KooDrive notifications = %+v, want exactly one for user-1/pkg-1", got)
	}
	rec, err := f.store.Expiration(context.Background(), workflowID)
	if err != nil || rec.State != store.StateReserved || rec.NotifiedAt.IsZero() {
		t.Fatalf("store record = %+v, %v", rec, err)
	}
	sub, _ := f.store.SubscriptionByInstance(context.Background(), "inst-1")
	if sub.Status != store.StatusFrozen || sub.FrozenPeriod != f.input.Period {
		t.Fatalf("subscription = %+v, want frozen for %s", sub, f.input.Period)
	}
}

func TestHappyPath(t *testing.T) {
	f := newFixture(t)
	status := f.run(t)
	if status.State != store.StateReserved || status.Attempts != 1 || status.Rounds != 1 {
		t.Fatalf("status = %+v", status)
	}
	f.assertNotifiedOnce(t)
}

// TestAnExpiryStartedUnderTheFirstNameStillRuns: during an upgrade a webhook of the
// release before may still start ExpirationWorkflow; the new worker runs it (through its
// "current-versions" marker) to the same end.
func TestAnExpiryStartedUnderTheFirstNameStillRuns(t *testing.T) {
	f := newFixture(t)
	status := f.runAs(t, workflows.ExpirationWorkflowName)
	if status.State != store.StateReserved || status.Attempts != 1 || status.Rounds != 1 {
		t.Fatalf("status = %+v", status)
	}
	f.assertNotifiedOnce(t)
}

func TestKooDriveDownFor59MinutesStillReservedWithinTheHour(t *testing.T) {
	f := newFixture(t)
	start := f.env.Now()
	f.kd.FailWhile(func() bool { return f.env.Now().Before(start.Add(59 * time.Minute)) }, 503)
	status := f.run(t)
	if status.State != store.StateReserved || status.Rounds != 1 || status.Attempts < 10 {
		t.Fatalf("status = %+v, want reserved in one round after many attempts", status)
	}
	if elapsed := f.env.Now().Sub(start); elapsed > workflows.NotifyWindow {
		t.Fatalf("took %s of workflow time, more than the one-hour window", elapsed)
	}
	f.assertNotifiedOnce(t)
	rec, _ := f.store.Expiration(context.Background(), workflowID)
	if rec.Attempts != status.Attempts {
		t.Fatalf("store counted %d attempts, workflow %d", rec.Attempts, status.Attempts)
	}
}

func TestPastTheHourStallsThenRetryReserves(t *testing.T) {
	f := newFixture(t)
	start := f.env.Now()
	f.kd.FailWhile(func() bool { return f.env.Now().Before(start.Add(3 * time.Hour)) }, 503)
	var stalled contract.ExpirationStatus
	var storeState string
	f.env.RegisterDelayedCallback(func() {
		stalled = f.query(t)
		rec, _ := f.store.Expiration(context.Background(), workflowID)
		storeState = rec.State
		f.kd.ClearFaults()
		f.env.SignalWorkflow(contract.SignalRetry, nil)
	}, 5*time.Hour)
	status := f.run(t)
	if stalled.State != store.StateStalled || !strings.Contains(stalled.LastError, "within 1h0m0s") || storeState != store.StateStalled {
		t.Fatalf("before retry: query %+v, store state %q", stalled, storeState)
	}
	if status.State != store.StateReserved || status.Rounds != 2 {
		t.Fatalf("after retry: %+v", status)
	}
	f.assertNotifiedOnce(t)
}

func TestBusinessRejectionStallsAtOnce(t *testing.T) {
	f := newFixture(t)
	f.kd.RejectWith("10020001", "carrier is not whitelisted")
	var stalled contract.ExpirationStatus
	f.env.RegisterDelayedCallback(func() {
		stalled = f.query(t)
		f.kd.ClearFaults()
		f.env.SignalWorkflow(contract.SignalRetry, nil)
	}, time.Minute)
	status := f.run(t)
	if stalled.State != store.StateStalled || stalled.Attempts != 1 || !strings.Contains(stalled.LastError, "not whitelisted") {
		t.Fatalf("stalled = %+v", stalled)
	}
	if status.State != store.StateReserved || status.Attempts != 2 {
		t.Fatalf("status = %+v", status)
	}
	f.assertNotifiedOnce(t)
}

func TestThrottlingHonoursRetryAfter(t *testing.T) {
	f := newFixture(t)
	f.kd.Throttle(1, 90*time.Second)
	start := f.env.Now()
	status := f.run(t)
	if status.State != store.StateReserved || status.Attempts != 2 {
		t.Fatalf("status = %+v", status)
	}
	if waited := f.env.Now().Sub(start); waited < 90*time.Second {
		t.Fatalf("retried after %s, KooDrive asked for 90s", waited)
	}
	f.assertNotifiedOnce(t)
}

func TestTestFlagSendsNothingAndFreezesNothing(t *testing.T) {
	f := newFixture(t)
	f.input.Test = true
	status := f.run(t)
	if status.State != store.StateReserved {
		t.Fatalf("status = %+v", status)
	}
	if n := f.kd.Calls(); n != 0 {
		t.Fatalf("KooDrive saw %d calls from a test expiration", n)
	}
	sub, _ := f.store.SubscriptionByInstance(context.Background(), "inst-1")
	if sub.Status != store.StatusActive {
		t.Fatalf("test expiration changed the subscription: %+v", sub)
	}
	rec, err := f.store.Expiration(context.Background(), workflowID)
	if err != nil || !rec.Test || rec.State != store.StateReserved {
		t.Fatalf("record = %+v, %v", rec, err)
	}
}

func TestAlreadyNotifiedIsNotSentAgain(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.store.RecordExpiration(ctx, store.Expiration{WorkflowID: workflowID, Source: "koogallery", Subject: "inst-1",
		Period: f.input.Period, SubscriptionID: f.input.SubscriptionID, CarrierUserID: "user-1", PackageID: "pkg-1"}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.MarkNotified(ctx, workflowID); err != nil {
		t.Fatal(err)
	}
	status := f.run(t)
	if status.State != store.StateReserved || f.kd.Calls() != 0 {
		t.Fatalf("status %+v, KooDrive calls %d", status, f.kd.Calls())
	}
}

func TestRenewalStopsAStalledExpiration(t *testing.T) {
	f := newFixture(t)
	f.kd.RejectWith("10020001", "carrier is not whitelisted")
	f.env.RegisterDelayedCallback(func() {
		f.env.SignalWorkflow(contract.SignalStop, contract.StopRequest{Reason: store.StateRenewed, Detail: "renewal order R1"})
	}, time.Hour)
	status := f.run(t)
	if status.State != store.StateRenewed {
		t.Fatalf("status = %+v", status)
	}
	rec, _ := f.store.Expiration(context.Background(), workflowID)
	if rec.State != store.StateRenewed || len(f.kd.Notifications()) != 0 {
		t.Fatalf("record %+v, notifications %d", rec, len(f.kd.Notifications()))
	}
}

func TestReleaseStopsARoundInFlight(t *testing.T) {
	f := newFixture(t)
	f.kd.FailWhile(func() bool { return true }, 503)
	f.env.RegisterDelayedCallback(func() {
		f.env.SignalWorkflow(contract.SignalStop, contract.StopRequest{Reason: store.StateReleased})
	}, 10*time.Minute)
	start := f.env.Now()
	status := f.run(t)
	if status.State != store.StateReleased || f.env.Now().Sub(start) > 15*time.Minute {
		t.Fatalf("status = %+v after %s", status, f.env.Now().Sub(start))
	}
}

func TestExpiryOfARenewedPeriodDoesNotFreeze(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// Renewed between acceptance and start (say, queued while Temporal was down).
	if _, err := f.store.Renew(ctx, f.input.SubscriptionID, time.Now().Add(30*24*time.Hour), "R1", time.Now()); err != nil {
		t.Fatal(err)
	}
	status := f.run(t)
	sub, _ := f.store.SubscriptionByInstance(ctx, "inst-1")
	if sub.Status != store.StatusActive {
		t.Fatalf("a renewed subscription was frozen: %+v", sub)
	}
	if status.State != store.StateRenewed || len(f.kd.Notifications()) != 0 {
		t.Fatalf("status %+v, %d notifications: a renewed expiry must end as renewed without telling KooDrive", status, len(f.kd.Notifications()))
	}
}

func TestExpiryOfAReleasedInstanceEndsReleased(t *testing.T) {
	f := newFixture(t)
	if _, err := f.store.SetStatus(context.Background(), f.input.SubscriptionID, store.StatusReleased, "test"); err != nil {
		t.Fatal(err)
	}
	status := f.run(t)
	if status.State != store.StateReleased || len(f.kd.Notifications()) != 0 {
		t.Fatalf("status %+v, %d notifications", status, len(f.kd.Notifications()))
	}
}

// TestRetryUpdateAnswersTruthfully: the operator's retry Update is rejected, with the
// state, while the expiration is still trying (not stalled) and once a retry has been
// accepted; a stalled expiration accepts it and starts round 2.
func TestRetryUpdateAnswersTruthfully(t *testing.T) {
	f := newFixture(t)
	start := f.env.Now()
	f.kd.FailWhile(func() bool { return f.env.Now().Before(start.Add(3 * time.Hour)) }, 503)
	type answer struct {
		rejected error
		accepted contract.RetryAccepted
	}
	update := func(id string) *answer {
		a := &answer{}
		f.env.UpdateWorkflow(contract.UpdateRetry, id, &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { a.rejected = err },
			OnComplete: func(result any, err error) {
				if err != nil {
					t.Errorf("update %s completed with %v", id, err)
					return
				}
				a.accepted = result.(contract.RetryAccepted)
			},
		})
		return a
	}
	var whileTrying, stalled, twice *answer
	f.env.RegisterDelayedCallback(func() { whileTrying = update("while-trying") }, 30*time.Minute)
	f.env.RegisterDelayedCallback(func() {
		f.kd.ClearFaults()
		stalled = update("stalled")
		twice = update("twice")
	}, 5*time.Hour)
	status := f.run(t)

	if whileTrying.rejected == nil || !strings.Contains(whileTrying.rejected.Error(), "not stalled (state notifying)") {
		t.Fatalf("retry while notifying: rejection %v, want not stalled (state notifying)", whileTrying.rejected)
	}
	if stalled.rejected != nil || stalled.accepted.Round != 2 {
		t.Fatalf("retry while stalled: rejected %v, accepted %+v; want round 2 accepted", stalled.rejected, stalled.accepted)
	}
	// The second retry finds the first one's round started (or about to): never a
	// second acceptance.
	var appErr *temporal.ApplicationError
	if !errors.As(twice.rejected, &appErr) || appErr.Type() != contract.ErrTypeNotStalled {
		t.Fatalf("second retry right after the first: rejection %v, want %s", twice.rejected, contract.ErrTypeNotStalled)
	}
	if status.State != store.StateReserved || status.Rounds != 2 {
		t.Fatalf("status = %+v, want reserved after exactly one operator retry", status)
	}
	f.assertNotifiedOnce(t)
}

// cancelledRun runs the workflow, cancelled after delay, and checks it closed as
// cancelled with the store's row and the status query following.
func (f *fixture) cancelledRun(t *testing.T, delay time.Duration) {
	t.Helper()
	f.env.RegisterDelayedCallback(f.env.CancelWorkflow, delay)
	f.env.ExecuteWorkflow(workflows.ExpirationWorkflowV2Name, f.input)
	if !f.env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := f.env.GetWorkflowError(); !temporal.IsCanceledError(err) {
		t.Fatalf("workflow ended with %v, want cancelled", err)
	}
	if status := f.query(t); status.State != store.StateCancelled {
		t.Fatalf("status = %+v, want cancelled", status)
	}
	rec, err := f.store.Expiration(context.Background(), workflowID)
	if err != nil || rec.State != store.StateCancelled {
		t.Fatalf("store record = %+v, %v; want cancelled", rec, err)
	}
}

// TestCancellationEndsAStalledExpiration: a cancellation request (the Temporal UI's
// "Request Cancellation") on an expiration waiting for an operator ends it as
// cancelled, and nothing is sent.
func TestCancellationEndsAStalledExpiration(t *testing.T) {
	f := newFixture(t)
	f.kd.RejectWith("10020001", "carrier is not whitelisted")
	f.cancelledRun(t, 2*time.Hour)
	if n := len(f.kd.Notifications()); n != 0 {
		t.Fatalf("%d notifications after a cancellation", n)
	}
}

// TestCancellationStopsARoundInFlight: a cancellation during an hour of KooDrive attempts
// ends the round at once, without waiting for the hour and without a stall.
func TestCancellationStopsARoundInFlight(t *testing.T) {
	f := newFixture(t)
	f.kd.FailWhile(func() bool { return true }, 503)
	start := f.env.Now()
	f.cancelledRun(t, 10*time.Minute)
	if took := f.env.Now().Sub(start); took > 15*time.Minute {
		t.Fatalf("the cancelled round went on for %s", took)
	}
	if n := len(f.kd.Notifications()); n != 0 {
		t.Fatalf("%d notifications after a cancellation", n)
	}
}
