package workflows_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/contract"
	kooworker "github.com/kooflow/kooflow/worker"
	"github.com/kooflow/kooflow/workflows"
)

// These tests mock the activities (the SDK test suite's OnActivity) to drive the
// workflows down failure paths a real store rarely takes: writes that fail for a while,
// or for good. The activities are named by methods of nil structs, as the workflows name
// them; local activities are mocked the same way.
var (
	expirationActs     *activities.Expiration
	reconciliationActs *activities.Reconciliation
)

// errStoreDown is a transient store failure: the bookkeeping retry policy retries it.
var errStoreDown = errors.New("database is locked")

// hasErrorType reports whether an ApplicationError of type typ is anywhere in err's
// chain: a workflow's wrapped error arrives as an ApplicationError of its own, with the
// activity's beneath it.
func hasErrorType(err error, typ string) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && appErr.Type() == typ {
			return true
		}
	}
	return false
}

// mockedExpiration is an ExpirationWorkflow run whose activities are all mocked to
// succeed unless a test overrides one, and whose SetExpirationState calls are recorded.
type mockedExpiration struct {
	env *testsuite.TestWorkflowEnvironment
	in  contract.ExpirationInput
	// failState makes SetExpirationState fail (with errStoreDown) this many times for a state.
	failState map[string]int
	// attempts counts SetExpirationState calls per state; written lists the states stored.
	attempts map[string]int
	written  []string
	// touched lists the business activities that ran.
	touched []string
	// beginErr, stillDueErr and notifyErr, when set, are what BeginExpiration,
	// CheckExpiryStillDue and NotifyKooDrive return.
	beginErr, stillDueErr, notifyErr error
}

func newMockedExpiration(t *testing.T) *mockedExpiration {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	m := &mockedExpiration{env: suite.NewTestWorkflowEnvironment(), failState: map[string]int{}, attempts: map[string]int{},
		in: contract.ExpirationInput{Source: "koogallery", Subject: "inst-1", Period: "20261031160000", SubscriptionID: 7,
			InstanceID: "inst-1", CarrierUserID: "user-1", PackageID: "pkg-1"}}
	m.env.SetStartWorkflowOptions(clientStartOptions())
	kooworker.Register(m.env, kooworker.Dependencies{Expiration: &activities.Expiration{}})
	m.env.OnActivity(expirationActs.BeginExpiration, mock.Anything, mock.Anything).Return(func(context.Context, contract.ExpirationInput) error {
		if m.beginErr != nil {
			return m.beginErr
		}
		m.touched = append(m.touched, "BeginExpiration")
		return nil
	}).Maybe()
	m.env.OnActivity(expirationActs.CheckExpiryStillDue, mock.Anything, mock.Anything).Return(func(context.Context, contract.ExpirationInput) (contract.StillDue, error) {
		return contract.StillDue{Due: m.stillDueErr == nil}, m.stillDueErr
	}).Maybe()
	m.env.OnActivity(expirationActs.FreezeSubscription, mock.Anything, mock.Anything).Return(func(context.Context, contract.ExpirationInput) error {
		m.touched = append(m.touched, "FreezeSubscription")
		return nil
	}).Maybe()
	m.env.OnActivity(expirationActs.NotifyKooDrive, mock.Anything, mock.Anything).Return(func(context.Context, contract.ExpirationInput) (contract.NotifyResult, error) {
		m.touched = append(m.touched, "NotifyKooDrive")
		if m.notifyErr != nil {
			return contract.NotifyResult{}, m.notifyErr
		}
		return contract.NotifyResult{Attempt: 1}, nil
	}).Maybe()
	m.env.OnActivity(expirationActs.SetExpirationState, mock.Anything, mock.Anything).Return(func(_ context.Context, c contract.StateChange) error {
		m.attempts[c.State]++
		if c.WorkflowID != workflowID {
			t.Errorf("state change for %q, want %q", c.WorkflowID, workflowID)
		}
		if m.attempts[c.State] <= m.failState[c.State] {
			return errStoreDown
		}
		m.written = append(m.written, c.State)
		return nil
	}).Maybe()
	return m
}

// run executes the workflow to its end and returns its result and error.
func (m *mockedExpiration) run(t *testing.T) (contract.ExpirationStatus, error) {
	t.Helper()
	m.env.ExecuteWorkflow(workflows.ExpirationWorkflowV2Name, m.in)
	if !m.env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	var status contract.ExpirationStatus
	if err := m.env.GetWorkflowError(); err != nil {
		return status, err
	}
	if err := m.env.GetWorkflowResult(&status); err != nil {
		t.Fatal(err)
	}
	return status, nil
}

