// Package workflows holds kooflow's Temporal workflow definitions: deterministic code
// only — no I/O, no wall clock, no map iteration — with every side effect in activities.
// The workflows call their activities through typed references (methods of a nil
// *activities.Expiration or *activities.Reconciliation), and everything they exchange
// is a type of package contract: no database row and no client library reaches a
// history.
package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/contract"
)

// TaskQueue is the task queue kooflow's worker polls and its starters use.
const TaskQueue = "kooflow"

// NotifyWindow is the one-hour rule: how long one round of KooDrive notification
// attempts may take before the expiration stalls and waits for an operator. It mirrors
// KooGallery's own hour of retries.
const NotifyWindow = time.Hour

// notifyRetryPolicy retries KooDrive with exponential backoff capped at a minute, so the
// last attempts of the hour are close together and an outage of 59 minutes still ends in
// a notification within the hour. NotifyWindow is what bounds the attempts (about 66 fit
// in an hour); MaximumAttempts is set far above that only because the SDK's test
// environment would otherwise cap "unlimited" at 10 and test a different policy.
var notifyRetryPolicy = &temporal.RetryPolicy{
	InitialInterval:        time.Second,
	BackoffCoefficient:     2,
	MaximumInterval:        time.Minute,
	MaximumAttempts:        1000,
	NonRetryableErrorTypes: []string{contract.ErrTypeKooDriveRejected},
}

// bookkeepingRetry retries the store's writes until the database answers again.
var bookkeepingRetry = &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute}

// Custom search attributes that make an expiration findable in the Temporal UI. The
// server indexes them in clear (the payload codec cannot encrypt them), so none carries
// personal data: an expiry is found by its KooGallery instance, its state or its billing
// cycle, and by subscription through `kooflow status`. (Expirations started before kept
// a KooflowCarrierUserId attribute; new ones do not set it.)
var (
	SearchAttrInstanceID   = temporal.NewSearchAttributeKeyKeyword("KooflowInstanceId")
	SearchAttrState        = temporal.NewSearchAttributeKeyKeyword("KooflowState")
	SearchAttrBillingCycle = temporal.NewSearchAttributeKeyKeyword("KooflowBillingCycle")
)

// The expiration workflow's registered names. ExpirationWorkflow runs under both: new
// expiries start as ExpirationWorkflowV2, whose executions take every change at its newest
// version without asking (no version marker, and so no TemporalChangeVersion
// search-attribute upsert: a visibility write on the server per expiry), while executions
// started as ExpirationWorkflow keep replaying the version markers their histories
// recorded. The name is fixed for an execution's life, so the branch is deterministic.
// (The pattern is Temporal's "new workflow type" versioning. A worker must know the new
// name before a starter uses it: upgrade workers before webhooks, docs/production.md.)
const (
	ExpirationWorkflowName   = "ExpirationWorkflow"
	ExpirationWorkflowV2Name = "ExpirationWorkflowV2"
)

// expirationActivities is how the expiration workflow names its activities: methods of
// a nil *activities.Expiration, resolved by name on the worker (typed references).
var expirationActivities *activities.Expiration

// errOvertaken ends the business steps when KooGallery overtook the expiry (a renewal
// or release, by stop signal or found by the still-due check).
var errOvertaken = errors.New("expiration overtaken")

// errStalled ends a notification round that spent its hour or met a rejection.
var errStalled = errors.New("expiration stalled")

// ExpirationWorkflow takes one expired subscription to KooDrive's reservation period.
//
// Pattern: a sequence of idempotent activities with an operator gate, read top to bottom
// in (*expiration).run: record the expiry, check it is still due, freeze the
// subscription, then notify KooDrive under the one-hour rule — the activity's own retry
// policy retries with backoff inside a one-hour ScheduleToClose, and business rejections
// are non-retryable. When an hour is spent (or KooDrive rejects), the workflow does not
// fail: it becomes "stalled" (search attribute, store row, current details) and waits
// for an operator's "retry" signal, then runs another round. A "stop" signal (renewal or
// release) ends it wherever it is, as renewed or released, without compensation: nothing
// is undone, nothing more is sent. A cancellation request (the Temporal UI's "Request
// Cancellation") ends it the same way, as cancelled, with the store's row following. The "status" query reports state, attempts and the
// last error. Every activity is idempotent, so a duplicate delivery or a worker crash
// never freezes or notifies twice.
func ExpirationWorkflow(ctx workflow.Context, in contract.ExpirationInput) (contract.ExpirationStatus, error) {
	e, err := newExpiration(ctx, in)
	if err != nil {
		return e.status, err
	}
	return e.run()
}

