package workflows

import (
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/contract"
)

// reconciliationActivities is how the reconciliation workflow names its activities:
// methods of a nil *activities.Reconciliation (typed references).
var reconciliationActivities *activities.Reconciliation

// Defaults of the "infrequent polling" for KooDrive's discrepancy results.
const (
	DefaultPollInterval = time.Minute
	DefaultPollDeadline = 24 * time.Hour
)

// ReconciliationWorkflowID names a cycle's reconciliation.
func ReconciliationWorkflowID(cycle string) string { return "reconcile/" + cycle }

// ReconciliationWorkflow reconciles one billing cycle with KooDrive.
//
// Pattern: a pipeline of idempotent activities with files, not payloads, between them,
// and "infrequent polling" through an activity's retry policy. It checks that the
// tenant's service is not frozen, streams the statement from the registry into an xlsx
// file, uploads it (once per statement content: a re-run reuses the batch), then polls
// diff/getList by letting WaitForResults fail with "not ready" and retry at a fixed
// interval until a deadline — so waiting a day adds a handful of events, not thousands —
// and finally pages through every discrepancy (heartbeating the cursor) into the store
// and writes the discrepancy report.
func ReconciliationWorkflow(ctx workflow.Context, in contract.ReconciliationInput) (contract.ReconciliationResult, error) {
	logger := workflow.GetLogger(ctx)
	if err := contract.CheckPastCycle(in.Cycle, workflow.Now(ctx)); err != nil {
		return contract.ReconciliationResult{}, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidCycle", nil)
	}
	if in.PollInterval <= 0 {
		in.PollInterval = DefaultPollInterval
	}
	if in.PollDeadline <= 0 {
		in.PollDeadline = DefaultPollDeadline
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, SearchAttrBillingCycle.ValueSet(in.Cycle)); err != nil {
		return contract.ReconciliationResult{}, err
	}
	result := contract.ReconciliationResult{Cycle: in.Cycle}
	run := contract.RunProgress{Cycle: in.Cycle, State: contract.RunBuilding}

	short := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 100},
	})
	save := func(state, errMsg string) error {
		run.State, run.Error = state, errMsg
		workflow.SetCurrentDetails(ctx, describeRun(run))
		return workflow.ExecuteActivity(short, reconciliationActivities.SaveReconciliationRun, run).Get(ctx, nil)
	}
	fail := func(step string, err error) (contract.ReconciliationResult, error) {
		msg := fmt.Sprintf("%s: %s", step, failureMessage(err))
		logger.Error("Reconciliation failed", "cycle", in.Cycle, "step", step, "error", msg)
		if saveErr := save(contract.RunFailed, msg); saveErr != nil {
			logger.Error("Could not record the failure", "error", saveErr)
		}
		return result, temporal.NewNonRetryableApplicationError(msg, "ReconciliationFailed", err)
	}

	if err := save(contract.RunBuilding, ""); err != nil {
		return result, err
	}
	if err := workflow.ExecuteActivity(short, reconciliationActivities.CheckKooDriveService).Get(ctx, nil); err != nil {
		return fail("check KooDrive service", err)
	}

	long := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Hour,
		HeartbeatTimeout:    2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute, MaximumAttempts: 20},
	})
	var info contract.StatementInfo
	if err := workflow.ExecuteActivity(long, reconciliationActivities.BuildStatement, in.Cycle).Get(ctx, &info); err != nil {
		return fail("build statement", err)
	}
	run.StatementPath, run.StatementRows, run.StatementSHA256 = info.Path, info.Rows, info.SHA256
	result.StatementPath, result.StatementRows = info.Path, info.Rows

	var upload contract.UploadResult
	if err := workflow.ExecuteActivity(long, reconciliationActivities.UploadStatement, in.Cycle, info).Get(ctx, &upload); err != nil {
		return fail("upload statement", err)
	}
	run.BatchNo, result.BatchNo, result.Uploaded = upload.BatchNo, upload.BatchNo, !upload.Reused
	if err := save(contract.RunPolling, ""); err != nil {
		return result, err
	}

	poll := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ScheduleToCloseTimeout: in.PollDeadline,
		StartToCloseTimeout:    time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    in.PollInterval,
			BackoffCoefficient: 1,
			MaximumInterval:    in.PollInterval,
			// The deadline bounds the polls; an explicit bound keeps the SDK's test
			// environment from capping "unlimited" at 10 attempts.
			MaximumAttempts:        int32(in.PollDeadline/in.PollInterval) + 2,
			NonRetryableErrorTypes: []string{contract.ErrTypeKooDriveRejected},
		},
	})
	if err := workflow.ExecuteActivity(poll, reconciliationActivities.WaitForDiscrepancyResults, upload.BatchNo).Get(ctx, nil); err != nil {
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && appErr.Type() == contract.ErrTypeKooDriveRejected {
			return fail("poll results", err)
		}
		return fail("poll results", fmt.Errorf("KooDrive did not finish checking batch %s within %s; run `kooflow reconcile --cycle %s` again later (the statement is not uploaded twice): %w",
			upload.BatchNo, in.PollDeadline, in.Cycle, err))
	}
	if err := save(contract.RunFetching, ""); err != nil {
		return result, err
	}
	var fetched contract.FetchResult
	if err := workflow.ExecuteActivity(long, reconciliationActivities.FetchDiscrepancies, in.Cycle, upload.BatchNo).Get(ctx, &fetched); err != nil {
		return fail("fetch discrepancies", err)
	}
	var report contract.ReportInfo
	if err := workflow.ExecuteActivity(long, reconciliationActivities.WriteDiscrepancyReport, in.Cycle, upload.BatchNo).Get(ctx, &report); err != nil {
		return fail("write report", err)
	}
	result.ReportPath, result.Total, result.Counts = report.Path, fetched.Total, fetched.Counts
	run.ReportPath, run.Counts = report.Path, fetched.Counts
	if err := save(contract.RunCompleted, ""); err != nil {
		return result, err
	}
	return result, nil
}

