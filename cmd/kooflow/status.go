package main

import (
	"context"
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
		tf        temporalFlags
		state     string
		limit     int
		unmatched bool
		output    string
		wide      bool
	)
	cmd := &cobra.Command{
		Use:   "status [identifier]",
		Short: "List expirations and where each stands, or one subscription's by any of its identifiers (-o json for scripts)",
		Long: `Without an argument, status lists the expirations (filter with --state), every state's count and
the intake queue. Expirations that may still run are checked against Temporal (one subject:
each workflow; a list: Temporal's health); one ended in Temporal outside kooflow is recorded as
terminated, and a Temporal that does not answer within 3 s is said above the tables.

With an identifier it finds the subscriptions it names, as any of: a KooGallery instance ID, a
workflow ID (expire/koogallery/<instance>/<period>, expire/smarthub/sub<id>/<period>), a carrier user
id, an order id or carrier order id, a bare ICCID (every package of the SIM) or ICCID/packageCode,
and says which kind matched. One subscription: its registry entry and history, expirations, queued
intents, deliveries, operator actions and the SmartHub pushes waiting unmatched for its SIM. Several
(a carrier user's packages, a SIM's): one line each, to narrow down with kooflow status <instanceId>
or <gIccid/packageCode>. A SIM only SmartHub's unmatched pushes know: those pushes.`,
		Args: cobra.MaximumNArgs(1),
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
			rep.Live = checkAgainstTemporal(ctx, &tf, st, &rep)
			if output == "json" {
				return writeJSON(out, rep.json())
			}
			return printStatus(out, rep, wide)
		},
	}
	sf.register(cmd)
	tf.register(cmd, &sf.dataDir)
	cmd.Flags().StringVar(&state, "state", "", "only this state: "+strings.Join(store.States, ", "))
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many rows (expirations, or the subscriptions an identifier names)")
	cmd.Flags().BoolVar(&unmatched, "unmatched", false, "list SmartHub expiries whose SIM/package is not in the registry")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: "+strings.Join(statusFormats, ", ")+" (json: every fact of the table, no error cut)")
	cmd.Flags().BoolVar(&wide, "wide", false, "cut no column of the table (every last error shown whole)")
	return cmd
}

// statusReport is what status shows, read from the store once for either format.
type statusReport struct {
	// Query is the identifier status was asked about, "" for every expiration.
	Query string
	// Matches are the subscriptions Query names, with the kind of identifier that
	// matched; MoreMatches is set when it names more than are listed. With several,
	// status lists them and reads nothing else about any.
	Matches     []subjectMatch
	MoreMatches bool
	// Subject is the instance ID or gIccid/packageCode shown: the one subscription's
	// subject, or Query when the registry does not know it; "" for every expiration and
	// for a list of several matches.
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
	// Unmatched are the SmartHub pushes waiting, unmatched, for the SIMs of the matches
	// or for Query read as a SIM (gIccid/packageCode, or a bare gIccid), newest first.
	Unmatched []store.SmartHubEvent
	// Live is what Temporal said about the open expirations shown.
	Live liveCheck
}

// listsMatches reports whether status lists several subscriptions instead of showing one.
func (rep statusReport) listsMatches() bool { return len(rep.Matches) > 1 || rep.MoreMatches }

// subjectMatch is one subscription an identifier names, with its last expirations.
type subjectMatch struct {
	store.Match
	// Expirations are the subscription's newest (at most matchExpirationLimit), of
	// every subject it has (its instance and its SIM).
	Expirations []store.Expiration
	// MoreExpirations is set when it has more than are listed.
	MoreExpirations bool
}

// subjectRecordLimit is how many deliveries and operator actions status shows for a subject.
const subjectRecordLimit = 20

// matchExpirationLimit is how many expirations a listed match shows.
const matchExpirationLimit = 5

