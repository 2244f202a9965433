package starter

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kooflow/kooflow/contract"
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

// ErrReconciliationRunning is returned when the cycle's reconciliation is already running.
var ErrReconciliationRunning = errors.New("reconciliation already running")

// StartReconciliation starts one cycle's reconciliation by hand. The cycle must be over.
func (s *Starter) StartReconciliation(ctx context.Context, in contract.ReconciliationInput) (client.WorkflowRun, error) {
	if err := contract.CheckPastCycle(in.Cycle, time.Now()); err != nil {
		return nil, err
	}
	id := workflows.ReconciliationWorkflowID(in.Cycle)
	run, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                workflows.TaskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    temporal.NewSearchAttributes(workflows.SearchAttrBillingCycle.ValueSet(in.Cycle)),
		StaticSummary:                            "Reconciliation of billing cycle " + in.Cycle + " (started by hand)",
	}, workflows.ReconciliationWorkflow, in)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		return nil, fmt.Errorf("%s: %w", id, ErrReconciliationRunning)
	}
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", id, err)
	}
	return run, nil
}
