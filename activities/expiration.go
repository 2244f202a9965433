// Package activities holds kooflow's Temporal activities: structs that carry their
// dependencies (store, KooDrive client) and do the I/O the workflows decide on. Every
// activity is idempotent, because Temporal runs activities at least once.
package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/records"
	"github.com/kooflow/kooflow/rules"
)

// Notifier is the part of the KooDrive client the expiration activities use.
type Notifier interface {
	NotifyPackageExpire(ctx context.Context, carrierUserID, packageID string) error
}

// ExpirationStore is the part of kooflow's store the expiration activities use;
// *store.Store implements it.
type ExpirationStore interface {
	RecordExpiration(ctx context.Context, e records.Expiration) (bool, error)
	SetExpirationState(ctx context.Context, workflowID, state, lastError string) error
	MoveExpiration(ctx context.Context, workflowID, state, lastError string) (bool, error)
	Subscription(ctx context.Context, id int64) (records.Subscription, error)
	Freeze(ctx context.Context, subscriptionID int64, period string, onlyCurrent bool) (bool, error)
	Expiration(ctx context.Context, workflowID string) (records.Expiration, error)
	MarkNotified(ctx context.Context, workflowID string) error
	RecordAttempt(ctx context.Context, workflowID string, lastError string) error
}

// ExpirationCounter counts expirations reaching the states operators alert on;
// *metrics.Metrics implements it.
type ExpirationCounter interface {
	CountExpirationState(source, state string, round int)
}

// Expiration holds the dependencies of the expiration workflow's activities. The worker
// registers the struct, so each exported method is an activity under its own name; the
// workflows call them through a nil *Expiration (typed references), so a method's name is
// part of every recorded history and must not change.
type Expiration struct {
	Store    ExpirationStore
	KooDrive Notifier
	Logger   *slog.Logger
	// Metrics counts reserved, stalled and retried expirations; nil counts nothing.
	Metrics ExpirationCounter
}

func (a *Expiration) logger() *slog.Logger { return loggerOrDefault(a.Logger) }

// loggerOrDefault is l, or slog's default logger when an activity struct was given none.
func loggerOrDefault(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}

// BeginExpiration records the expiry in the store, so it is remembered after Temporal's
// retention has passed. Recording it again is a no-op.
func (a *Expiration) BeginExpiration(ctx context.Context, in contract.ExpirationInput) error {
	info := activity.GetInfo(ctx)
	_, err := a.Store.RecordExpiration(ctx, records.Expiration{
		WorkflowID: info.WorkflowExecution.ID, Source: in.Source, Subject: in.Subject, Period: in.Period,
		SubscriptionID: in.SubscriptionID, CarrierUserID: in.CarrierUserID, PackageID: in.PackageID,
		Test: in.Test, State: contract.StateFreezing,
	})
	if err != nil {
		return err
	}
	return a.Store.SetExpirationState(ctx, info.WorkflowExecution.ID, contract.StateFreezing, "")
}

// CheckExpiryStillDue asks the rule book (package rules) whether the expiry still stands
// against the registry as it is now: a renewal or release may have overtaken it between
// its acceptance and its workflow's start.
func (a *Expiration) CheckExpiryStillDue(ctx context.Context, in contract.ExpirationInput) (contract.StillDue, error) {
	sub, err := a.Store.Subscription(ctx, in.SubscriptionID)
	if errors.Is(err, records.ErrNotFound) {
		return contract.StillDue{}, temporal.NewNonRetryableApplicationError(err.Error(), "SubscriptionNotFound", err)
	}
	if err != nil {
		return contract.StillDue{}, err
	}
	j := rules.SmartHubExpiry(sub)
	if in.Source == "koogallery" {
		j = rules.KooGalleryExpiry(sub, time.Now())
	}
	if j.Conflict {
		// Only a renewal or release from KooGallery overtakes an accepted expiry: a
		// registry date that disagrees was either there when it was accepted and an
		// operator ran it anyway, or came later (an import), and changes nothing now.
		return contract.StillDue{Due: true}, nil
	}
	if !j.Due() {
		a.logger().Info("expiry overtaken before anything was frozen or sent", "workflowId", activity.GetInfo(ctx).WorkflowExecution.ID,
			"ref", in.Ref(), "state", j.Overtaken, "reason", j.Reason)
	}
	return contract.StillDue{Due: j.Due(), Overtaken: j.Overtaken, Reason: j.Reason}, nil
}

// FreezeSubscription marks the subscription frozen for the expiry's period. Freezing an
// already-frozen subscription for the same period changes nothing.
func (a *Expiration) FreezeSubscription(ctx context.Context, in contract.ExpirationInput) error {
	// A KooGallery expiry freezes only the period it ended: if the instance was renewed
	// since, it is left active. (SmartHub periods are the package's validThru, not the
	// registry's expiry time, so they freeze as they come.)
	changed, err := a.Store.Freeze(ctx, in.SubscriptionID, in.Period, in.Source == "koogallery")
	if errors.Is(err, records.ErrNotFound) {
		return temporal.NewNonRetryableApplicationError(err.Error(), "SubscriptionNotFound", err)
	}
	if err != nil {
		return err
	}
	a.logger().Info("subscription frozen", "workflowId", activity.GetInfo(ctx).WorkflowExecution.ID,
		"ref", in.Ref(), "period", in.Period, "changed", changed)
	return nil
}