// failureMessage is the innermost application message of an activity failure.
func failureMessage(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	return err.Error()
}

// describeRun renders the run's current details for the Temporal UI.
func describeRun(r contract.RunProgress) string {
	s := fmt.Sprintf("Reconciliation of billing cycle **%s**: %s", r.Cycle, r.State)
	if r.StatementRows > 0 {
		s += fmt.Sprintf("\n\nstatement: %d rows (%s)", r.StatementRows, r.StatementPath)
	}
	if r.BatchNo != "" {
		s += "\n\nKooDrive batch " + r.BatchNo
	}
	if r.Error != "" {
		s += "\n\nerror: " + r.Error
	}
	return s
}

// scheduledStartTime is set by Temporal on workflows started by a schedule.
var scheduledStartTime = temporal.NewSearchAttributeKeyTime("TemporalScheduledStartTime")

// MonthlyReconciliationWorkflow is what the monthly schedule starts.
//
// Pattern: a scheduled launcher. A schedule cannot give its runs a business ID, so this
// workflow derives the billing cycle — the month before the schedule's nominal start
// time (TemporalScheduledStartTime, stable across retries and backfills) in the
// schedule's time zone — and runs ReconciliationWorkflow as a child with the ID
// reconcile/<cycle>.
func MonthlyReconciliationWorkflow(ctx workflow.Context, in contract.MonthlyInput) (contract.ReconciliationResult, error) {
	scheduled, ok := workflow.GetTypedSearchAttributes(ctx).GetTime(scheduledStartTime)
	if !ok {
		return contract.ReconciliationResult{}, temporal.NewNonRetryableApplicationError(
			"MonthlyReconciliationWorkflow runs from the monthly schedule; use `kooflow reconcile --cycle yyyy-MM` to run one cycle by hand", "NotScheduled", nil)
	}
	var cycle string
	// Reading the time-zone database is I/O: record its answer in the history.
	err := workflow.SideEffect(ctx, func(workflow.Context) any {
		loc, err := time.LoadLocation(in.TimeZone)
		if err != nil {
			loc = time.UTC
		}
		return contract.PreviousCycle(scheduled.In(loc))
	}).Get(&cycle)
	if err != nil {
		return contract.ReconciliationResult{}, err
	}
	child := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            ReconciliationWorkflowID(cycle),
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(SearchAttrBillingCycle.ValueSet(cycle)),
		StaticSummary:         "Reconciliation of billing cycle " + cycle,
	})
	var result contract.ReconciliationResult
	err = workflow.ExecuteChildWorkflow(child, ReconciliationWorkflow, contract.ReconciliationInput{
		Cycle: cycle, PollInterval: in.PollInterval, PollDeadline: in.PollDeadline,
	}).Get(ctx, &result)
	return result, err
}
