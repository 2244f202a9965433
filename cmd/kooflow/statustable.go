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
// expirations, every state's count (rehearsals apart) and the intake queue. With wide,
// no column is cut.
func printStatus(out io.Writer, rep statusReport, wide bool) error {
	if rep.Subject != "" {
		printSubscription(out, rep)
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

// printSubscription shows the subject's registry entry with its history, or that the
// registry does not know it.
func printSubscription(out io.Writer, rep statusReport) {
	sub := rep.Subscription
	if sub == nil {
		fmt.Fprintf(out, "%s is not in the registry\n\n", rep.Subject)
		return
	}
	fmt.Fprintf(out, "%s: status %s, carrierUserId %s, packageId %s, expires %s, frozen for %q\n",
		rep.Subject, sub.Status, sub.CarrierUserID, sub.PackageID, formatWhen(sub.ExpireTime), sub.FrozenPeriod)
	for _, e := range rep.History {
		fmt.Fprintf(out, "  %s  %-9s %s\n", e.At.Format(time.RFC3339), e.Event, e.Detail)
	}
	fmt.Fprintln(out)
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
