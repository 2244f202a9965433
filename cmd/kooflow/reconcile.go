package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/statement"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/workflows"
)

// scheduleFlags configure the monthly schedule; each also reads a KOOFLOW_* variable.
type scheduleFlags struct {
	cron     string
	timeZone string
}

func (f *scheduleFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.cron, "cron", envOr("KOOFLOW_SCHEDULE_CRON", "0 2 1 * *"), "when the monthly reconciliation runs (env KOOFLOW_SCHEDULE_CRON)")
	cmd.Flags().StringVar(&f.timeZone, "timezone", envOr("KOOFLOW_SCHEDULE_TIMEZONE", "UTC"), "IANA time zone of the schedule and of billing months (env KOOFLOW_SCHEDULE_TIMEZONE)")
}

func (f scheduleFlags) config() starter.ScheduleConfig {
	return starter.ScheduleConfig{Cron: f.cron, TimeZone: f.timeZone}
}

func newScheduleCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "schedule", Short: "Manage the monthly reconciliation schedule (" + starter.ScheduleID + ")"}
	var (
		sf         scheduleFlags
		applyStack stackFlags
		descTF     temporalFlags
	)
	apply := &cobra.Command{
		Use:   "apply",
		Short: "Create the monthly reconciliation schedule, or update it to these settings (idempotent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stack, err := applyStack.open(cmd.Context())
			if err != nil {
				return err
			}
			defer stack.Close()
			created, err := stack.operator().ApplySchedule(cmd.Context(), sf.config())
			if err != nil {
				return err
			}
			verb := "updated"
			if created {
				verb = "created"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "schedule %s %s: %q in %s, overlap skip, catch-up window 7 days\n", starter.ScheduleID, verb, sf.cron, sf.timeZone)
			return nil
		},
	}
	sf.register(apply)
	applyStack.register(apply)
	describe := &cobra.Command{
		Use:   "describe",
		Short: "Show the schedule: calendar, time zone, policies, paused or not, next runs and recent runs with their outcome",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := descTF.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			d, err := starter.DescribeSchedule(cmd.Context(), c)
			if err != nil {
				return err
			}
			runs, err := starter.ScheduleRuns(cmd.Context(), c, d)
			if err != nil {
				return err
			}
			printSchedule(cmd.OutOrStdout(), d, runs)
			return nil
		},
	}
	descTF.register(describe, nil)
	cmd.AddCommand(apply, describe, newSchedulePauseCommand(true), newSchedulePauseCommand(false))
	return cmd
}

// newSchedulePauseCommand is kooflow schedule pause (paused) or unpause, with the note that
// says why: Temporal keeps it on the schedule, the audit log with the action.
func newSchedulePauseCommand(paused bool) *cobra.Command {
	var (
		sf   stackFlags
		note string
	)
	use, short := "unpause", "Let the monthly reconciliation schedule start cycles again"
	if paused {
		use, short = "pause", "Stop the monthly reconciliation schedule from starting cycles until it is unpaused"
	}
	cmd := &cobra.Command{
		Use:     use + ` --note "why"`,
		Short:   short,
		Example: `  kooflow schedule ` + use + ` --note "KooDrive maintenance until the 3rd (ticket 4711)"`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(note) == "" {
				return errors.New("--note is required: say why, for whoever finds the schedule " + use + "d")
			}
			stack, err := sf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer stack.Close()
			if err := stack.operator().SetSchedulePaused(cmd.Context(), paused, note); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "schedule %s %sd: %s\n", starter.ScheduleID, use, note)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&note, "note", "", "why (kept on the schedule and in the audit log)")
	return cmd
}

// nextRunsShown is how many of the schedule's next run times describe prints.
const nextRunsShown = 3

