// Package contract is what kooflow's workflows exchange with their activities, starters
// and operators: inputs, results, signal and query names, state names and error types.
// It holds plain types with no dependencies, so a workflow history's payloads change only
// when this package does — never because a database column or a client library changed.
// Database rows live in package records and are mapped to these types by the activities.
//
// Every type here is encoded into recorded histories (workflows/testdata): renaming or
// retyping a field breaks the decoding of running and recorded workflows; add fields
// instead.
package contract

import (
	"fmt"
	"time"
)

// Expiration states, as shown in the store, in `kooflow status` and in the KooflowState
// search attribute.
const (
	// StateAccepted: the webhook committed the expiry; its workflow has not started yet.
	StateAccepted = "accepted"
	// StateFreezing: the workflow records the expiry and freezes the subscription.
	StateFreezing = "freezing"
	// StateNotifying: a one-hour round of KooDrive notification attempts is running.
	StateNotifying = "notifying"
	// StateStalled: a round ended without a notification; an operator's retry is awaited.
	StateStalled = "stalled"
	// StateReserved: KooDrive knows the user entered the reservation period.
	StateReserved = "reserved"
	// StateRenewed and StateReleased end an expiration that KooGallery overtook: the
	// subscription was renewed or released before KooDrive was told.
	StateRenewed  = "renewed"
	StateReleased = "released"
	// StateConflict: an expiry KooGallery reported for an instance the registry has
	// running for longer, with no renewal from KooGallery to explain it (rules.
	// KooGalleryExpiry). It is held, nothing frozen or sent, until an operator runs it
	// (kooflow expire) or a renewal or release ends it.
	StateConflict = "conflict"
	// StateSuperseded ends a conflict whose subject's expiry an operator ran for another
	// period (after correcting the registry); its last error names that expiry.
	StateSuperseded = "superseded"
	// StateCancelled ends an expiration whose workflow was asked to cancel (the Temporal
	// UI's "Request Cancellation"): nothing more is frozen or sent.
	StateCancelled = "cancelled"
	// StateTerminated is an expiration whose workflow was terminated outside kooflow (the
	// Temporal UI's "Terminate", or a reset's old run): kooflow found it closed unfinished.
	// An operator's retry or expire starts it again under the same workflow ID.
	StateTerminated = "terminated"
)

// Reconciliation run states, as shown in `kooflow reconcile show`.
const (
	RunBuilding  = "building"
	RunUploaded  = "uploaded"
	RunPolling   = "polling"
	RunFetching  = "fetching"
	RunCompleted = "completed"
	RunFailed    = "failed"
)

// Names operators and other processes use to talk to a running expiration.
const (
	// SignalRetry asks a stalled expiration to try KooDrive for another hour.
	SignalRetry = "retry"
	// QueryStatus returns the expiration's ExpirationStatus.
	QueryStatus = "status"
	// SignalStop ends an expiration KooGallery has overtaken (renewal, release) with a
	// StopRequest; nothing more is sent to KooDrive.
	SignalStop = "stop"
	// UpdateRetry is the operator's retry as an Update: its validator rejects it, with
	// ErrTypeNotStalled, unless the expiration is stalled, so the operator's command is
	// answered truthfully in one step. It returns a RetryAccepted. Expirations started
	// before it existed take SignalRetry instead.
	UpdateRetry = "retry"
)

// ErrTypeNotStalled is the type of UpdateRetry's rejection: the expiration is not
// waiting for an operator. Its message and its details (a string) say in which state it is.
const ErrTypeNotStalled = "NotStalled"

// RetryAccepted answers an accepted UpdateRetry: the round that is about to start.
type RetryAccepted struct {
	Round int
}

// Error types that activities return and the workflows reason about.
const (
	// ErrTypeKooDriveRejected marks a business rejection by KooDrive: retrying cannot help.
	ErrTypeKooDriveRejected = "KooDriveRejected"
	// ErrTypeKooDriveUnavailable marks a failure that may pass: outage, overload, timeout.
	ErrTypeKooDriveUnavailable = "KooDriveUnavailable"
	// ErrTypeServiceFrozen marks a reconciliation refused because the tenant is frozen.
	ErrTypeServiceFrozen = "KooDriveServiceFrozen"
)