// run is the business process.
func (e *expiration) run() (contract.ExpirationStatus, error) {
	err := e.steps()
	if errors.Is(err, errOvertaken) {
		return e.finishOvertaken()
	}
	if e.honourCancel && e.ctx.Err() != nil {
		return e.finishCancelled()
	}
	return e.status, err
}

// steps are the expiration's business steps; each returns errOvertaken once a renewal
// or release has stopped it.
func (e *expiration) steps() error {
	if err := e.record(); err != nil {
		return err
	}
	if err := e.checkStillDue(); err != nil {
		return err
	}
	if err := e.freeze(); err != nil {
		return err
	}
	for {
		err := e.notifyRound()
		if err == nil {
			break
		}
		if !errors.Is(err, errStalled) {
			return err
		}
		if err := e.waitForOperator(); err != nil {
			return err
		}
	}
	return e.setState(contract.StateReserved, "")
}

// expiration is one running ExpirationWorkflow: its input, its status, and the
// machinery the steps share.
type expiration struct {
	ctx        workflow.Context
	in         contract.ExpirationInput
	workflowID string
	logger     log.Logger
	status     contract.ExpirationStatus

	// localBookkeeping runs the store's writes as local activities (version 1 of
	// "local-bookkeeping"); executions that began before run them as regular activities.
	localBookkeeping bool
	bookkeepingCtx   workflow.Context
	localCtx         workflow.Context

	// stop is set by the stop signal (or the still-due check); stopped wakes the
	// operator wait; cancelNotify cancels a KooDrive round in flight.
	stop         *contract.StopRequest
	stopped      workflow.Channel
	cancelNotify workflow.CancelFunc
	notifyCtx    workflow.Context
	window       time.Duration
	// retries carries operators' retry signals; retryUpdates their retry Updates (version
	// 1 of "retry-update"), which the validator admits only while stalled.
	retries      workflow.ReceiveChannel
	retryUpdates workflow.Channel
	// retryPending is true from an accepted retry Update until the wait takes it.
	retryPending bool
	// current: every change below at its newest version. An ExpirationWorkflowV2
	// execution is current without a marker; an ExpirationWorkflow execution is current
	// at version 1 of "current-versions" (one marker and one TemporalChangeVersion upsert
	// for every change); executions started before that take each change's own marker,
	// as their histories recorded.
	current bool
	// honourCancel ends the expiration as cancelled when its workflow is asked to cancel
	// (version 1 of "cancellation"); executions that began before ignored the request.
	honourCancel bool
}