// printSchedule writes what `schedule describe` shows.
func printSchedule(out io.Writer, d *client.ScheduleDescription, runs []starter.ScheduleRun) {
	loc := time.UTC
	fmt.Fprintf(out, "schedule %s\n", starter.ScheduleID)
	if spec := d.Schedule.Spec; spec != nil {
		for _, cron := range spec.CronExpressions {
			fmt.Fprintf(out, "  calendar:   cron %q\n", cron)
		}
		for _, cal := range spec.Calendars {
			fmt.Fprintf(out, "  calendar:   %s\n", describeCalendar(cal))
		}
		for _, iv := range spec.Intervals {
			fmt.Fprintf(out, "  calendar:   every %s (offset %s)\n", iv.Every, iv.Offset)
		}
		tz := spec.TimeZoneName
		if tz == "" {
			tz = "UTC"
		} else if l, err := time.LoadLocation(tz); err == nil {
			loc = l
		}
		fmt.Fprintf(out, "  time zone:  %s\n", tz)
	}
	if p := d.Schedule.Policy; p != nil {
		fmt.Fprintf(out, "  overlap:    %s; catch-up window %s\n",
			strings.ToLower(strings.TrimPrefix(p.Overlap.String(), "SCHEDULE_OVERLAP_POLICY_")), p.CatchupWindow)
	}
	if d.Schedule.State != nil && d.Schedule.State.Paused {
		note := d.Schedule.State.Note
		if note == "" {
			note = "no note"
		}
		fmt.Fprintf(out, "  paused:     yes (%s): no run starts until it is unpaused (Temporal UI, Schedules; or `temporal schedule toggle --schedule-id %s --unpause`)\n", note, starter.ScheduleID)
	} else {
		fmt.Fprintf(out, "  paused:     no\n")
	}
	fmt.Fprintf(out, "  runs:       %d started, %d skipped (overlap), %d missed the catch-up window\n",
		d.Info.NumActions, d.Info.NumActionsSkippedOverlap, d.Info.NumActionsMissedCatchupWindow)
	fmt.Fprintf(out, "  next runs:\n")
	if len(d.Info.NextActionTimes) == 0 {
		fmt.Fprintf(out, "    none\n")
	}
	for i, t := range d.Info.NextActionTimes {
		if i == nextRunsShown {
			break
		}
		fmt.Fprintf(out, "    %s  billing cycle %s\n", t.In(loc).Format(time.RFC3339), contract.PreviousCycle(t.In(loc)))
	}
	fmt.Fprintf(out, "  recent runs (oldest first):\n")
	if len(runs) == 0 {
		fmt.Fprintf(out, "    none yet\n")
	}
	for _, r := range runs {
		outcome := r.Status
		switch {
		case r.Status == "completed":
			outcome = fmt.Sprintf("completed: billing cycle %s, batch %s, %s", r.Cycle, r.BatchNo, discrepancies(r.Discrepancies))
		case r.Status == "gone":
			outcome = fmt.Sprintf("billing cycle %s; no longer in Temporal (retention), see `kooflow reconcile show --cycle %s`", r.Cycle, r.Cycle)
		case r.Error != "":
			outcome = fmt.Sprintf("%s: billing cycle %s: %s", r.Status, r.Cycle, r.Error)
		default:
			outcome = fmt.Sprintf("%s: billing cycle %s", r.Status, r.Cycle)
		}
		fmt.Fprintf(out, "    %s  workflow %s (run %s)  %s\n", r.ScheduledAt.In(loc).Format(time.RFC3339), r.WorkflowID, r.RunID, outcome)
	}
}

