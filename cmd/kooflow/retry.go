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
that instance), or all of them with --all-stalled.`,
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
			ids, err := starter.StalledWorkflowIDs(ctx, stack.Store, target)
			if errors.Is(err, starter.ErrNothingStalled) && target != "" {
				return fmt.Errorf("%w (see `kooflow status %s`)", err, target)
			}
			if err != nil {
				return err
			}
			c, err := stack.dial(ctx)
			if err != nil {
				return err
			}
			s := &starter.Starter{Client: c, Store: stack.Store}
			var failed int
			for _, id := range ids {
				if err := s.Retry(ctx, id); err != nil {
					failed++
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", id, err)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "retrying %s for another hour\n", id)
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d retries failed", failed, len(ids))
			}
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&all, "all-stalled", false, "retry every stalled expiration")
	return cmd
}
