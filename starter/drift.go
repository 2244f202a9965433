package starter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/workflows"
)

// kooflow's store and Temporal must never disagree about where an expiry stands. The
// workflow writes every state it reaches to the store; what it cannot write is its own
// end when someone outside kooflow ends it — "Terminate" in the Temporal UI or CLI, the
// old run of a reset, a run timeout. Drift is that: a store row still open whose workflow
// closed unfinished. It is found by a sweep of recently closed workflows (SweepDrift, in
// every intake), and for one expiration whenever an operator looks at it or retries it
// (CheckExpiration), then recorded as terminated (or cancelled) so the gauge, the alert and
// the operator see the truth, and an operator's retry or expire starts it again.

// Drift is an expiration found closed in Temporal while the store had it open.
type Drift struct {
	WorkflowID string
	// Status is Temporal's: Terminated, Canceled, TimedOut, Failed, or NotFound.
	Status string
	// State is what the store now says: store.StateTerminated or store.StateCancelled.
	State string
	// Detail is the store's new last error: what happened and what to do.
	Detail string
}

// ErrNotDrifted is returned by Restart for an expiration that is not terminated or
// cancelled.
var ErrNotDrifted = errors.New("expiration is not terminated or cancelled")

// CheckExpiration compares one expiration with its workflow in Temporal and, when the
// store has it open but its workflow (the latest run under its ID) closed unfinished,
// records it as terminated or cancelled. It reports the drift it found, if any.
func CheckExpiration(ctx context.Context, c client.Client, st *store.Store, workflowID string) (*Drift, error) {
	rec, err := st.Expiration(ctx, workflowID)
	if err != nil {
		return nil, fmt.Errorf("read expiration %s: %w", workflowID, err)
	}
	if !slices.Contains(store.OpenStates, rec.State) {
		return nil, nil
	}
	desc, err := c.DescribeWorkflowExecution(ctx, workflowID, "")
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		if rec.State == store.StateAccepted {
			started, err := st.ExpirationStarted(ctx, workflowID)
			if err != nil || !started {
				return nil, err // queued: the relay starts it
			}
		}
		return markDrift(ctx, st, workflowID, "NotFound", time.Time{})
	case err != nil:
		return nil, fmt.Errorf("describe workflow %s: %w", workflowID, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	switch info.GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED,
		enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW, enumspb.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED:
		return nil, nil
	}
	return markDrift(ctx, st, workflowID, statusName(info.GetStatus()), info.GetCloseTime().AsTime())
}

// markDrift records that workflowID's workflow closed unfinished with Temporal's status.
func markDrift(ctx context.Context, st *store.Store, workflowID, status string, closed time.Time) (*Drift, error) {
	d := &Drift{WorkflowID: workflowID, Status: status, State: store.StateTerminated}
	when := ""
	if !closed.IsZero() {
		when = " at " + closed.UTC().Format(time.RFC3339)
	}
	switch status {
	case "Canceled":
		d.State = store.StateCancelled
		d.Detail = "the workflow was cancelled in Temporal" + when + " before it finished; `kooflow retry " + workflowID + "` starts it again"
	case "NotFound":
		d.Detail = "Temporal no longer has this expiration's workflow (deleted, or past the namespace's retention) although it never finished; `kooflow retry " + workflowID + "` starts it again"
	default:
		d.Detail = fmt.Sprintf("the workflow was %s in Temporal%s, outside kooflow, before it finished (nothing more was frozen or sent); `kooflow retry %s` starts it again",
			map[string]string{"Terminated": "terminated", "TimedOut": "timed out", "Failed": "failed"}[status], when, workflowID)
	}
	moved, err := st.MarkExpirationClosed(ctx, workflowID, d.State, d.Detail)
	if err != nil || !moved {
		return nil, err
	}
	return d, nil
}

// statusName is Temporal's name of a closed status, as its visibility queries spell it.
func statusName(s enumspb.WorkflowExecutionStatus) string {
	switch s {
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return "Terminated"
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return "Canceled"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return "TimedOut"
	}
	return "Failed"
}

// SweepDrift finds the expiration workflows that closed unfinished (terminated,
// cancelled, timed out, failed) since since, through Temporal's visibility, and checks
// each with CheckExpiration. It returns the drift it recorded.
func SweepDrift(ctx context.Context, c client.Client, st *store.Store, since time.Time) ([]Drift, error) {
	query := fmt.Sprintf("WorkflowType IN ('%s', '%s') AND ExecutionStatus != 'Running' AND ExecutionStatus != 'Completed' AND CloseTime >= '%s'",
		workflows.ExpirationWorkflowName, workflows.ExpirationWorkflowV2Name, since.UTC().Format(time.RFC3339))
	var found []Drift
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token, PageSize: 500})
		if err != nil {
			return found, fmt.Errorf("list expiration workflows closed since %s: %w", since.UTC().Format(time.RFC3339), err)
		}
		for _, ex := range resp.GetExecutions() {
			d, err := CheckExpiration(ctx, c, st, ex.GetExecution().GetWorkflowId())
			if errors.Is(err, store.ErrNotFound) {
				continue // not kooflow's (or a rehearsal of another store)
			}
			if err != nil {
				return found, err
			}
			if d != nil {
				found = append(found, *d)
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return found, nil
		}
	}
}

