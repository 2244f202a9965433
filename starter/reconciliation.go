package starter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/workflows"
)

// ScheduleID is the monthly reconciliation schedule's ID.
const ScheduleID = "kooflow-monthly-reconciliation"

// ScheduleConfig says when the monthly reconciliation runs.
type ScheduleConfig struct {
	// Cron is a five-field cron spec; default "0 2 1 * *" (02:00 on the 1st).
	Cron string
	// TimeZone is an IANA zone name; default "UTC".
	TimeZone string
	// CatchupWindow is how late a missed run (scheduler or cluster down on the 1st) still
	// runs; default 7 days, so a week-long outage does not skip a month.
	CatchupWindow time.Duration
	PollInterval  time.Duration
	PollDeadline  time.Duration
}

func (c *ScheduleConfig) defaults() error {
	if c.Cron == "" {
		c.Cron = "0 2 1 * *"
	}
	if c.TimeZone == "" {
		c.TimeZone = "UTC"
	}
	if _, err := time.LoadLocation(c.TimeZone); err != nil {
		return fmt.Errorf("schedule time zone %q: %w", c.TimeZone, err)
	}
	if c.CatchupWindow == 0 {
		c.CatchupWindow = 7 * 24 * time.Hour
	}
	return nil
}

func (c ScheduleConfig) spec() client.ScheduleSpec {
	return client.ScheduleSpec{CronExpressions: []string{c.Cron}, TimeZoneName: c.TimeZone}
}

func (c ScheduleConfig) action() *client.ScheduleWorkflowAction {
	return &client.ScheduleWorkflowAction{
		ID:        "reconcile/scheduled",
		Workflow:  workflows.MonthlyReconciliationWorkflow,
		Args:      []any{contract.MonthlyInput{TimeZone: c.TimeZone, PollInterval: c.PollInterval, PollDeadline: c.PollDeadline}},
		TaskQueue: workflows.TaskQueue,
	}
}

// ApplySchedule creates the monthly reconciliation schedule, or brings an existing one
// up to cfg. It is idempotent. It reports whether the schedule was created.
func ApplySchedule(ctx context.Context, c client.Client, cfg ScheduleConfig) (bool, error) {
	if err := cfg.defaults(); err != nil {
		return false, err
	}
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:            ScheduleID,
		Spec:          cfg.spec(),
		Action:        cfg.action(),
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: cfg.CatchupWindow,
		Note:          "kooflow: monthly carrier reconciliation with KooDrive for the previous billing cycle",
	})
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return false, fmt.Errorf("create schedule %s: %w", ScheduleID, err)
	}
	handle := c.ScheduleClient().GetHandle(ctx, ScheduleID)
	err = handle.Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := in.Description.Schedule
			spec := cfg.spec()
			s.Spec = &spec
			s.Action = cfg.action()
			if s.Policy == nil {
				s.Policy = &client.SchedulePolicies{}
			}
			s.Policy.Overlap = enumspb.SCHEDULE_OVERLAP_POLICY_SKIP
			s.Policy.CatchupWindow = cfg.CatchupWindow
			return &client.ScheduleUpdate{Schedule: &s}, nil
		},
	})
	if err != nil {
		return false, fmt.Errorf("update schedule %s: %w", ScheduleID, err)
	}
	return false, nil
}

// DescribeSchedule returns the schedule's description (spec, next and recent runs).
func DescribeSchedule(ctx context.Context, c client.Client) (*client.ScheduleDescription, error) {
	d, err := c.ScheduleClient().GetHandle(ctx, ScheduleID).Describe(ctx)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil, fmt.Errorf("schedule %s does not exist; create it with `kooflow schedule apply`", ScheduleID)
	}
	if err != nil {
		return nil, fmt.Errorf("describe schedule %s: %w", ScheduleID, err)
	}
	return d, nil
}

// ScheduleRun is one run the monthly schedule started, and how it went.
type ScheduleRun struct {
	// ScheduledAt is the run's nominal time; its billing cycle is the month before it.
	ScheduledAt time.Time
	StartedAt   time.Time
	WorkflowID  string
	RunID       string
	// Status is Temporal's, in lower case: running, completed, failed, terminated, … or
	// "gone" once Temporal's retention has dropped the run.
	Status string
	// Cycle is the billing cycle the run reconciles.
	Cycle string
	// BatchNo and Discrepancies are a completed run's result.
	BatchNo       string
	Discrepancies int
	// Error is why a failed run failed.
	Error string
}

