package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/store"
)

// newStatusCommand is kooflow status: where expirations stand, the intake queue, and one
// subscription's registry entry and history.
func newStatusCommand() *cobra.Command {
	var (
		sf        storeFlags
		state     string
		limit     int
		unmatched bool
	)
	cmd := &cobra.Command{
		Use:   "status [instanceId|gIccid/packageCode]",
		Short: "List expirations and where each stands (filter with --state)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			out := cmd.OutOrStdout()
			if unmatched {
				events, err := st.SmartHubEvents(ctx, store.EventUnmatched, limit)
				if err != nil {
					return err
				}
				printUnmatched(out, events)
				return nil
			}
			if state != "" && !slices.Contains(store.States, state) {
				return fmt.Errorf("unknown state %q: --state is one of %s", state, strings.Join(store.States, ", "))
			}
			filter := store.ExpirationFilter{State: state, Limit: limit}
			if len(args) == 1 {
				filter.Subject = args[0]
				known, err := printSubscription(ctx, out, st, args[0])
				if err != nil {
					return err
				}
				if !known {
					if err := requireTrace(ctx, st, args[0]); err != nil {
						return err
					}
				}
			}
			exps, err := st.Expirations(ctx, filter)
			if err != nil {
				return err
			}
			counts, err := st.CountExpirations(ctx)
			if err != nil {
				return err
			}
			printExpirations(out, exps, counts)
			return printQueue(ctx, out, st, filter.Subject)
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&state, "state", "", "only this state: "+strings.Join(store.States, ", "))
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many rows")
	cmd.Flags().BoolVar(&unmatched, "unmatched", false, "list SmartHub expiries whose SIM/package is not in the registry")
	return cmd
}

// requireTrace fails for a subject neither in the registry nor with any expiration or
// queued intent: most likely a mistyped instance ID, which must not print empty tables.
func requireTrace(ctx context.Context, st *store.Store, subject string) error {
	exps, err := st.Expirations(ctx, store.ExpirationFilter{Subject: subject, Limit: 1})
	if err != nil {
		return err
	}
	pending, err := st.PendingIntents(ctx, subject, 1)
	if err != nil {
		return err
	}
	if len(exps) == 0 && len(pending) == 0 {
		return fmt.Errorf("%s is not in the registry and has no expirations: check the instance ID (or gIccid/packageCode) and --data-dir", subject)
	}
	return nil
}

// printSubscription shows the registry entry named by an instance ID or by
// gIccid/packageCode, with its history, and reports whether the registry knows it.
func printSubscription(ctx context.Context, out io.Writer, st *store.Store, subject string) (bool, error) {
	var sub store.Subscription
	var err error
	if iccid, pkg, isSIM := strings.Cut(subject, "/"); isSIM {
		sub, err = st.SubscriptionBySIM(ctx, iccid, pkg)
	} else {
		sub, err = st.SubscriptionByInstance(ctx, subject)
	}
	if errors.Is(err, store.ErrNotFound) {
		fmt.Fprintf(out, "%s is not in the registry\n\n", subject)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	fmt.Fprintf(out, "%s: status %s, carrierUserId %s, packageId %s, expires %s, frozen for %q\n",
		subject, sub.Status, sub.CarrierUserID, sub.PackageID, formatWhen(sub.ExpireTime), sub.FrozenPeriod)
	events, err := st.Events(ctx, sub.ID)
	if err != nil {
		return true, err
	}
	for _, e := range events {
		fmt.Fprintf(out, "  %s  %-9s %s\n", e.At.Format(time.RFC3339), e.Event, e.Detail)
	}
	fmt.Fprintln(out)
	return true, nil
}

func printExpirations(out io.Writer, exps []store.Expiration, counts store.ExpirationCounts) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKFLOW ID\tSTATE\tATTEMPTS\tUSER\tPACKAGE\tUPDATED\tLAST ERROR")
	for _, e := range exps {
		state := e.State
		if e.Test {
			state += " (test)"
		}
		// A stalled row's error is why an operator is looking: it is shown whole. Other
		// rows' errors are history (a retry that later succeeded) and kept short.
		lastError := e.LastError
		if e.State != store.StateStalled {
			lastError = truncateText(lastError, 160)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", e.WorkflowID, state, e.Attempts, e.CarrierUserID, e.PackageID,
			e.UpdatedAt.Format(time.RFC3339), lastError)
	}
	tw.Flush()
	var parts, tests []string
	for _, s := range store.States {
		parts = append(parts, fmt.Sprintf("%s %d", s, counts.Live[s]))
		if n := counts.Test[s]; n > 0 {
			tests = append(tests, fmt.Sprintf("%s %d", s, n))
		}
	}
	fmt.Fprintf(out, "\nall expirations: %s\n", strings.Join(parts, ", "))
	if len(tests) > 0 {
		fmt.Fprintf(out, "test rehearsals (testFlag=1; nothing frozen, KooDrive not told; not counted above): %s\n", strings.Join(tests, ", "))
	}
	if counts.Live[store.StateStalled]+counts.Test[store.StateStalled] > 0 {
		fmt.Fprintln(out, "stalled expirations wait for an operator: fix the cause, then `kooflow retry <instanceId|workflowId>` or `kooflow retry --all-stalled`")
	}
}

// printQueue shows what the intake accepted and Temporal has not been handed yet: the
// total and the oldest, or for one subject each queued intent.
func printQueue(ctx context.Context, out io.Writer, st *store.Store, subject string) error {
	pending, err := st.PendingIntents(ctx, subject, 20)
	if err != nil {
		return err
	}
	if subject == "" {
		b, err := st.Backlog(ctx)
		if err != nil {
			return err
		}
		if b.Pending == 0 {
			fmt.Fprintln(out, "queued for Temporal: none")
			return nil
		}
		fmt.Fprintf(out, "queued for Temporal: %d, the oldest accepted %s ago (the relay starts them as soon as Temporal takes them)\n",
			b.Pending, time.Since(b.Oldest).Round(time.Second))
	} else if len(pending) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "QUEUED\tWORKFLOW ID\tSUBJECT\tACCEPTED\tTRIES\tLAST ERROR")
	for _, in := range pending {
		target := in.WorkflowID
		if in.Kind == store.IntentStop {
			target = "(stop open expirations)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", in.Kind, target, in.Subject, in.CreatedAt.Format(time.RFC3339), in.Attempts, in.LastError)
	}
	return tw.Flush()
}

func formatWhen(t time.Time) string {
	if t.IsZero() {
		return "(unknown)"
	}
	return t.Format(time.RFC3339)
}

// truncateText cuts s to n characters (runes, never inside a UTF-8 character) and marks
// the cut with an ellipsis.
func truncateText(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