// describeCalendar writes a calendar spec (Temporal keeps a cron expression as one) as
// the cron expression it matches — minute, hour, day of month, month, day of week, a field
// covering its whole range written * — and the seconds when they are not 0.
func describeCalendar(c client.ScheduleCalendarSpec) string {
	field := func(rs []client.ScheduleRange, lo, hi int, unset string) string {
		if len(rs) == 0 {
			return unset
		}
		if len(rs) == 1 && rs[0].Start == lo && rs[0].End >= hi && rs[0].Step <= 1 {
			return "*"
		}
		parts := make([]string, 0, len(rs))
		for _, r := range rs {
			p := strconv.Itoa(r.Start)
			if r.End > r.Start {
				p += "-" + strconv.Itoa(r.End)
			}
			if r.Step > 1 {
				p += "/" + strconv.Itoa(r.Step)
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, ",")
	}
	s := fmt.Sprintf("cron %q (minute hour day-of-month month day-of-week)", strings.Join([]string{
		field(c.Minute, 0, 59, "0"), field(c.Hour, 0, 23, "0"), field(c.DayOfMonth, 1, 31, "*"), field(c.Month, 1, 12, "*"), field(c.DayOfWeek, 0, 6, "*"),
	}, " "))
	if sec := field(c.Second, 0, 59, "0"); sec != "0" {
		s += ", second " + sec
	}
	if len(c.Year) > 0 {
		s += ", year " + field(c.Year, 0, 9999, "*")
	}
	if c.Comment != "" {
		s += " — " + c.Comment
	}
	return s
}

// discrepancies writes a count of discrepancies.
func discrepancies(n int) string {
	if n == 1 {
		return "1 discrepancy"
	}
	return strconv.Itoa(n) + " discrepancies"
}

func newReconcileCommand() *cobra.Command {
	var (
		runFlags stackFlags
		cycle    string
		wait     bool
		force    bool
		interval time.Duration
		deadline time.Duration
	)
	cmd := &cobra.Command{
		Use:   "reconcile --cycle yyyy-MM [--wait]",
		Short: "Reconcile one past billing cycle with KooDrive by hand",
		Long: `Starts the reconciliation workflow reconcile/<cycle>: build the statement from the registry,
upload it to KooDrive (not again if the same statement was uploaded before), wait for KooDrive's
check, store every discrepancy and write the discrepancy report. The cycle must be over.

A cycle whose reconciliation completed is not run again: the command names the finished run
(workflow, when, batch, report) and exits non-zero; --force builds, uploads and checks the
statement again (an unchanged statement reuses KooDrive's batch). A reconciliation that is
still running is reported, never started a second time (--wait waits for it). A failed run
may simply be started again. Every run keeps its own statement and report, in
<data-dir>/reconciliation/<cycle>/<run ID>/: ` + "`kooflow reconcile list`" + ` lists the runs and their
files, ` + "`kooflow reconcile show`" + ` shows one cycle.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cycle == "" {
				return errors.New("--cycle yyyy-MM is required")
			}
			if err := contract.CheckPastCycle(cycle, time.Now().UTC()); err != nil {
				return err
			}
			ctx := cmd.Context()
			// The store remembers completed runs past Temporal's retention.
			stack, err := runFlags.open(ctx)
			if err != nil {
				return err
			}
			defer stack.Close()
			in := contract.ReconciliationInput{Cycle: cycle, PollInterval: interval, PollDeadline: deadline}
			out := cmd.OutOrStdout()
			run, err := stack.operator().Reconcile(ctx, in, force)
			var running *starter.ReconciliationRunningError
			switch {
			case errors.As(err, &running):
				fmt.Fprintf(out, "%s is already running (run %s, started %s); not started again\n",
					running.WorkflowID, running.RunID, running.Started.UTC().Format(time.RFC3339))
				c, dialErr := stack.dial(ctx)
				if dialErr != nil {
					return dialErr
				}
				run = c.GetWorkflow(ctx, running.WorkflowID, running.RunID)
			case err != nil:
				return err
			case force:
				fmt.Fprintf(out, "started %s (run %s) again (--force)\n", run.GetID(), run.GetRunID())
			default:
				fmt.Fprintf(out, "started %s (run %s)\n", run.GetID(), run.GetRunID())
			}
			if !wait {
				return nil
			}
			var res contract.ReconciliationResult
			if err := run.Get(ctx, &res); err != nil {
				return fmt.Errorf("reconciliation of %s failed: %w", cycle, err)
			}
			printResult(out, res)
			return nil
		},
	}
	runFlags.register(cmd)
	cmd.Flags().StringVar(&cycle, "cycle", "", "billing cycle yyyy-MM (a past month)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the result and print it")
	cmd.Flags().BoolVar(&force, "force", false, "reconcile a cycle again although its reconciliation completed")
	cmd.Flags().DurationVar(&interval, "poll-interval", workflows.DefaultPollInterval, "how often to ask KooDrive whether its check is done")
	cmd.Flags().DurationVar(&deadline, "poll-deadline", workflows.DefaultPollDeadline, "how long to wait for KooDrive's check before failing")

	var showSF storeFlags
	show := &cobra.Command{
		Use:   "show [--cycle yyyy-MM]",
		Short: "Show a cycle's reconciliation (the latest cycle without --cycle): state, batch number, discrepancies per diffType, files, earlier runs",
		Long: `Shows the latest run of a billing cycle's reconciliation — state, when it started and finished,
KooDrive's batch number, the statement's rows, the discrepancies per diffType, the paths of
the statement and the report — and the cycle's earlier runs with their files. Without
--cycle, the latest billing cycle that was reconciled. ` + "`kooflow reconcile list`" + ` lists every
cycle's runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := showSF.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			var run store.ReconciliationRun
			if cycle == "" {
				run, err = st.LatestRun(cmd.Context())
				if errors.Is(err, store.ErrNotFound) {
					return errors.New("no billing cycle has been reconciled yet (start one with `kooflow reconcile --cycle yyyy-MM`)")
				}
			} else {
				run, err = st.Run(cmd.Context(), cycle)
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("billing cycle %s has not been reconciled (start it with `kooflow reconcile --cycle %s`)", cycle, cycle)
				}
			}
			if err != nil {
				return err
			}
			runs, err := st.Runs(cmd.Context(), store.RunFilter{Cycle: run.Cycle, Limit: earlierRunsShown + 1})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			printRun(out, run)
			printEarlierRuns(out, run, runs)
			return nil
		},
	}
	show.Flags().StringVar(&cycle, "cycle", "", "billing cycle yyyy-MM (default: the latest cycle reconciled)")
	showSF.register(show)
	cmd.AddCommand(show, newReconcileListCommand())
	return cmd
}