// newExpiration sets up the query handler, the bookkeeping options and the stop
// listener, in the order the recorded histories expect.
func newExpiration(ctx workflow.Context, in contract.ExpirationInput) (*expiration, error) {
	e := &expiration{
		ctx: ctx, in: in, workflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, logger: workflow.GetLogger(ctx),
		status: contract.ExpirationStatus{State: contract.StateFreezing},
	}
	if err := workflow.SetQueryHandler(ctx, contract.QueryStatus, func() (contract.ExpirationStatus, error) { return e.status, nil }); err != nil {
		return e, err
	}
	// Version 1 runs the store bookkeeping (record, freeze, state changes) as local
	// activities: quick database writes that need no task of their own on the server,
	// which doubled throughput in the burst benchmark (BENCHMARKS.md).
	e.current = workflow.GetInfo(ctx).WorkflowType.Name == ExpirationWorkflowV2Name ||
		workflow.GetVersion(ctx, "current-versions", workflow.DefaultVersion, 1) == 1
	e.localBookkeeping = e.current || workflow.GetVersion(ctx, "local-bookkeeping", workflow.DefaultVersion, 1) == 1
	e.bookkeepingCtx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second, RetryPolicy: bookkeepingRetry})
	e.localCtx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 30 * time.Second, RetryPolicy: bookkeepingRetry})
	workflow.SetCurrentDetails(ctx, e.describe())

	// A renewal or release overtaking the expiry stops it wherever it is: this goroutine
	// waits for the stop signal, cancels a KooDrive round in flight and wakes the
	// operator wait.
	notifyBase, cancelNotify := workflow.WithCancel(ctx)
	e.cancelNotify = cancelNotify
	e.stopped = workflow.NewBufferedChannel(ctx, 1)
	workflow.Go(ctx, func(gctx workflow.Context) {
		var req contract.StopRequest
		workflow.GetSignalChannel(gctx, contract.SignalStop).Receive(gctx, &req)
		e.stop = &req
		e.cancelNotify()
		e.stopped.Send(gctx, true)
	})
	var policy *temporal.RetryPolicy
	e.window, policy = notifyWindow(in)
	e.notifyCtx = workflow.WithActivityOptions(notifyBase, workflow.ActivityOptions{
		ScheduleToCloseTimeout: e.window,
		// One KooDrive call; a worker that dies mid-call delays the next attempt by this.
		StartToCloseTimeout: 20 * time.Second,
		RetryPolicy:         policy,
	})
	e.retries = workflow.GetSignalChannel(ctx, contract.SignalRetry)
	e.retryUpdates = workflow.NewBufferedChannel(ctx, 1)
	if e.current || workflow.GetVersion(ctx, "retry-update", workflow.DefaultVersion, 1) == 1 {
		if err := e.acceptRetryUpdates(); err != nil {
			return e, err
		}
	}
	e.honourCancel = e.current || workflow.GetVersion(ctx, "cancellation", workflow.DefaultVersion, 1) == 1
	return e, nil
}

// acceptRetryUpdates lets an operator retry a stalled expiration with an Update: the
// validator rejects a retry unless the expiration is stalled and no retry is already
// on its way, so the operator's command gets the truth in one round trip instead of a
// query followed by a signal that may arrive after the state changed.
func (e *expiration) acceptRetryUpdates() error {
	return workflow.SetUpdateHandlerWithOptions(e.ctx, contract.UpdateRetry,
		func(ctx workflow.Context) (contract.RetryAccepted, error) {
			e.retryPending = true
			e.retryUpdates.Send(ctx, true)
			return contract.RetryAccepted{Round: e.status.Rounds + 1}, nil
		},
		workflow.UpdateHandlerOptions{Validator: func() error {
			if e.status.State != contract.StateStalled || e.retryPending || e.stop != nil {
				state := e.status.State
				if e.retryPending {
					state += ", a retry is already starting"
				}
				return temporal.NewApplicationError(fmt.Sprintf("expiration %s is not stalled (state %s): nothing to retry", e.workflowID, state),
					contract.ErrTypeNotStalled, state)
			}
			return nil
		}})
}

// record writes the expiry to the store, so it is remembered after Temporal's retention.
func (e *expiration) record() error {
	if err := e.bookkeeping(expirationActivities.BeginExpiration, e.in); err != nil {
		return fmt.Errorf("record expiration %s: %w", e.workflowID, err)
	}
	return nil
}

// checkStillDue asks the rule book again, against the registry as it is now (version 1
// of "still-due-check"): a start that reached Temporal after the instance was renewed or
// released — queued during a Temporal outage, or in flight when the renewal came — ends
// here, before anything is frozen or sent to KooDrive, instead of racing the stop signal.
func (e *expiration) checkStillDue() error {
	if (e.current || workflow.GetVersion(e.ctx, "still-due-check", workflow.DefaultVersion, 1) == 1) && e.stop == nil {
		var due contract.StillDue
		if err := workflow.ExecuteLocalActivity(e.localCtx, expirationActivities.CheckExpiryStillDue, e.in).Get(e.ctx, &due); err != nil {
			return fmt.Errorf("check expiration %s is still due: %w", e.workflowID, err)
		}
		if !due.Due && e.stop == nil {
			e.stop = &contract.StopRequest{Reason: due.Overtaken, Detail: due.Reason}
		}
	}
	return e.checkStop()
}

