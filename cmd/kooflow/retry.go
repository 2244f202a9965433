package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/starter"
)

// newRetryCommand is kooflow retry: stalled expirations given another hour.
func newRetryCommand() *cobra.Command {
	var (
		sf  stackFlags
		all bool
	)
	cmd := &cobra.Command{
		Use:   "retry <instanceId|workflowId>",
		Short: "Give a stalled expiration another hour of KooDrive attempts",
		Long: `A stalled expiration has spent its hour of KooDrive attempts (or was rejected) and waits for an
operator. Fix the cause, then retry it: by workflow ID, by instance ID (every stalled expiry of
that instance), or all of them with --all-stalled.

An expiration whose workflow was terminated or cancelled in Temporal before it finished (kooflow
status shows it as terminated or cancelled) is started again under the same workflow ID when it
is named by workflow or instance ID; nothing it already froze or sent is repeated.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) == 1) {
				return errors.New("name one instance ID or workflow ID, or use --all-stalled")
			}
			ctx := cmd.Context()
			stack, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer stack.Close()
			var target string
			if !all {
				target = args[0]
			}
			results, err := stack.operator().RetryStalled(ctx, target)
			for _, r := range results {
				if r.Err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", r.WorkflowID, r.Err)
					continue
				}
				if r.Restarted {
					fmt.Fprintf(cmd.OutOrStdout(), "started %s again (it had been ended in Temporal before it finished)\n", r.WorkflowID)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "retrying %s for another hour\n", r.WorkflowID)
			}
			if errors.Is(err, starter.ErrNothingStalled) && target != "" {
				return fmt.Errorf("%w (see `kooflow status %s`)", err, target)
			}
			return err
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&all, "all-stalled", false, "retry every stalled expiration")
	return cmd
}