// StopRequest says why an expiration is no longer wanted: StateRenewed or StateReleased,
// which becomes its final state.
type StopRequest struct {
	Reason string
	Detail string
}

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
	// the hour); the retry backoff is capped at a sixtieth of it, as one minute is of an hour.
	NotifyWindow time.Duration
}

// Ref names the expiry's subscription for operators without personal data: the
// KooGallery instance ID (an opaque marketplace ID), or for a SmartHub SIM package its
// registry subscription (the Subject, gIccid/packageCode, carries the SIM's ICCID). It
// is what workflow IDs, summaries, current details and log lines show.
func (in ExpirationInput) Ref() string {
	if in.Source == "smarthub" {
		return fmt.Sprintf("sub%d", in.SubscriptionID)
	}
	return in.Subject
}

// ExpirationStatus is what the status query answers and the expiration workflow returns.
type ExpirationStatus struct {
	State string
	// Attempts counts KooDrive calls made so far, over all rounds.
	Attempts int
	// Rounds counts the hour-long notification rounds started (1 + operator retries).
	Rounds    int
	LastError string
}

// NotifyResult is what the NotifyKooDrive activity reports on success.
type NotifyResult struct {
	// Attempt is the attempt number within the round that succeeded.
	Attempt int32
	// AlreadyNotified is true when KooDrive had already accepted this expiry earlier.
	AlreadyNotified bool
}

// NotifyFailure is attached to every NotifyKooDrive error so the workflow can count
// attempts across an activity's retries.
type NotifyFailure struct {
	Attempt int32
}

// StillDue is the result of the CheckExpiryStillDue activity: whether the expiry still
// stands by the rule book, and if not, the final state (StateRenewed or StateReleased)
// and why.
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

// ReconciliationInput names the billing cycle and how to wait for KooDrive's check.
type ReconciliationInput struct {
	// Cycle is the billing cycle, yyyy-MM, always a past month.
	Cycle string
	// PollInterval and PollDeadline default to the workflow's defaults (a minute, a day).
	PollInterval time.Duration
	PollDeadline time.Duration
}

// MonthlyInput configures the scheduled monthly run.
type MonthlyInput struct {
	// TimeZone is the IANA zone whose calendar defines the billing month; default UTC.
	TimeZone     string
	PollInterval time.Duration
	PollDeadline time.Duration
}

// RunProgress is where a reconciliation stands: the workflow's own record of its run,
// which the SaveReconciliationRun activity mirrors into the store. Its field names are
// those the store's run row had when the workflow passed the row itself, so histories
// recorded then decode into it.
type RunProgress struct {
	Cycle           string
	State           string
	StatementPath   string
	StatementRows   int
	StatementSHA256 string
	BatchNo         string
	ReportPath      string
	Counts          map[string]int
	Error           string
}

// StatementInfo describes a built statement; the file stays on disk, only its path and
// hash travel through Temporal.
type StatementInfo struct {
	Path         string
	Rows         int
	SHA256       string
	BuildSeconds float64
}

// UploadResult is KooDrive's batch for a statement.
type UploadResult struct {
	BatchNo string
	// Reused is true when the same statement had been uploaded before.
	Reused bool
}

// FetchProgress is the heartbeat of FetchDiscrepancies: where to resume.
type FetchProgress struct {
	Cursor  string
	Fetched int
	Pages   int
}

// FetchResult summarises the fetched discrepancies.
type FetchResult struct {
	Total  int
	Pages  int
	Counts map[string]int
}

// ReportInfo describes the written discrepancy report.
type ReportInfo struct {
	Path   string
	Counts map[string]int
}

// ReconciliationResult is what a finished reconciliation reports.
type ReconciliationResult struct {
	Cycle         string
	BatchNo       string
	Uploaded      bool
	StatementPath string
	StatementRows int
	ReportPath    string
	Total         int
	Counts        map[string]int
}