// freeze marks the subscription frozen for the expired period; a rehearsal freezes nothing.
func (e *expiration) freeze() error {
	if e.in.Test {
		return nil
	}
	if err := e.bookkeeping(expirationActivities.FreezeSubscription, e.in); err != nil {
		return fmt.Errorf("freeze subscription %d: %w", e.in.SubscriptionID, err)
	}
	return nil
}

// notifyRound runs one hour-long round of KooDrive notification attempts. It returns
// nil when KooDrive was told (or the run is a rehearsal), errStalled when the round
// ended without it.
func (e *expiration) notifyRound() error {
	// A retry sent while a round was still running is spent: drop it so the next stall
	// waits for a fresh decision.
	for e.retries.ReceiveAsync(nil) {
		e.logger.Info("Ignoring a retry signal that arrived while not stalled")
	}
	if err := e.checkStop(); err != nil {
		return err
	}
	e.status.Rounds++
	if err := e.setState(contract.StateNotifying, ""); err != nil {
		return err
	}
	if e.in.Test {
		e.logger.Info("Test expiration: not notifying KooDrive")
		return nil
	}
	var result contract.NotifyResult
	err := workflow.ExecuteActivity(e.notifyCtx, expirationActivities.NotifyKooDrive, e.in).Get(e.ctx, &result)
	if err == nil {
		e.status.Attempts += int(result.Attempt)
		e.status.LastError = ""
		return nil
	}
	if err := e.checkStop(); err != nil {
		return err
	}
	if ctxErr := e.ctx.Err(); ctxErr != nil && e.honourCancel {
		return ctxErr
	}
	e.status.Attempts += failedAttempts(err)
	reason := stallReason(err, e.window)
	e.logger.Warn("Expiration stalled; waiting for an operator's retry",
		"ref", e.in.Ref(), "reason", reason, "attempts", e.status.Attempts)
	if err := e.setState(contract.StateStalled, reason); err != nil {
		return err
	}
	return errStalled
}

// waitForOperator blocks a stalled expiration until an operator's retry or a stop.
func (e *expiration) waitForOperator() error {
	wait := workflow.NewSelector(e.ctx)
	wait.AddReceive(e.retries, func(c workflow.ReceiveChannel, _ bool) { c.Receive(e.ctx, nil) })
	wait.AddReceive(e.retryUpdates, func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(e.ctx, nil)
		e.retryPending = false
	})
	wait.AddReceive(e.stopped, func(c workflow.ReceiveChannel, _ bool) { c.Receive(e.ctx, nil) })
	if e.honourCancel {
		wait.AddReceive(e.ctx.Done(), func(workflow.ReceiveChannel, bool) {})
	}
	wait.Select(e.ctx)
	if err := e.checkStop(); err != nil {
		return err
	}
	if err := e.ctx.Err(); err != nil && e.honourCancel {
		return err
	}
	e.logger.Info("Operator retry received", "ref", e.in.Ref(), "round", e.status.Rounds+1)
	return nil
}

// checkStop returns errOvertaken once a renewal or release has stopped the expiration.
func (e *expiration) checkStop() error {
	if e.stop != nil {
		return errOvertaken
	}
	return nil
}

// finishOvertaken ends an overtaken expiration as renewed or released.
func (e *expiration) finishOvertaken() (contract.ExpirationStatus, error) {
	state := contract.StateRenewed
	if e.stop.Reason == contract.StateReleased {
		state = contract.StateReleased
	}
	e.logger.Info("Expiration stopped by KooGallery", "ref", e.in.Ref(), "reason", state, "detail", e.stop.Detail)
	if err := e.setState(state, ""); err != nil {
		return e.status, err
	}
	return e.status, nil
}