// NotifyKooDrive tells KooDrive the user entered the reservation period. It skips the
// call when the store says KooDrive already accepted this expiry. Each failed attempt is
// counted in the store; business rejections are returned as non-retryable errors, and a
// Retry-After from KooDrive sets the delay before the next attempt. Refused credentials
// (the client has already refreshed a token and tried once more) are retried like an
// outage, with a message that says so, because credentials get fixed within the hour.
func (a *Expiration) NotifyKooDrive(ctx context.Context, in contract.ExpirationInput) (contract.NotifyResult, error) {
	info := activity.GetInfo(ctx)
	id := info.WorkflowExecution.ID
	log := a.logger().With("workflowId", id, "instanceId", in.InstanceID, "attempt", info.Attempt)
	rec, err := a.Store.Expiration(ctx, id)
	if err != nil {
		return contract.NotifyResult{}, fmt.Errorf("read expiration before notifying: %w", err)
	}
	if !rec.NotifiedAt.IsZero() {
		log.Info("KooDrive already notified; not sending again", "notifiedAt", rec.NotifiedAt)
		return contract.NotifyResult{Attempt: info.Attempt, AlreadyNotified: true}, nil
	}

	callErr := a.KooDrive.NotifyPackageExpire(ctx, in.CarrierUserID, in.PackageID)
	if callErr == nil {
		if err := a.Store.MarkNotified(ctx, id); err != nil {
			// KooDrive has it; a retry would find NotifiedAt unset and send again, so
			// keep trying to record it rather than failing the attempt.
			return contract.NotifyResult{}, fmt.Errorf("record that KooDrive was notified: %w", err)
		}
		_ = a.Store.RecordAttempt(ctx, id, "")
		log.Info("KooDrive notified: user entered the reservation period")
		return contract.NotifyResult{Attempt: info.Attempt}, nil
	}

	msg := fmt.Sprintf("notify KooDrive for %s: %v", in.Ref(), callErr)
	if koodrive.IsUnauthorized(callErr) {
		// The cause comes first: when the hour is spent, this message is the stall reason
		// operators read in `kooflow status` and the Temporal UI ("KooDrive refused
		// kooflow's credentials ..."). The error never holds a secret.
		msg = fmt.Sprintf("%v (notifying KooDrive for %s)", callErr, in.Ref())
	}
	if err := a.Store.RecordAttempt(ctx, id, msg); err != nil {
		log.Warn("could not record the failed attempt", "error", err)
	}
	// One log line per failed attempt. A rejection is a real failure: the SDK's worker
	// logs it (ERROR "Activity error.", with the workflow, the activity, the attempt and
	// this message), so it is not logged here too. An outage within the hour is expected
	// and retried: it is logged here at WARN with what an operator needs, and marked
	// benign so the SDK logs it only at DEBUG instead of a second, ERROR line.
	details := contract.NotifyFailure{Attempt: info.Attempt}
	var kerr *koodrive.Error
	errors.As(callErr, &kerr)
	if !koodrive.IsRetryable(callErr) {
		return contract.NotifyResult{}, temporal.NewNonRetryableApplicationError(msg, contract.ErrTypeKooDriveRejected, callErr, details)
	}
	if koodrive.IsUnauthorized(callErr) {
		log.Warn("KooDrive refused kooflow's credentials; will retry under the one-hour rule — fix or rotate them", "error", callErr)
	} else {
		log.Warn("KooDrive notification failed; will retry under the one-hour rule", "error", callErr)
	}
	opts := temporal.ApplicationErrorOptions{Cause: callErr, Details: []any{details}, Category: temporal.ApplicationErrorCategoryBenign}
	if kerr != nil && kerr.RetryAfter > 0 {
		opts.NextRetryDelay = min(kerr.RetryAfter, 10*time.Minute)
	}
	return contract.NotifyResult{}, temporal.NewApplicationErrorWithOptions(msg, contract.ErrTypeKooDriveUnavailable, opts)
}

// SetExpirationState mirrors the workflow's state into the store, where operators'
// listings and the stalled gauge read it, and counts the transition. (The stall itself
// is logged once, by the workflow, with its reason.)
func (a *Expiration) SetExpirationState(ctx context.Context, change contract.StateChange) error {
	moved, err := a.Store.MoveExpiration(ctx, change.WorkflowID, change.State, change.LastError)
	if err != nil {
		return err
	}
	// Counted when the store's row moved, whichever attempt moved it: a retried attempt
	// after one that wrote finds the row moved already and counts nothing.
	if moved && a.Metrics != nil {
		a.Metrics.CountExpirationState(change.Source, change.State, change.Round)
	}
	return nil
}
