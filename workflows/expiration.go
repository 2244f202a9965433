// Package workflows holds kooflow's Temporal workflow definitions: deterministic code
// only — no I/O, no wall clock, no map iteration — with every side effect in activities.
package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/store"
)

// TaskQueue is the task queue kooflow's worker polls and its starters use.
const TaskQueue = "kooflow"

// Names operators and other processes use to talk to a running expiration.
const (
	// SignalRetry asks a stalled expiration to try KooDrive for another hour.
	SignalRetry = "retry"
	// QueryStatus returns the expiration's ExpirationStatus.
	QueryStatus = "status"
	// SignalStop ends an expiration KooGallery has overtaken (renewal, release) with a
	// StopRequest; nothing more is sent to KooDrive.
	SignalStop = "stop"
)

// StopRequest says why an expiration is no longer wanted: store.StateRenewed or
// store.StateReleased, which becomes its final state.
type StopRequest struct {
	Reason string
	Detail string
}

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
	NonRetryableErrorTypes: []string{ErrTypeKooDriveRejected},
}

// Error types that activities return and the workflow reasons about.
const (
	// ErrTypeKooDriveRejected marks a business rejection by KooDrive: retrying cannot help.
	ErrTypeKooDriveRejected = "KooDriveRejected"
	// ErrTypeKooDriveUnavailable marks a failure that may pass: outage, overload, timeout.
	ErrTypeKooDriveUnavailable = "KooDriveUnavailable"
)

// Custom search attributes that make an expiration findable in the Temporal UI.
var (
	SearchAttrInstanceID    = temporal.NewSearchAttributeKeyKeyword("KooflowInstanceId")
	SearchAttrCarrierUserID = temporal.NewSearchAttributeKeyKeyword("KooflowCarrierUserId")
	SearchAttrState         = temporal.NewSearchAttributeKeyKeyword("KooflowState")
	SearchAttrBillingCycle  = temporal.NewSearchAttributeKeyKeyword("KooflowBillingCycle")
)

// ExpirationInput identifies one expiry of one subscription.
type ExpirationInput struct {
	// Source is "koogallery" or "smarthub".
	Source string
	// Subject is the source's identity for the subscription (the instance ID, or
	// gIccid/packageCode).
	Subject string
	// Period names the paid period that ended; a renewal starts a new one.
	Period         string
	SubscriptionID int64
	InstanceID     string
	CarrierUserID  string
	PackageID      string
	// Test runs the workflow as a rehearsal: nothing is frozen and nothing is sent to KooDrive.
	Test bool
	// NotifyWindow shortens the one-hour rule for rehearsals and reliability runs (0 means
	// NotifyWindow); the retry backoff is capped at a sixtieth of it, as one minute is of an hour.
	NotifyWindow time.Duration
}

// ExpirationStatus is what the status query answers.
type ExpirationStatus struct {
	State string
	// Attempts counts KooDrive calls made so far, over all rounds.
	Attempts int
	// Rounds counts the hour-long notification rounds started (1 + operator retries).
	Rounds    int
	LastError string
}

// NotifyResult is what the notify activity reports on success.
type NotifyResult struct {
	// Attempt is the attempt number within the round that succeeded.
	Attempt int32
	// AlreadyNotified is true when KooDrive had already accepted this expiry earlier.
	AlreadyNotified bool
}

// NotifyFailure is attached to every notify activity error so the workflow can count
// attempts across an activity's retries.
type NotifyFailure struct {
	Attempt int32
}

// Activity names, shared with the worker's registrations.
const (
	ActivityBeginExpiration    = "BeginExpiration"
	ActivityFreezeSubscription = "FreezeSubscription"
	ActivityNotifyKooDrive     = "NotifyKooDrive"
	ActivitySetExpirationState = "SetExpirationState"
	ActivityCheckStillDue      = "CheckExpiryStillDue"
)

// StillDue is the result of the CheckExpiryStillDue activity: whether the expiry still
// stands by the rule book, and if not, the final state (store.StateRenewed or
// store.StateReleased) and why.
type StillDue struct {
	Due       bool
	Overtaken string
	Reason    string
}

// StateChange is the input of the SetExpirationState activity.
type StateChange struct {
	WorkflowID string
	State      string
	LastError  string
	// Source and Round (1 for the first hour, 2 after the first operator retry, ...)
	// let the activity count transitions per source.
	Source string
	Round  int
}