// ScheduleRuns returns the recent runs of a described schedule, oldest first, each with
// its status, its billing cycle and, when it ended, its result or failure.
func ScheduleRuns(ctx context.Context, c client.Client, d *client.ScheduleDescription) ([]ScheduleRun, error) {
	loc := time.UTC
	if d.Schedule.Spec != nil && d.Schedule.Spec.TimeZoneName != "" {
		if l, err := time.LoadLocation(d.Schedule.Spec.TimeZoneName); err == nil {
			loc = l
		}
	}
	var runs []ScheduleRun
	for _, a := range d.Info.RecentActions {
		if a.StartWorkflowResult == nil {
			continue
		}
		r := ScheduleRun{ScheduledAt: a.ScheduleTime, StartedAt: a.ActualTime, WorkflowID: a.StartWorkflowResult.WorkflowID,
			RunID: a.StartWorkflowResult.FirstExecutionRunID, Cycle: contract.PreviousCycle(a.ScheduleTime.In(loc))}
		desc, err := c.DescribeWorkflowExecution(ctx, r.WorkflowID, r.RunID)
		var notFound *serviceerror.NotFound
		switch {
		case errors.As(err, &notFound):
			r.Status = "gone"
		case err != nil:
			return nil, fmt.Errorf("describe the scheduled run %s: %w", r.WorkflowID, err)
		default:
			status := desc.GetWorkflowExecutionInfo().GetStatus()
			r.Status = strings.ToLower(strings.TrimPrefix(status.String(), "WORKFLOW_EXECUTION_STATUS_"))
			if status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				var res contract.ReconciliationResult
				if err := c.GetWorkflow(ctx, r.WorkflowID, r.RunID).Get(ctx, &res); err != nil {
					r.Error = err.Error()
				} else {
					r.Cycle, r.BatchNo, r.Discrepancies = res.Cycle, res.BatchNo, res.Total
				}
			}
		}
		runs = append(runs, r)
	}
	return runs, nil
}

// ErrReconciliationRunning is returned (inside a *ReconciliationRunningError) when the
// cycle's reconciliation is already running.
var ErrReconciliationRunning = errors.New("reconciliation already running")

// ErrReconciliationDone is returned (inside a *ReconciliationDoneError) when the cycle's
// reconciliation already completed and no new run was asked for.
var ErrReconciliationDone = errors.New("reconciliation already completed")

// ReconciliationRunningError names the run of a cycle that is still under way.
type ReconciliationRunningError struct {
	Cycle      string
	WorkflowID string
	RunID      string
	Started    time.Time
}

// Error names the running reconciliation.
func (e *ReconciliationRunningError) Error() string {
	return fmt.Sprintf("the reconciliation of billing cycle %s is already running: workflow %s (run %s), started %s",
		e.Cycle, e.WorkflowID, e.RunID, e.Started.UTC().Format(time.RFC3339))
}

// Unwrap makes errors.Is(err, ErrReconciliationRunning) hold.
func (e *ReconciliationRunningError) Unwrap() error { return ErrReconciliationRunning }

// ReconciliationDoneError names the completed run of a cycle: which workflow, when it
// finished, KooDrive's batch and the files it wrote.
type ReconciliationDoneError struct {
	Cycle      string
	WorkflowID string
	// RunID is empty when only kooflow's store remembers the run (Temporal's retention
	// has passed).
	RunID         string
	Completed     time.Time
	BatchNo       string
	StatementPath string
	ReportPath    string
	Discrepancies int
}

// Error names the finished run and says how to see it or run the cycle again.
func (e *ReconciliationDoneError) Error() string {
	run := ""
	if e.RunID != "" {
		run = " (run " + e.RunID + ")"
	}
	found := fmt.Sprintf("%d discrepancies", e.Discrepancies)
	if e.Discrepancies == 1 {
		found = "1 discrepancy"
	}
	return fmt.Sprintf("billing cycle %s was already reconciled: workflow %s%s completed %s, KooDrive batch %s, %s, report %s; "+
		"`kooflow reconcile show --cycle %s` shows it, and `kooflow reconcile --cycle %s --force` builds, uploads and checks the statement again",
		e.Cycle, e.WorkflowID, run, e.Completed.UTC().Format(time.RFC3339), orNone(e.BatchNo), found, orNone(e.ReportPath), e.Cycle, e.Cycle)
}

// Unwrap makes errors.Is(err, ErrReconciliationDone) hold.
func (e *ReconciliationDoneError) Unwrap() error { return ErrReconciliationDone }

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// StartReconciliation starts one cycle's reconciliation by hand. The cycle must be over.
// A cycle whose reconciliation is running is not started twice (*ReconciliationRunningError),
// and one whose reconciliation completed is not run again (*ReconciliationDoneError); a
// failed, cancelled or terminated run may be started again.
//
// Completion is known from Temporal (the latest run of reconcile/<cycle>) and, once
// Temporal's retention has dropped it, from kooflow's store when s.Store is set.
func (s *Starter) StartReconciliation(ctx context.Context, in contract.ReconciliationInput) (client.WorkflowRun, error) {
	return s.startReconciliation(ctx, in, false)
}