// TestExpirationRidesOutAStoreOutageOnItsStateWrites: state writes that fail a few times
// are retried until the store answers; the workflow completes as reserved, the store gets
// every state once and in order, and KooDrive is told once.
func TestExpirationRidesOutAStoreOutageOnItsStateWrites(t *testing.T) {
	m := newMockedExpiration(t)
	m.failState[contract.StateNotifying] = 3
	m.failState[contract.StateReserved] = 2
	status, err := m.run(t)
	if err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	if status.State != contract.StateReserved || status.Attempts != 1 || status.Rounds != 1 {
		t.Fatalf("status = %+v, want reserved after one attempt in one round", status)
	}
	if got := strings.Join(m.written, ","); got != "notifying,reserved" {
		t.Fatalf("states stored = %s, want notifying,reserved", got)
	}
	if m.attempts[contract.StateNotifying] != 4 || m.attempts[contract.StateReserved] != 3 {
		t.Fatalf("write attempts = %v, want 4 for notifying and 3 for reserved", m.attempts)
	}
	if got := strings.Join(m.touched, ","); got != "BeginExpiration,FreezeSubscription,NotifyKooDrive" {
		t.Fatalf("activities run = %s", got)
	}
}

// TestExpirationFailsNamingItselfWhenTheExpiryCannotBeRecorded: a store that refuses the
// expiry for good fails the workflow with an error naming the workflow and keeping the
// cause, before anything is frozen or sent.
func TestExpirationFailsNamingItselfWhenTheExpiryCannotBeRecorded(t *testing.T) {
	m := newMockedExpiration(t)
	m.beginErr = temporal.NewNonRetryableApplicationError("no such table: expirations", "StoreSchema", nil)
	_, err := m.run(t)
	if err == nil {
		t.Fatal("workflow completed without recording its expiry")
	}
	if !strings.Contains(err.Error(), "record expiration "+workflowID) {
		t.Fatalf("error %q does not name the workflow", err)
	}
	if !hasErrorType(err, "StoreSchema") {
		t.Fatalf("error %v does not keep the store's cause", err)
	}
	if len(m.touched) != 0 || len(m.written) != 0 {
		t.Fatalf("after the failed record: activities %v, states %v", m.touched, m.written)
	}
}

// TestExpirationFailsWhenTheStillDueCheckCannotRead: the still-due check (a local
// activity) failing for good stops the workflow before the freeze, naming the workflow.
func TestExpirationFailsWhenTheStillDueCheckCannotRead(t *testing.T) {
	m := newMockedExpiration(t)
	m.stillDueErr = temporal.NewNonRetryableApplicationError("subscription 7 not found", "SubscriptionNotFound", nil)
	_, err := m.run(t)
	if err == nil || !strings.Contains(err.Error(), "check expiration "+workflowID+" is still due") {
		t.Fatalf("error = %v, want the still-due check naming %s", err, workflowID)
	}
	if got := strings.Join(m.touched, ","); got != "BeginExpiration" {
		t.Fatalf("activities run = %s, want only BeginExpiration", got)
	}
}

// TestExpirationStalledWriteRetriedThenStopped: after a rejection the stalled state is
// written despite a store that fails twice, and a release while stalled still ends the
// expiration as released in the store.
func TestExpirationStalledWriteRetriedThenStopped(t *testing.T) {
	m := newMockedExpiration(t)
	m.failState[contract.StateStalled] = 2
	m.notifyErr = temporal.NewNonRetryableApplicationError("KooDrive notifyPackageExpire: code 10020001: not whitelisted",
		contract.ErrTypeKooDriveRejected, nil, contract.NotifyFailure{Attempt: 1})
	var stalled contract.ExpirationStatus
	m.env.RegisterDelayedCallback(func() {
		v, err := m.env.QueryWorkflow(contract.QueryStatus)
		if err == nil {
			err = v.Get(&stalled)
		}
		if err != nil {
			t.Errorf("query while stalled: %v", err)
		}
		m.env.SignalWorkflow(contract.SignalStop, contract.StopRequest{Reason: contract.StateReleased, Detail: "order released"})
	}, 2*time.Hour)
	status, err := m.run(t)
	if err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	if stalled.State != contract.StateStalled || !strings.Contains(stalled.LastError, "not whitelisted") || stalled.Attempts != 1 {
		t.Fatalf("while stalled: %+v", stalled)
	}
	if status.State != contract.StateReleased {
		t.Fatalf("status = %+v, want released", status)
	}
	if got := strings.Join(m.written, ","); got != "notifying,stalled,released" {
		t.Fatalf("states stored = %s, want notifying,stalled,released", got)
	}
	if m.attempts[contract.StateStalled] != 3 {
		t.Fatalf("stalled written in %d attempts, want 3", m.attempts[contract.StateStalled])
	}
}

// mockedReconciliation is a ReconciliationWorkflow run with mocked activities; the
// progress the workflow saves is recorded.
type mockedReconciliation struct {
	env   *testsuite.TestWorkflowEnvironment
	saved []contract.RunProgress
	// saveErr, when set, is returned by SaveReconciliationRun for a state; failSave makes
	// it fail (with errStoreDown) that many times for a state first.
	saveErr  map[string]error
	failSave map[string]int
	failed   map[string]int
}