// ExpirationWorkflow takes one expired subscription to KooDrive's reservation period.
//
// Pattern: a saga of idempotent activities with an operator gate. It records the expiry,
// freezes the subscription, then notifies KooDrive under the one-hour rule — the activity's
// own retry policy retries with backoff inside a one-hour ScheduleToClose, and business
// rejections are non-retryable. When an hour is spent (or KooDrive rejects), the
// workflow does not fail: it becomes "stalled" (search attribute, store row, log line) and
// blocks on the "retry" signal, then runs another hour-long round. The "status" query
// reports state, attempts and the last error. Every activity is idempotent, so a duplicate
// delivery or a worker crash never freezes or notifies twice.
func ExpirationWorkflow(ctx workflow.Context, in ExpirationInput) (ExpirationStatus, error) {
	logger := workflow.GetLogger(ctx)
	workflowID := workflow.GetInfo(ctx).WorkflowExecution.ID
	status := ExpirationStatus{State: store.StateFreezing}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (ExpirationStatus, error) { return status, nil }); err != nil {
		return status, err
	}

	bookkeepingRetry := &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute}
	// Version 1 runs the store bookkeeping (record, freeze, state changes) as local
	// activities: quick database writes that need no task of their own on the server,
	// which doubled throughput in the burst benchmark (BENCHMARKS.md). Executions that
	// began before keep running them as regular activities.
	localBookkeeping := workflow.GetVersion(ctx, "local-bookkeeping", workflow.DefaultVersion, 1) == 1
	bookkeepingCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second, RetryPolicy: bookkeepingRetry})
	localCtx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 30 * time.Second, RetryPolicy: bookkeepingRetry})
	bookkeeping := func(name string, arg any) error {
		if localBookkeeping {
			return workflow.ExecuteLocalActivity(localCtx, name, arg).Get(ctx, nil)
		}
		return workflow.ExecuteActivity(bookkeepingCtx, name, arg).Get(ctx, nil)
	}
	setState := func(state, lastError string) error {
		status.State = state
		if lastError != "" {
			status.LastError = lastError
		}
		if err := workflow.UpsertTypedSearchAttributes(ctx, SearchAttrState.ValueSet(state)); err != nil {
			return fmt.Errorf("set search attribute KooflowState=%s: %w", state, err)
		}
		workflow.SetCurrentDetails(ctx, describe(workflowID, in, status))
		return bookkeeping(ActivitySetExpirationState,
			StateChange{WorkflowID: workflowID, State: state, LastError: lastError, Source: in.Source, Round: status.Rounds})
	}

	workflow.SetCurrentDetails(ctx, describe(workflowID, in, status))

	// A renewal or release overtaking the expiry stops it wherever it is: a goroutine
	// waits for the stop signal, cancels a KooDrive round in flight and wakes the
	// stalled wait below.
	notifyBase, cancelNotify := workflow.WithCancel(ctx)
	var stop *StopRequest
	stopped := workflow.NewBufferedChannel(ctx, 1)
	workflow.Go(ctx, func(gctx workflow.Context) {
		var req StopRequest
		workflow.GetSignalChannel(gctx, SignalStop).Receive(gctx, &req)
		stop = &req
		cancelNotify()
		stopped.Send(gctx, true)
	})
	finishStopped := func() (ExpirationStatus, error) {
		state := store.StateRenewed
		if stop.Reason == store.StateReleased {
			state = store.StateReleased
		}
		logger.Info("Expiration stopped by KooGallery", "instanceId", in.InstanceID, "reason", state, "detail", stop.Detail)
		if err := setState(state, ""); err != nil {
			return status, err
		}
		return status, nil
	}

	if err := bookkeeping(ActivityBeginExpiration, in); err != nil {
		return status, fmt.Errorf("record expiration %s: %w", workflowID, err)
	}
	// Version 1 asks the rule book again, against the registry as it is now: a start
	// that reached Temporal after the instance was renewed or released (it was queued
	// during a Temporal outage, or in flight when the renewal came) ends here, before
	// anything is frozen or sent to KooDrive, instead of racing the stop signal.
	if workflow.GetVersion(ctx, "still-due-check", workflow.DefaultVersion, 1) == 1 && stop == nil {
		var due StillDue
		if err := workflow.ExecuteLocalActivity(localCtx, ActivityCheckStillDue, in).Get(ctx, &due); err != nil {
			return status, fmt.Errorf("check expiration %s is still due: %w", workflowID, err)
		}
		if !due.Due && stop == nil {
			stop = &StopRequest{Reason: due.Overtaken, Detail: due.Reason}
		}
	}
	if stop != nil {
		return finishStopped()
	}
	if !in.Test {
		if err := bookkeeping(ActivityFreezeSubscription, in); err != nil {
			return status, fmt.Errorf("freeze subscription %d: %w", in.SubscriptionID, err)
		}
	}

	window, policy := NotifyWindow, notifyRetryPolicy
	if in.NotifyWindow > 0 && in.NotifyWindow != NotifyWindow {
		window = in.NotifyWindow
		scaled := *notifyRetryPolicy
		scaled.MaximumInterval = max(window/60, time.Second)
		policy = &scaled
	}
	notifyCtx := workflow.WithActivityOptions(notifyBase, workflow.ActivityOptions{
		ScheduleToCloseTimeout: window,
		// One KooDrive call; a worker that dies mid-call delays the next attempt by this.
		StartToCloseTimeout: 20 * time.Second,
		RetryPolicy:         policy,
	})
	retries := workflow.GetSignalChannel(ctx, SignalRetry)
	for {
		// A retry sent while a round was still running is spent: drop it so the next
		// stall waits for a fresh decision.
		for retries.ReceiveAsync(nil) {
			logger.Info("Ignoring a retry signal that arrived while not stalled")
		}
		if stop != nil {
			return finishStopped()
		}
		status.Rounds++
		if err := setState(store.StateNotifying, ""); err != nil {
			return status, err
		}
		if in.Test {
			logger.Info("Test expiration: not notifying KooDrive")
			break
		}
		var result NotifyResult
		err := workflow.ExecuteActivity(notifyCtx, ActivityNotifyKooDrive, in).Get(ctx, &result)
		if err == nil {
			status.Attempts += int(result.Attempt)
			status.LastError = ""
			break
		}
		if stop != nil {
			return finishStopped()
		}
		status.Attempts += failedAttempts(err)
		reason := stallReason(err, window)
		logger.Warn("Expiration stalled; waiting for an operator's retry",
			"instanceId", in.InstanceID, "subject", in.Subject, "reason", reason, "attempts", status.Attempts)
		if err := setState(store.StateStalled, reason); err != nil {
			return status, err
		}
		wait := workflow.NewSelector(ctx)
		wait.AddReceive(retries, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil) })
		wait.AddReceive(stopped, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil) })
		wait.Select(ctx)
		if stop != nil {
			return finishStopped()
		}
		logger.Info("Operator retry received", "instanceId", in.InstanceID, "round", status.Rounds+1)
	}
	if err := setState(store.StateReserved, ""); err != nil {
		return status, err
	}
	return status, nil
}

