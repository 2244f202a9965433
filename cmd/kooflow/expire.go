package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
)

// newExpireCommand is kooflow expire: an expiration accepted by hand.
func newExpireCommand() *cobra.Command {
	var (
		sf       stackFlags
		instance string
		test     bool
	)
	cmd := &cobra.Command{
		Use:   "expire --instance ID",
		Short: "Accept an expiration by hand, exactly as a KooGallery expireInstance would",
		Long: `Judges the expiry by the same rule book as the webhook (a released instance has nothing to
freeze; an instance KooGallery renewed more than an hour ahead is not expired). An expiry held as
a conflict — KooGallery reported it, the registry has the instance running longer and no renewal
explains it — is run: the operator's command is the decision the conflict waits for. It records it in the intake
queue like a delivery, and starts its workflow at once if Temporal answers. If Temporal does
not, the expiry stays queued and the relay of a running kooflow webhook (or kooflow dev)
starts it when Temporal is back.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if instance == "" {
				return errors.New("--instance is required")
			}
			ctx := cmd.Context()
			stack, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer stack.Close()
			v, acc, err := stack.operator().Expire(ctx, instance, test)
			if err != nil {
				return err
			}
			if v.Held() && !acc.Existing {
				fmt.Fprintf(cmd.OutOrStdout(), "running the expiry held as a conflict (%s)\n", v.Conflict)
			}
			return reportAcceptance(ctx, cmd.OutOrStdout(), stack, acc, v.Input.Subject)
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&instance, "instance", "", "KooGallery instance ID (must be in the registry)")
	cmd.Flags().BoolVar(&test, "test", false, "run as a test: nothing is frozen or sent to KooDrive")
	return cmd
}

// reportAcceptance tells the operator what became of an expiry accepted by hand: known
// already, started now, or queued because Temporal did not answer.
func reportAcceptance(ctx context.Context, out io.Writer, stack *stack, acc store.Acceptance, subject string) error {
	if acc.Existing {
		fmt.Fprintf(out, "already accepted: %s (state %s; nothing new queued)\n", acc.WorkflowID, acc.State)
		return nil
	}
	dialCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := stack.dial(dialCtx)
	if err == nil {
		_, err = (&starter.Relay{Store: stack.Store, Client: c, Owner: "cli"}).DeliverSubject(dialCtx, subject)
	}
	if err != nil {
		fmt.Fprintf(out, "accepted and queued: %s\nTemporal did not take it now (%v);\nthe relay of a running `kooflow webhook` or `kooflow dev` starts it when Temporal is reachable.\n", acc.WorkflowID, err)
		return nil
	}
	fmt.Fprintf(out, "started %s\n", acc.WorkflowID)
	return nil
}