// finishCancelled ends an expiration whose workflow was asked to cancel: the state is
// written on a disconnected context (the workflow's own is cancelled), and the workflow
// closes as cancelled. Nothing is undone; a KooDrive call already in flight may still
// land, and the store's notified_at then says so.
func (e *expiration) finishCancelled() (contract.ExpirationStatus, error) {
	cancelled := e.ctx.Err()
	e.logger.Info("Expiration cancelled by a cancellation request", "ref", e.in.Ref(), "state", e.status.State)
	e.ctx, _ = workflow.NewDisconnectedContext(e.ctx)
	e.localCtx = workflow.WithLocalActivityOptions(e.ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 30 * time.Second, RetryPolicy: bookkeepingRetry})
	e.bookkeepingCtx = workflow.WithActivityOptions(e.ctx, workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second, RetryPolicy: bookkeepingRetry})
	if err := e.setState(contract.StateCancelled, ""); err != nil {
		return e.status, err
	}
	return e.status, cancelled
}

// setState moves the expiration to state: the status query, the KooflowState search
// attribute, the UI's current details and the store's row.
func (e *expiration) setState(state, lastError string) error {
	e.status.State = state
	if lastError != "" {
		e.status.LastError = lastError
	}
	if err := workflow.UpsertTypedSearchAttributes(e.ctx, SearchAttrState.ValueSet(state)); err != nil {
		return fmt.Errorf("set search attribute KooflowState=%s: %w", state, err)
	}
	workflow.SetCurrentDetails(e.ctx, e.describe())
	return e.bookkeeping(expirationActivities.SetExpirationState,
		contract.StateChange{WorkflowID: e.workflowID, State: state, LastError: lastError, Source: e.in.Source, Round: e.status.Rounds})
}

// bookkeeping runs one of the store's writes, as a local activity from version 1 on.
func (e *expiration) bookkeeping(activity, arg any) error {
	if e.localBookkeeping {
		return workflow.ExecuteLocalActivity(e.localCtx, activity, arg).Get(e.ctx, nil)
	}
	return workflow.ExecuteActivity(e.bookkeepingCtx, activity, arg).Get(e.ctx, nil)
}

// notifyWindow is the one-hour rule for in, with its retry policy. Rehearsals and
// reliability runs may shorten the hour (ExpirationInput.NotifyWindow); the backoff is
// then capped at a sixtieth of the window, as one minute is of an hour.
func notifyWindow(in contract.ExpirationInput) (time.Duration, *temporal.RetryPolicy) {
	if in.NotifyWindow <= 0 || in.NotifyWindow == NotifyWindow {
		return NotifyWindow, notifyRetryPolicy
	}
	scaled := *notifyRetryPolicy
	scaled.MaximumInterval = max(in.NotifyWindow/60, time.Second)
	return in.NotifyWindow, &scaled
}

// failedAttempts reads the attempt count the notify activity attached to its last error.
func failedAttempts(err error) int {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.HasDetails() {
		var f contract.NotifyFailure
		if appErr.Details(&f) == nil {
			return int(f.Attempt)
		}
	}
	return 1
}

// stallReason says in one line why a round ended without a notification. Anything but a
// business rejection ends a round only when the one-hour window is spent.
func stallReason(err error, window time.Duration) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == contract.ErrTypeKooDriveRejected {
		return "KooDrive rejected the notification: " + appErr.Message()
	}
	last := err.Error()
	if errors.As(err, &appErr) {
		last = appErr.Message()
	}
	return fmt.Sprintf("KooDrive not notified within %s; last error: %s", window, last)
}

// describe renders the workflow's current details for the Temporal UI.
func (e *expiration) describe() string {
	in, s := e.in, e.status
	test := ""
	if in.Test {
		test = " (test: nothing is frozen or sent)"
	}
	// No personal data (carrier user, package, ICCID): the decoded input has it for
	// whoever may see it.
	details := fmt.Sprintf("**%s** expiry of %s, period %s%s\n\nstate **%s**, KooDrive attempts %d, rounds %d",
		in.Source, in.Ref(), in.Period, test, s.State, s.Attempts, s.Rounds)
	if s.LastError != "" {
		details += "\n\nlast error: " + s.LastError
	}
	if s.State == contract.StateStalled {
		details += "\n\nWaiting for an operator: `kooflow retry " + e.workflowID + "`"
	}
	return details
}