// gatherStatus reads what status shows for filter. A named subject (filter.Subject) is
// looked up as any identifier (store.FindSubscriptions): one match is shown whole, several
// are listed. An identifier that names no subscription, no SmartHub push waiting
// unmatched, no expiration and no queued intent is an error — most likely a mistyped
// identifier or the wrong --data-dir, which must not answer with empty tables.
func gatherStatus(ctx context.Context, st *store.Store, filter store.ExpirationFilter) (statusReport, error) {
	rep := statusReport{Query: filter.Subject, Subject: filter.Subject}
	if rep.Query != "" {
		listed, err := lookUpSubject(ctx, st, &rep, filter.Limit)
		if err != nil || listed {
			return rep, err
		}
		filter.Subject = rep.Subject
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

// lookUpSubject finds what rep.Query names: the subscriptions (at most limit listed, 50
// when not positive) and the SmartHub pushes waiting unmatched for their SIMs or for
// the query itself. With one subscription it becomes rep's subject, with its history;
// with several each gets its last expirations, the global counts are read, and listed
// is true: status shows the list and nothing else. A query that names nothing known
// must at least have an expiration or a queued intent of its own (requireTrace).
func lookUpSubject(ctx context.Context, st *store.Store, rep *statusReport, limit int) (listed bool, err error) {
	if limit <= 0 {
		limit = 50
	}
	matches, err := st.FindSubscriptions(ctx, rep.Query, limit+1)
	if err != nil {
		return false, fmt.Errorf("look up %s in the registry: %w", rep.Query, err)
	}
	if len(matches) > limit {
		matches, rep.MoreMatches = matches[:limit], true
	}
	for _, m := range matches {
		sm := subjectMatch{Match: m}
		if sm.Expirations, sm.MoreExpirations, err = matchExpirations(ctx, st, m.Subscription); err != nil {
			return false, err
		}
		rep.Matches = append(rep.Matches, sm)
	}
	if rep.Unmatched, err = waitingPushes(ctx, st, rep.Query, matches); err != nil {
		return false, err
	}
	switch {
	case rep.listsMatches():
		rep.Subject = ""
		if rep.Counts, err = st.CountExpirations(ctx); err != nil {
			return true, fmt.Errorf("count expirations: %w", err)
		}
		return true, nil
	case len(matches) == 1:
		sub := matches[0].Subscription
		rep.Subject, rep.Subscription = matches[0].Subject, &sub
		if rep.History, err = st.Events(ctx, sub.ID); err != nil {
			return false, fmt.Errorf("read the history of %s: %w", rep.Subject, err)
		}
	case len(rep.Unmatched) == 0:
		return false, requireTrace(ctx, st, rep.Query)
	}
	return false, nil
}

// matchExpirations returns sub's newest expirations, of its instance and of its SIM,
// at most matchExpirationLimit, and whether it has more.
func matchExpirations(ctx context.Context, st *store.Store, sub store.Subscription) ([]store.Expiration, bool, error) {
	var all []store.Expiration
	for _, subject := range store.Subjects(sub) {
		exps, err := st.Expirations(ctx, store.ExpirationFilter{Subject: subject, Limit: matchExpirationLimit + 1})
		if err != nil {
			return nil, false, fmt.Errorf("list expirations of %s: %w", subject, err)
		}
		all = append(all, exps...)
	}
	slices.SortStableFunc(all, func(a, b store.Expiration) int { return b.UpdatedAt.Compare(a.UpdatedAt) })
	if len(all) > matchExpirationLimit {
		return all[:matchExpirationLimit], true, nil
	}
	return all, false, nil
}

// waitingPushes returns the SmartHub pushes waiting unmatched for the SIM of each match,
// and for query read as a SIM — gIccid/packageCode, or a bare gIccid for all its
// packages — newest first, each once, at most subjectRecordLimit a SIM.
func waitingPushes(ctx context.Context, st *store.Store, query string, matches []store.Match) ([]store.SmartHubEvent, error) {
	filters := []store.SmartHubEventFilter{{GIccid: query}}
	if iccid, pkg, isSIM := strings.Cut(query, "/"); isSIM {
		filters[0] = store.SmartHubEventFilter{GIccid: iccid, PackageCode: pkg}
	}
	for _, m := range matches {
		if sub := m.Subscription; sub.GIccid != "" {
			filters = append(filters, store.SmartHubEventFilter{GIccid: sub.GIccid, PackageCode: sub.PackageCode})
		}
	}
	var out []store.SmartHubEvent
	seen := map[string]bool{}
	for _, f := range filters {
		if f.GIccid == "" {
			continue
		}
		f.Status, f.Limit = store.EventUnmatched, subjectRecordLimit
		events, err := st.SmartHubEventsWhere(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("list the unmatched SmartHub pushes of %s: %w", store.SIMSubject(f.GIccid, f.PackageCode), err)
		}
		for _, e := range events {
			if !seen[e.EventID] {
				seen[e.EventID] = true
				out = append(out, e)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b store.SmartHubEvent) int { return b.ReceivedAt.Compare(a.ReceivedAt) })
	return out, nil
}

// requireTrace fails for a subject with no expiration and no queued intent, naming every
// kind of identifier status tried.
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
		var kinds []string
		for _, k := range store.MatchKinds {
			kinds = append(kinds, k.Noun())
		}
		return fmt.Errorf("%s is not in the registry and has no expirations: it is no %s kooflow knows, and no SmartHub push waits unmatched for it; check the identifier, and that --data-dir is kooflow dev's data directory (or --db/KOOFLOW_DB the database)",
			subject, strings.Join(kinds[:len(kinds)-1], ", ")+" or "+kinds[len(kinds)-1])
	}
	return nil
}