func newMockedReconciliation() *mockedReconciliation {
	var suite testsuite.WorkflowTestSuite
	r := &mockedReconciliation{env: suite.NewTestWorkflowEnvironment(), saveErr: map[string]error{}, failSave: map[string]int{}, failed: map[string]int{}}
	kooworker.Register(r.env, kooworker.Dependencies{Reconciliation: &activities.Reconciliation{}})
	r.env.OnActivity(reconciliationActs.SaveReconciliationRun, mock.Anything, mock.Anything).Return(func(_ context.Context, p contract.RunProgress) error {
		if r.failed[p.State] < r.failSave[p.State] {
			r.failed[p.State]++
			return errStoreDown
		}
		r.saved = append(r.saved, p)
		return r.saveErr[p.State]
	})
	return r
}

// run executes the reconciliation of last month and returns its error.
func (r *mockedReconciliation) run(t *testing.T) error {
	t.Helper()
	r.env.ExecuteWorkflow(workflows.ReconciliationWorkflow, contract.ReconciliationInput{Cycle: contract.PreviousCycle(time.Now().UTC())})
	if !r.env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	return r.env.GetWorkflowError()
}

// TestReconciliationReportsItsFailureWhenSavingTheFailureFails: KooDrive's frozen tenant
// fails the run; when the store then refuses the failed run's row too, the workflow still
// fails with KooDrive's reason, not the bookkeeping error, after trying to save it.
func TestReconciliationReportsItsFailureWhenSavingTheFailureFails(t *testing.T) {
	r := newMockedReconciliation()
	r.saveErr[contract.RunFailed] = temporal.NewNonRetryableApplicationError("disk full", "StoreFull", nil)
	r.env.OnActivity(reconciliationActs.CheckKooDriveService, mock.Anything).
		Return(temporal.NewNonRetryableApplicationError("KooDrive service of tenant t1 is frozen (status=1)", contract.ErrTypeServiceFrozen, nil)).Once()
	err := r.run(t)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != "ReconciliationFailed" || !strings.Contains(appErr.Message(), "check KooDrive service: KooDrive service of tenant t1 is frozen") {
		t.Fatalf("error = %v, want ReconciliationFailed with KooDrive's reason", err)
	}
	if strings.Contains(err.Error(), "disk full") {
		t.Fatalf("error %q reports the bookkeeping failure instead of the run's", err)
	}
	if len(r.saved) != 2 || r.saved[0].State != contract.RunBuilding || r.saved[1].State != contract.RunFailed ||
		!strings.Contains(r.saved[1].Error, "is frozen") {
		t.Fatalf("saved progress = %+v, want building then failed with the reason", r.saved)
	}
}

// TestReconciliationFailedRowSavedAfterTransientStoreErrors: the failed run's row is
// retried until the store takes it, so `kooflow reconcile show` tells the operator why.
func TestReconciliationFailedRowSavedAfterTransientStoreErrors(t *testing.T) {
	r := newMockedReconciliation()
	r.failSave[contract.RunFailed] = 3
	r.env.OnActivity(reconciliationActs.CheckKooDriveService, mock.Anything).Return(nil).Once()
	r.env.OnActivity(reconciliationActs.BuildStatement, mock.Anything, mock.Anything).
		Return(contract.StatementInfo{}, temporal.NewNonRetryableApplicationError("registry unreadable", "StoreCorrupt", nil)).Once()
	err := r.run(t)
	if err == nil || !strings.Contains(err.Error(), "build statement: registry unreadable") {
		t.Fatalf("error = %v, want the statement's failure", err)
	}
	if r.failed[contract.RunFailed] != 3 || len(r.saved) != 2 || r.saved[1].State != contract.RunFailed || r.saved[1].Error != "build statement: registry unreadable" {
		t.Fatalf("after %d failed saves, saved = %+v", r.failed[contract.RunFailed], r.saved)
	}
}

// TestReconciliationStopsWhenItCannotRecordItsStart: a run whose first row cannot be
// written fails with the store's error and calls KooDrive for nothing.
func TestReconciliationStopsWhenItCannotRecordItsStart(t *testing.T) {
	r := newMockedReconciliation()
	r.saveErr[contract.RunBuilding] = temporal.NewNonRetryableApplicationError("no such table: reconciliation_runs", "StoreSchema", nil)
	checked := false
	r.env.OnActivity(reconciliationActs.CheckKooDriveService, mock.Anything).Return(func(context.Context) error {
		checked = true
		return nil
	}).Maybe()
	err := r.run(t)
	if !hasErrorType(err, "StoreSchema") {
		t.Fatalf("error = %v, want the store's", err)
	}
	if checked || len(r.saved) != 1 {
		t.Fatalf("KooDrive checked %v, saved %+v after the first save failed", checked, r.saved)
	}
}
