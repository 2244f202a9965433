package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/store"
)

// statusFormats are the values of status's -o, the first the default.
var statusFormats = []string{"table", "json"}

// queueListLimit is how many queued intents status lists.
const queueListLimit = 20

// newStatusCommand is kooflow status: where expirations stand, the intake queue, and one
// subscription's registry entry and history, as a table or (-o json) for scripts.
func newStatusCommand() *cobra.Command {
	var (
		sf        storeFlags
		state     string
		limit     int
		unmatched bool
		output    string
		wide      bool
	)
	cmd := &cobra.Command{
		Use:   "status [instanceId|gIccid/packageCode]",
		Short: "List expirations and where each stands (filter with --state; -o json for scripts)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(statusFormats, output) {
				return fmt.Errorf("unknown output format %q: -o is one of %s", output, strings.Join(statusFormats, ", "))
			}
			if state != "" && !slices.Contains(store.States, state) {
				return fmt.Errorf("unknown state %q: --state is one of %s", state, strings.Join(store.States, ", "))
			}
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
					return fmt.Errorf("list unmatched SmartHub events: %w", err)
				}
				if output == "json" {
					return writeJSON(out, unmatchedJSON(events))
				}
				printUnmatched(out, events)
				return nil
			}
			filter := store.ExpirationFilter{State: state, Limit: limit}
			if len(args) == 1 {
				filter.Subject = args[0]
			}
			rep, err := gatherStatus(ctx, st, filter)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(out, rep.json())
			}
			return printStatus(out, rep, wide)
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&state, "state", "", "only this state: "+strings.Join(store.States, ", "))
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many rows")
	cmd.Flags().BoolVar(&unmatched, "unmatched", false, "list SmartHub expiries whose SIM/package is not in the registry")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: "+strings.Join(statusFormats, ", ")+" (json: every fact of the table, no error cut)")
	cmd.Flags().BoolVar(&wide, "wide", false, "cut no column of the table (every last error shown whole)")
	return cmd
}

// statusReport is what status shows, read from the store once for either format.
type statusReport struct {
	// Subject is the instance ID or gIccid/packageCode asked for, "" for every expiration.
	Subject string
	// Subscription is the subject's registry entry, nil when the registry does not know it.
	Subscription *store.Subscription
	History      []store.Event
	Expirations  []store.Expiration
	Counts       store.ExpirationCounts
	// Backlog is every subject's queue; it is read only when no subject is named.
	Backlog store.IntentBacklog
	Queued  []store.Intent
	// Deliveries and Actions are the subject's last calls from KooGallery or SmartHub and
	// the operator actions on it; read only when a subject is named.
	Deliveries []store.Delivery
	Actions    []store.AuditEntry
}

// subjectRecordLimit is how many deliveries and operator actions status shows for a subject.
const subjectRecordLimit = 20

// gatherStatus reads what status shows for filter. A subject neither in the registry nor
// with any expiration or queued intent is an error: most likely a mistyped instance ID,
// which must not answer with empty tables.
func gatherStatus(ctx context.Context, st *store.Store, filter store.ExpirationFilter) (statusReport, error) {
	rep := statusReport{Subject: filter.Subject}
	if rep.Subject != "" {
		sub, err := lookUpSubject(ctx, st, rep.Subject)
		switch {
		case errors.Is(err, store.ErrNotFound):
			if err := requireTrace(ctx, st, rep.Subject); err != nil {
				return rep, err
			}
		case err != nil:
			return rep, fmt.Errorf("look up %s in the registry: %w", rep.Subject, err)
		default:
			rep.Subscription = &sub
			if rep.History, err = st.Events(ctx, sub.ID); err != nil {
				return rep, fmt.Errorf("read the history of %s: %w", rep.Subject, err)
			}
		}
	}
	var err error
	if rep.Expirations, err = st.Expirations(ctx, filter); err != nil {
		return rep, fmt.Errorf("list expirations: %w", err)
	}
	if rep.Counts, err = st.CountExpirations(ctx); err != nil {
		return rep, fmt.Errorf("count expirations: %w", err)
	}
	if rep.Queued, err = st.PendingIntents(ctx, rep.Subject, queueListLimit); err != nil {
		return rep, fmt.Errorf("list the intake queue: %w", err)
	}
	if rep.Subject == "" {
		if rep.Backlog, err = st.Backlog(ctx); err != nil {
			return rep, fmt.Errorf("measure the intake queue: %w", err)
		}
		return rep, nil
	}
	if rep.Deliveries, err = st.Deliveries(ctx, store.DeliveryFilter{Subjects: []string{rep.Subject}, Limit: subjectRecordLimit}); err != nil {
		return rep, fmt.Errorf("read the deliveries of %s: %w", rep.Subject, err)
	}
	subjects := []string{rep.Subject}
	for _, e := range rep.Expirations {
		subjects = append(subjects, e.WorkflowID)
	}
	if rep.Actions, err = st.AuditEntries(ctx, store.AuditFilter{Subjects: subjects, Limit: subjectRecordLimit}); err != nil {
		return rep, fmt.Errorf("read the operator actions on %s: %w", rep.Subject, err)
	}
	return rep, nil
}

// lookUpSubject finds the registry entry named by an instance ID or by gIccid/packageCode.
func lookUpSubject(ctx context.Context, st *store.Store, subject string) (store.Subscription, error) {
	if iccid, pkg, isSIM := strings.Cut(subject, "/"); isSIM {
		return st.SubscriptionBySIM(ctx, iccid, pkg)
	}
	return st.SubscriptionByInstance(ctx, subject)
}

// requireTrace fails for a subject with no expiration and no queued intent.
func requireTrace(ctx context.Context, st *store.Store, subject string) error {
	exps, err := st.Expirations(ctx, store.ExpirationFilter{Subject: subject, Limit: 1})
	if err != nil {
		return fmt.Errorf("list expirations of %s: %w", subject, err)
	}
	pending, err := st.PendingIntents(ctx, subject, 1)
	if err != nil {
		return fmt.Errorf("list queued intents of %s: %w", subject, err)
	}
	if len(exps) == 0 && len(pending) == 0 {
		return fmt.Errorf("%s is not in the registry and has no expirations: check the instance ID (or gIccid/packageCode) and --data-dir", subject)
	}
	return nil
}
