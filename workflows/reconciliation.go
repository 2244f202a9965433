package workflows

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/store"
)

// ErrTypeServiceFrozen marks a reconciliation refused because the tenant is frozen.
const ErrTypeServiceFrozen = "KooDriveServiceFrozen"

// Defaults of the "infrequent polling" for KooDrive's discrepancy results.
const (
	DefaultPollInterval = time.Minute
	DefaultPollDeadline = 24 * time.Hour
)

// Activity names of the reconciliation workflow.
const (
	ActivityCheckService       = "CheckKooDriveService"
	ActivitySaveRun            = "SaveReconciliationRun"
	ActivityBuildStatement     = "BuildStatement"
	ActivityUploadStatement    = "UploadStatement"
	ActivityWaitForResults     = "WaitForDiscrepancyResults"
	ActivityFetchDiscrepancies = "FetchDiscrepancies"
	ActivityWriteReport        = "WriteDiscrepancyReport"
)

// ReconciliationInput names the billing cycle and how to wait for KooDrive's check.
type ReconciliationInput struct {
	// Cycle is the billing cycle, yyyy-MM, always a past month.
	Cycle string
	// PollInterval and PollDeadline default to DefaultPollInterval and DefaultPollDeadline.
	PollInterval time.Duration
	PollDeadline time.Duration
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

var cyclePattern = regexp.MustCompile(`^([0-9]{4})-(0[1-9]|1[0-2])$`)

// CycleBounds returns the first instant of the cycle and of the month after it, in UTC.
func CycleBounds(cycle string) (time.Time, time.Time, error) {
	m := cyclePattern.FindStringSubmatch(cycle)
	if m == nil {
		return time.Time{}, time.Time{}, fmt.Errorf("billing cycle %q is not yyyy-MM", cycle)
	}
	year, _ := strconv.Atoi(m[1])
	month, _ := strconv.Atoi(m[2])
	start := time.Date(year, time.Month(month), 1, 0, 0, 0, 0, time.UTC)
	return start, start.AddDate(0, 1, 0), nil
}

// CheckPastCycle refuses a cycle that is not over at now.
func CheckPastCycle(cycle string, now time.Time) error {
	_, end, err := CycleBounds(cycle)
	if err != nil {
		return err
	}
	current := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	if end.After(current) {
		return fmt.Errorf("billing cycle %s is not over yet: KooDrive accepts only past cycles (the latest is %s)", cycle, PreviousCycle(now))
	}
	return nil
}

// PreviousCycle is the month before t's month, as yyyy-MM.
func PreviousCycle(t time.Time) string {
	first := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, t.Location())
	return first.AddDate(0, -1, 0).Format("2006-01")
}

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
func ReconciliationWorkflow(ctx workflow.Context, in ReconciliationInput) (ReconciliationResult, error) {
	logger := workflow.GetLogger(ctx)
	if err := CheckPastCycle(in.Cycle, workflow.Now(ctx)); err != nil {
		return ReconciliationResult{}, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidCycle", nil)
	}
	if in.PollInterval <= 0 {
		in.PollInterval = DefaultPollInterval
	}
	if in.PollDeadline <= 0 {
		in.PollDeadline = DefaultPollDeadline
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, SearchAttrBillingCycle.ValueSet(in.Cycle)); err != nil {
		return ReconciliationResult{}, err
	}
	result := ReconciliationResult{Cycle: in.Cycle}
	run := store.ReconciliationRun{Cycle: in.Cycle, State: store.RunBuilding}

	short := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 100},
	})
	save := func(state, errMsg string) error {
		run.State, run.Error = state, errMsg
		workflow.SetCurrentDetails(ctx, describeRun(run))
		return workflow.ExecuteActivity(short, ActivitySaveRun, run).Get(ctx, nil)
	}
	fail := func(step string, err error) (ReconciliationResult, error) {
		msg := fmt.Sprintf("%s: %s", step, failureMessage(err))
		logger.Error("Reconciliation failed", "cycle", in.Cycle, "step", step, "error", msg)
		if saveErr := save(store.RunFailed, msg); saveErr != nil {
			logger.Error("Could not record the failure", "error", saveErr)
		}
		return result, temporal.NewNonRetryableApplicationError(msg, "ReconciliationFailed", err)
	}

	if err := save(store.RunBuilding, ""); err != nil {
		return result, err
	}
	if err := workflow.ExecuteActivity(short, ActivityCheckService).Get(ctx, nil); err != nil {
		return fail("check KooDrive service", err)
	}

	long := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Hour,
		HeartbeatTimeout:    2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute, MaximumAttempts: 20},
	})
	var info StatementInfo
	if err := workflow.ExecuteActivity(long, ActivityBuildStatement, in.Cycle).Get(ctx, &info); err != nil {
		return fail("build statement", err)
	}
	run.StatementPath, run.StatementRows, run.StatementSHA256 = info.Path, info.Rows, info.SHA256
	result.StatementPath, result.StatementRows = info.Path, info.Rows

	var upload UploadResult
	if err := workflow.ExecuteActivity(long, ActivityUploadStatement, in.Cycle, info).Get(ctx, &upload); err != nil {
		return fail("upload statement", err)
	}
	run.BatchNo, result.BatchNo, result.Uploaded = upload.BatchNo, upload.BatchNo, !upload.Reused
	if err := save(store.RunPolling, ""); err != nil {
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
			NonRetryableErrorTypes: []string{ErrTypeKooDriveRejected},
		},
	})
	if err := workflow.ExecuteActivity(poll, ActivityWaitForResults, upload.BatchNo).Get(ctx, nil); err != nil {
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && appErr.Type() == ErrTypeKooDriveRejected {
			return fail("poll results", err)
		}
		return fail("poll results", fmt.Errorf("KooDrive did not finish checking batch %s within %s; run `kooflow reconcile --cycle %s` again later (the statement is not uploaded twice): %w",
			upload.BatchNo, in.PollDeadline, in.Cycle, err))
	}
	if err := save(store.RunFetching, ""); err != nil {
		return result, err
	}
	var fetched FetchResult
	if err := workflow.ExecuteActivity(long, ActivityFetchDiscrepancies, in.Cycle, upload.BatchNo).Get(ctx, &fetched); err != nil {
		return fail("fetch discrepancies", err)
	}
	var report ReportInfo
	if err := workflow.ExecuteActivity(long, ActivityWriteReport, in.Cycle, upload.BatchNo).Get(ctx, &report); err != nil {
		return fail("write report", err)
	}
	result.ReportPath, result.Total, result.Counts = report.Path, fetched.Total, fetched.Counts
	run.ReportPath, run.Counts = report.Path, fetched.Counts
	if err := save(store.RunCompleted, ""); err != nil {
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

func describeRun(r store.ReconciliationRun) string {
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

// MonthlyInput configures the scheduled monthly run.
type MonthlyInput struct {
	// TimeZone is the IANA zone whose calendar defines the billing month; default UTC.
	TimeZone     string
	PollInterval time.Duration
	PollDeadline time.Duration
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
func MonthlyReconciliationWorkflow(ctx workflow.Context, in MonthlyInput) (ReconciliationResult, error) {
	scheduled, ok := workflow.GetTypedSearchAttributes(ctx).GetTime(scheduledStartTime)
	if !ok {
		return ReconciliationResult{}, temporal.NewNonRetryableApplicationError(
			"MonthlyReconciliationWorkflow runs from the monthly schedule; use `kooflow reconcile --cycle yyyy-MM` to run one cycle by hand", "NotScheduled", nil)
	}
	var cycle string
	// Reading the time-zone database is I/O: record its answer in the history.
	err := workflow.SideEffect(ctx, func(workflow.Context) any {
		loc, err := time.LoadLocation(in.TimeZone)
		if err != nil {
			loc = time.UTC
		}
		return PreviousCycle(scheduled.In(loc))
	}).Get(&cycle)
	if err != nil {
		return ReconciliationResult{}, err
	}
	child := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            ReconciliationWorkflowID(cycle),
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(SearchAttrBillingCycle.ValueSet(cycle)),
		StaticSummary:         "Reconciliation of billing cycle " + cycle,
	})
	var result ReconciliationResult
	err = workflow.ExecuteChildWorkflow(child, ReconciliationWorkflow, ReconciliationInput{
		Cycle: cycle, PollInterval: in.PollInterval, PollDeadline: in.PollDeadline,
	}).Get(ctx, &result)
	return result, err
}