// failedAttempts reads the attempt count the notify activity attached to its last error.
func failedAttempts(err error) int {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.HasDetails() {
		var f NotifyFailure
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
	if errors.As(err, &appErr) && appErr.Type() == ErrTypeKooDriveRejected {
		return "KooDrive rejected the notification: " + appErr.Message()
	}
	last := err.Error()
	if errors.As(err, &appErr) {
		last = appErr.Message()
	}
	return fmt.Sprintf("KooDrive not notified within %s; last error: %s", window, last)
}

// describe renders the workflow's current details for the Temporal UI.
func describe(workflowID string, in ExpirationInput, s ExpirationStatus) string {
	test := ""
	if in.Test {
		test = " (test: nothing is frozen or sent)"
	}
	details := fmt.Sprintf("**%s** expiry of %s, period %s%s\n\ncarrierUserId %s, packageId %s\n\nstate **%s**, KooDrive attempts %d, rounds %d",
		in.Source, in.Subject, in.Period, test, in.CarrierUserID, in.PackageID, s.State, s.Attempts, s.Rounds)
	if s.LastError != "" {
		details += "\n\nlast error: " + s.LastError
	}
	if s.State == store.StateStalled {
		details += "\n\nWaiting for an operator: `kooflow retry " + workflowID + "`"
	}
	return details
}