// earlierRunsShown is how many of a cycle's earlier runs `reconcile show` lists.
const earlierRunsShown = 10

// printEarlierRuns writes the cycle's runs other than the one shown, newest first.
func printEarlierRuns(out io.Writer, shown store.ReconciliationRun, runs []store.ReconciliationRun) {
	var earlier []store.ReconciliationRun
	for _, r := range runs {
		if r.ID != shown.ID {
			earlier = append(earlier, r)
		}
	}
	if len(earlier) == 0 {
		return
	}
	fmt.Fprintf(out, "  earlier runs of %s (newest first; all in `kooflow reconcile list`):\n", shown.Cycle)
	for i, r := range earlier {
		if i == earlierRunsShown {
			fmt.Fprintf(out, "    … more in `kooflow reconcile list --cycle %s`\n", shown.Cycle)
			break
		}
		fmt.Fprintf(out, "    %s  %s  batch %s  statement %s  report %s\n", formatWhen(r.CreatedAt), r.State, dash(r.BatchNo), dash(r.StatementPath), dash(r.ReportPath))
	}
}

func printResult(out io.Writer, r contract.ReconciliationResult) {
	printRun(out, store.ReconciliationRun{Cycle: r.Cycle, State: store.RunCompleted, BatchNo: r.BatchNo, StatementPath: r.StatementPath,
		StatementRows: r.StatementRows, ReportPath: r.ReportPath, Counts: r.Counts})
}

func printRun(out io.Writer, r store.ReconciliationRun) {
	if r.UpdatedAt.IsZero() {
		fmt.Fprintf(out, "billing cycle %s: %s\n", r.Cycle, r.State)
	} else {
		fmt.Fprintf(out, "billing cycle %s: %s (as of %s)\n", r.Cycle, r.State, r.UpdatedAt.UTC().Format(time.RFC3339))
	}
	if r.WorkflowID != "" {
		fmt.Fprintf(out, "  workflow:  %s\n", r.WorkflowID)
	}
	if r.RunID != "" {
		fmt.Fprintf(out, "  run:       %s\n", r.RunID)
	}
	if !r.CreatedAt.IsZero() {
		fmt.Fprintf(out, "  started:   %s\n", formatWhen(r.CreatedAt))
	}
	if !r.FinishedAt.IsZero() {
		fmt.Fprintf(out, "  finished:  %s\n", formatWhen(r.FinishedAt))
	}
	if r.StatementPath != "" {
		fmt.Fprintf(out, "  statement: %s (%d rows)\n", r.StatementPath, r.StatementRows)
	}
	if r.BatchNo != "" {
		fmt.Fprintf(out, "  batch:     %s\n", r.BatchNo)
	}
	if r.ReportPath != "" {
		fmt.Fprintf(out, "  report:    %s\n", r.ReportPath)
	}
	if r.Counts != nil {
		types := make([]string, 0, len(r.Counts))
		total := 0
		for t, n := range r.Counts {
			types = append(types, t)
			total += n
		}
		sort.Strings(types)
		fmt.Fprintf(out, "  discrepancies: %d\n", total)
		for _, t := range types {
			meaning := statement.DiffTypeMeanings[t]
			if meaning == "" {
				meaning = "not documented by KooDrive"
			}
			fmt.Fprintf(out, "    diffType %s: %d  (%s)\n", t, r.Counts[t], meaning)
		}
	}
	if r.Error != "" {
		fmt.Fprintf(out, "  error:     %s\n", r.Error)
	}
}