// DriftSweepEvery is how often the intake sweeps for drift; each sweep looks back to
// the previous one with driftOverlap to spare (visibility is updated asynchronously),
// and the first looks back driftFirstLookBack.
const (
	DriftSweepEvery    = time.Minute
	driftOverlap       = 5 * time.Minute
	driftFirstLookBack = 7 * 24 * time.Hour
)

// RunDriftSweep sweeps for drift every DriftSweepEvery until ctx ends, logging each
// expiration it finds (one line each) and a failed sweep.
func RunDriftSweep(ctx context.Context, c client.Client, st *store.Store, logger *slog.Logger) {
	since := time.Now().Add(-driftFirstLookBack)
	for {
		started := time.Now()
		found, err := SweepDrift(ctx, c, st, since)
		vanished, vErr := SweepVanished(ctx, c, st, started.Add(-VanishedAfter))
		found, err = append(found, vanished...), errors.Join(err, vErr)
		for _, d := range found {
			logger.Warn("expiration closed in Temporal outside kooflow; recorded", "workflowId", d.WorkflowID, "temporalStatus", d.Status, "state", d.State)
		}
		if err != nil && ctx.Err() == nil {
			logger.Warn("could not compare open expirations with Temporal; will try again", "error", err)
		} else {
			since = started.Add(-driftOverlap)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(DriftSweepEvery):
		}
	}
}

// VanishedAfter is how long an expiry counted as Temporal's may show no sign of life
// (no state change, or a start that never began) before the sweep asks Temporal whether
// its workflow still exists: twice the one-hour rule, within which a round moves it.
const VanishedAfter = 2 * time.Hour

// SweepVanished asks Temporal about the expiries the admission cap counts that have shown
// no sign of life since before (store.StaleActiveExpirations, at most 500 a sweep): one
// whose workflow Temporal no longer has — deleted, or lost with a restored database — is
// recorded as drift, so it neither holds a place under the cap for ever nor looks alive
// to operators. Visibility cannot find these: a deleted workflow leaves no record.
func SweepVanished(ctx context.Context, c client.Client, st *store.Store, before time.Time) ([]Drift, error) {
	ids, err := st.StaleActiveExpirations(ctx, before, 500)
	if err != nil {
		return nil, err
	}
	var found []Drift
	for _, id := range ids {
		d, err := CheckExpiration(ctx, c, st, id)
		if err != nil {
			return found, err
		}
		if d != nil {
			found = append(found, *d)
		}
	}
	return found, nil
}

// Restart starts the workflow of a terminated or cancelled expiration again, under the
// same workflow ID: Temporal's ID-reuse policy allows it only after a run that did not
// complete, so an expiry that finished is never run twice, and two operators restarting
// at once start one run. The activities are idempotent: a freeze or a KooDrive
// notification that already happened is not repeated.
func Restart(ctx context.Context, c client.Client, st *store.Store, workflowID string) error {
	rec, err := st.Expiration(ctx, workflowID)
	if err != nil {
		return fmt.Errorf("read expiration %s: %w", workflowID, err)
	}
	if rec.State != store.StateTerminated && rec.State != store.StateCancelled {
		return fmt.Errorf("restart %s: %w (state %s)", workflowID, ErrNotDrifted, rec.State)
	}
	sub, err := st.Subscription(ctx, rec.SubscriptionID)
	if err != nil {
		return fmt.Errorf("restart %s: %w", workflowID, err)
	}
	in := ExpirationInput(rec.Source, rec.Subject, sub, rec.Test)
	in.Period, in.CarrierUserID, in.PackageID = rec.Period, rec.CarrierUserID, rec.PackageID
	existing, err := startExpirationWorkflowWith(ctx, c, workflowID, in, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY)
	if err != nil {
		return err
	}
	if existing {
		return fmt.Errorf("restart %s: Temporal has a run of it that is running or completed; nothing was started (see `kooflow status %s`)", workflowID, rec.Subject)
	}
	if _, err := st.ReopenExpiration(ctx, workflowID, ""); err != nil {
		return fmt.Errorf("restarted %s, but the store still says %s: %w", workflowID, rec.State, err)
	}
	return nil
}
