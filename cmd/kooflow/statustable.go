package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kooflow/kooflow/store"
)

// historyErrorWidth is how many characters of a settled expiration's last error the table
// shows without --wide.
const historyErrorWidth = 160

// printStatus writes rep as status's tables: the subject's registry entry and history, the
// SmartHub pushes waiting for it, the expirations, every state's count (rehearsals apart)
// and the intake queue; or, when the identifier names several subscriptions, one line
// each. With wide, no column is cut.
func printStatus(out io.Writer, rep statusReport, wide bool) error {
	for _, line := range rep.Live.notes() {
		fmt.Fprintln(out, line)
	}
	if rep.listsMatches() {
		return printMatches(out, rep)
	}
	if rep.Subject != "" {
		printSubscription(out, rep)
		printWaitingPushes(out, rep)
	}
	printExpirations(out, rep.Expirations, rep.Counts, wide)
	if err := printQueue(out, rep); err != nil {
		return err
	}
	if rep.Subject != "" {
		fmt.Fprintf(out, "\nDeliveries about %s (newest first; kooflow deliveries --subject %s for more):\n", rep.Subject, rep.Subject)
		printDeliveries(out, rep.Deliveries)
		fmt.Fprintf(out, "\nOperator actions on %s (newest first; kooflow audit --subject %s for more):\n", rep.Subject, rep.Subject)
		printAudit(out, rep.Actions)
	}
	return nil
}

// printSubscription shows which kind of identifier matched, then the subject's registry
// entry with its history, or that the registry does not know it.
func printSubscription(out io.Writer, rep statusReport) {
	sub := rep.Subscription
	if sub == nil {
		fmt.Fprintf(out, "%s is not in the registry\n\n", rep.Subject)
		return
	}
	if len(rep.Matches) == 1 {
		fmt.Fprintf(out, "%s matched: %s %s\n", rep.Subject, rep.Matches[0].Kind.Noun(), rep.Query)
	}
	fmt.Fprintf(out, "%s: status %s, carrierUserId %s, packageId %s, expires %s, frozen for %q\n",
		rep.Subject, sub.Status, sub.CarrierUserID, sub.PackageID, formatWhen(sub.ExpireTime), sub.FrozenPeriod)
	for _, e := range rep.History {
		fmt.Fprintf(out, "  %s  %-9s %s\n", e.At.Format(time.RFC3339), e.Event, e.Detail)
	}
	fmt.Fprintln(out)
}

// printWaitingPushes shows the SmartHub pushes waiting unmatched for the subject, with
// what to do: replay them (after importing the SIM when the registry still lacks it).
func printWaitingPushes(out io.Writer, rep statusReport) {
	if len(rep.Unmatched) == 0 {
		return
	}
	fmt.Fprintf(out, "SmartHub pushes waiting unmatched (their SIM package was not in the registry when they came):\n")
	printPushTable(out, rep.Unmatched)
	if rep.Subscription == nil {
		fmt.Fprintln(out, "import the SIM package (`kooflow registry import FILE` with gIccid and packageCode), then replay each: `kooflow replay <eventId>`")
	} else {
		fmt.Fprintln(out, "replay each: `kooflow replay <eventId>`")
	}
	fmt.Fprintln(out)
}

// printPushTable writes SmartHub pushes, one a line.
func printPushTable(out io.Writer, events []store.SmartHubEvent) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT ID\tRECEIVED\tGICCID\tPACKAGE\tVALID THRU")
	for _, e := range events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.EventID, e.ReceivedAt.Format(time.RFC3339), e.GIccid, e.PackageCode, formatWhen(e.ValidThru))
	}
	tw.Flush()
}