// ReconcileAgain is StartReconciliation that also runs a cycle whose reconciliation
// completed (`kooflow reconcile --force`): the statement is built again from today's
// registry; KooDrive's upload is idempotent by content, so an unchanged statement reuses
// its batch. A running reconciliation is still not started twice.
func (s *Starter) ReconcileAgain(ctx context.Context, in contract.ReconciliationInput) (client.WorkflowRun, error) {
	return s.startReconciliation(ctx, in, true)
}

func (s *Starter) startReconciliation(ctx context.Context, in contract.ReconciliationInput, force bool) (client.WorkflowRun, error) {
	if err := contract.CheckPastCycle(in.Cycle, time.Now()); err != nil {
		return nil, err
	}
	id := workflows.ReconciliationWorkflowID(in.Cycle)
	known, err := s.previousReconciliation(ctx, in.Cycle, force)
	if err != nil {
		return nil, err
	}
	if !known && !force && s.Store != nil {
		if err := s.storedReconciliation(ctx, in.Cycle); err != nil {
			return nil, err
		}
	}
	// Without force a completed run is refused by Temporal itself too, should one complete
	// (or start) between the look above and this start.
	reuse := enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY
	summary := "Reconciliation of billing cycle " + in.Cycle + " (started by hand)"
	if force {
		reuse = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
		summary = "Reconciliation of billing cycle " + in.Cycle + " (started again by hand with --force)"
	}
	run, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                workflows.TaskQueue,
		WorkflowIDReusePolicy:                    reuse,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    temporal.NewSearchAttributes(workflows.SearchAttrBillingCycle.ValueSet(in.Cycle)),
		StaticSummary:                            summary,
	}, workflows.ReconciliationWorkflow, in)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		if _, lookErr := s.previousReconciliation(ctx, in.Cycle, force); lookErr != nil {
			return nil, lookErr
		}
		return nil, fmt.Errorf("start %s: Temporal refused a new run: %w", id, err)
	}
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", id, err)
	}
	return run, nil
}

// previousReconciliation looks at the latest run of the cycle's workflow in Temporal. It
// returns a *ReconciliationRunningError for a running one and, unless force is set, a
// *ReconciliationDoneError for a completed one; known reports whether Temporal has a run.
func (s *Starter) previousReconciliation(ctx context.Context, cycle string, force bool) (known bool, err error) {
	id := workflows.ReconciliationWorkflowID(cycle)
	d, err := s.Client.DescribeWorkflowExecution(ctx, id, "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look for an earlier reconciliation of %s: %w", cycle, err)
	}
	info := d.GetWorkflowExecutionInfo()
	runID := info.GetExecution().GetRunId()
	switch info.GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return true, &ReconciliationRunningError{Cycle: cycle, WorkflowID: id, RunID: runID, Started: info.GetStartTime().AsTime()}
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		if force {
			return true, nil
		}
		var res contract.ReconciliationResult
		if err := s.Client.GetWorkflow(ctx, id, runID).Get(ctx, &res); err != nil {
			return true, fmt.Errorf("read the result of the completed reconciliation %s (run %s): %w", id, runID, err)
		}
		return true, &ReconciliationDoneError{Cycle: cycle, WorkflowID: id, RunID: runID, Completed: info.GetCloseTime().AsTime(),
			BatchNo: res.BatchNo, StatementPath: res.StatementPath, ReportPath: res.ReportPath, Discrepancies: res.Total}
	}
	return true, nil
}

// storedReconciliation returns a *ReconciliationDoneError when kooflow's store records
// the cycle as completed (the run outlived Temporal's retention).
func (s *Starter) storedReconciliation(ctx context.Context, cycle string) error {
	r, err := s.Store.Run(ctx, cycle)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look for an earlier reconciliation of %s in the store: %w", cycle, err)
	}
	if r.State != store.RunCompleted {
		return nil
	}
	total := 0
	for _, n := range r.Counts {
		total += n
	}
	return &ReconciliationDoneError{Cycle: cycle, WorkflowID: orNone(r.WorkflowID), Completed: r.UpdatedAt, BatchNo: r.BatchNo,
		StatementPath: r.StatementPath, ReportPath: r.ReportPath, Discrepancies: total}
}
