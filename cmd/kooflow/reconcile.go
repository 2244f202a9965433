package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/spf13/cobra"

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
		sf      scheduleFlags
		applyTF temporalFlags
		descTF  temporalFlags
	)
	apply := &cobra.Command{
		Use:   "apply",
		Short: "Create the monthly reconciliation schedule, or update it to these settings (idempotent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := applyTF.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			created, err := starter.ApplySchedule(cmd.Context(), c, sf.config())
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
	applyTF.register(apply, nil)
	describe := &cobra.Command{
		Use:   "describe",
		Short: "Show the schedule's spec, next runs and recent runs",
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
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "schedule %s\n", starter.ScheduleID)
			if spec := d.Schedule.Spec; spec != nil {
				fmt.Fprintf(out, "  time zone: %s\n", orUTC(spec.TimeZoneName))
			}
			fmt.Fprintf(out, "  paused:   %v\n", d.Schedule.State.Paused)
			for _, t := range d.Info.NextActionTimes {
				fmt.Fprintf(out, "  next run: %s  (billing cycle %s)\n", t.UTC().Format(time.RFC3339), contract.PreviousCycle(t.UTC()))
			}
			for _, r := range d.Info.RecentActions {
				fmt.Fprintf(out, "  ran:      %s  workflow %s\n", r.ScheduleTime.UTC().Format(time.RFC3339), r.StartWorkflowResult.WorkflowID)
			}
			return nil
		},
	}
	descTF.register(describe, nil)
	cmd.AddCommand(apply, describe)
	return cmd
}

func orUTC(tz string) string {
	if tz == "" {
		return "UTC"
	}
	return tz
}

func newReconcileCommand() *cobra.Command {
	var (
		sf       storeFlags
		tf       temporalFlags
		cycle    string
		wait     bool
		interval time.Duration
		deadline time.Duration
	)
	cmd := &cobra.Command{
		Use:   "reconcile --cycle yyyy-MM [--wait]",
		Short: "Reconcile one past billing cycle with KooDrive by hand",
		Long: `Starts the reconciliation workflow reconcile/<cycle>: build the statement from the registry,
upload it to KooDrive (not again if the same statement was uploaded before), wait for KooDrive's
check, store every discrepancy and write the discrepancy report. The cycle must be over.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cycle == "" {
				return errors.New("--cycle yyyy-MM is required")
			}
			if err := contract.CheckPastCycle(cycle, time.Now().UTC()); err != nil {
				return err
			}
			ctx := cmd.Context()
			c, err := tf.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			run, err := (&starter.Starter{Client: c}).StartReconciliation(ctx, contract.ReconciliationInput{Cycle: cycle, PollInterval: interval, PollDeadline: deadline})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "started %s\n", run.GetID())
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
	tf.register(cmd, nil)
	cmd.Flags().StringVar(&cycle, "cycle", "", "billing cycle yyyy-MM (a past month)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the result and print it")
	cmd.Flags().DurationVar(&interval, "poll-interval", workflows.DefaultPollInterval, "how often to ask KooDrive whether its check is done")
	cmd.Flags().DurationVar(&deadline, "poll-deadline", workflows.DefaultPollDeadline, "how long to wait for KooDrive's check before failing")

	show := &cobra.Command{
		Use:   "show --cycle yyyy-MM",
		Short: "Show a cycle's reconciliation: state, batch number, discrepancies per diffType, files",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cycle == "" {
				return errors.New("--cycle yyyy-MM is required")
			}
			st, err := sf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			run, err := st.Run(cmd.Context(), cycle)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("billing cycle %s has not been reconciled (start it with `kooflow reconcile --cycle %s`)", cycle, cycle)
			}
			if err != nil {
				return err
			}
			printRun(cmd.OutOrStdout(), run)
			return nil
		},
	}
	show.Flags().StringVar(&cycle, "cycle", "", "billing cycle yyyy-MM")
	sf.register(show)
	cmd.AddCommand(show)
	return cmd
}

func printResult(out io.Writer, r contract.ReconciliationResult) {
	printRun(out, store.ReconciliationRun{Cycle: r.Cycle, State: store.RunCompleted, BatchNo: r.BatchNo, StatementPath: r.StatementPath,
		StatementRows: r.StatementRows, ReportPath: r.ReportPath, Counts: r.Counts})
}

func printRun(out io.Writer, r store.ReconciliationRun) {
	fmt.Fprintf(out, "billing cycle %s: %s\n", r.Cycle, r.State)
	if r.WorkflowID != "" {
		fmt.Fprintf(out, "  workflow:  %s\n", r.WorkflowID)
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