// printMatches lists the subscriptions an identifier names, one a line — subject, the
// kind that matched, status, expiry, carrier user, package and the expirations' states —
// then the pushes waiting for their SIMs, and says how to narrow down.
func printMatches(out io.Writer, rep statusReport) error {
	kinds := map[store.MatchKind]bool{}
	for _, m := range rep.Matches {
		kinds[m.Kind] = true
	}
	count := fmt.Sprint(len(rep.Matches))
	if rep.MoreMatches {
		count = "more than " + count
	}
	if len(kinds) == 1 {
		fmt.Fprintf(out, "%s subscriptions matched: %s %s\n", count, rep.Matches[0].Kind.Noun(), rep.Query)
	} else {
		fmt.Fprintf(out, "%s subscriptions matched %s (see MATCHED)\n", count, rep.Query)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SUBJECT\tMATCHED\tSTATUS\tEXPIRES\tCARRIER USER\tPACKAGE\tEXPIRATIONS (newest first)")
	for _, m := range rep.Matches {
		sub := m.Subscription
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Subject, m.Kind.Noun(), sub.Status, formatWhen(sub.ExpireTime),
			sub.CarrierUserID, sub.PackageID, expirationStates(m))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if rep.MoreMatches {
		fmt.Fprintf(out, "only the first %d are listed: --limit N lists more\n", len(rep.Matches))
	}
	if len(rep.Unmatched) > 0 {
		fmt.Fprintln(out, "\nSmartHub pushes waiting unmatched (their SIM package was not in the registry when they came):")
		printPushTable(out, rep.Unmatched)
		fmt.Fprintln(out, "import any SIM package still missing, then replay each: `kooflow replay <eventId>`")
	}
	fmt.Fprintln(out, "\nnarrow it down to one: `kooflow status <instanceId>` or `kooflow status <gIccid/packageCode>` (the SUBJECT column)")
	return nil
}

// expirationStates lists a match's expirations by state, newest first, rehearsals
// marked: "stalled, reserved (test)"; "none" when there is none.
func expirationStates(m subjectMatch) string {
	if len(m.Expirations) == 0 {
		return "none"
	}
	var states []string
	for _, e := range m.Expirations {
		state := e.State
		if e.Test {
			state += " (test)"
		}
		states = append(states, state)
	}
	if m.MoreExpirations {
		states = append(states, "…")
	}
	return strings.Join(states, ", ")
}

// printExpirations writes the expirations' table and the counts below it.
func printExpirations(out io.Writer, exps []store.Expiration, counts store.ExpirationCounts, wide bool) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKFLOW ID\tSTATE\tATTEMPTS\tUSER\tPACKAGE\tUPDATED\tLAST ERROR")
	for _, e := range exps {
		state := e.State
		if e.Test {
			state += " (test)"
		}
		// A stalled row's error, or a conflict's reason, is why an operator is looking: it
		// is shown whole. Other
		// rows' errors are history (a retry that later succeeded) and kept short.
		lastError := e.LastError
		if e.State != store.StateStalled && e.State != store.StateConflict && !wide {
			lastError = truncateText(lastError, historyErrorWidth)
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
func printQueue(out io.Writer, rep statusReport) error {
	if rep.Subject == "" {
		if rep.Backlog.Pending == 0 {
			fmt.Fprintln(out, "queued for Temporal: none")
			return nil
		}
		fmt.Fprintf(out, "queued for Temporal: %d, the oldest accepted %s ago (the relay starts them as soon as Temporal takes them)\n",
			rep.Backlog.Pending, time.Since(rep.Backlog.Oldest).Round(time.Second))
	} else if len(rep.Queued) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "QUEUED\tWORKFLOW ID\tSUBJECT\tACCEPTED\tTRIES\tLAST ERROR")
	for _, in := range rep.Queued {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", in.Kind, queueTarget(in), in.Subject, in.CreatedAt.Format(time.RFC3339), in.Attempts, in.LastError)
	}
	return tw.Flush()
}

// queueTarget names what a queued intent acts on: its workflow, or for a stop every open
// expiration of its subject.
func queueTarget(in store.Intent) string {
	if in.Kind == store.IntentStop {
		return "(stop open expirations)"
	}
	return in.WorkflowID
}

// formatWhen writes t in RFC 3339, or (unknown) for the zero time.
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
