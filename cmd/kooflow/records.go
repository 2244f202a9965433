package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/store"
)

// recordFormats are the values of -o for the delivery log and the audit log.
var recordFormats = []string{"table", "json"}

// timeRange reads --since and --until: a duration back from now (24h, 7d) or a date or
// time (2026-11-30, 2026-11-30T08:00:00Z).
type timeRange struct{ since, until string }

func (r *timeRange) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&r.since, "since", "", "from this time: a duration back from now (90m, 24h, 7d) or a date/time (2026-11-30, 2026-11-30T08:00:00Z)")
	cmd.Flags().StringVar(&r.until, "until", "", "before this time (same forms as --since)")
}

func (r *timeRange) parse(now time.Time) (since, until time.Time, err error) {
	if since, err = parseWhen(r.since, now); err != nil {
		return since, until, fmt.Errorf("--since: %w", err)
	}
	if until, err = parseWhen(r.until, now); err != nil {
		return since, until, fmt.Errorf("--until: %w", err)
	}
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		return since, until, fmt.Errorf("--since %s is not before --until %s", r.since, r.until)
	}
	return since, until, nil
}

// parseWhen reads a time as timeRange describes it; "" is the zero time.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if d, err := time.ParseDuration(days + "h"); err == nil {
			return now.Add(-24 * d), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither a duration (24h, 7d) nor a date/time (2026-11-30, 2026-11-30T08:00:00Z)", s)
}

// checkChoice refuses a value that is not one of allowed (empty is no filter).
func checkChoice(flag, value string, allowed []string) error {
	if value != "" && !slices.Contains(allowed, value) {
		return fmt.Errorf("unknown %s %q: it is one of %s", flag, value, strings.Join(allowed, ", "))
	}
	return nil
}

// newDeliveriesCommand is kooflow deliveries: the delivery log, every inbound call and
// what kooflow made of it.
func newDeliveriesCommand() *cobra.Command {
	var (
		sf      storeFlags
		f       store.DeliveryFilter
		subject string
		when    timeRange
		output  string
	)
	cmd := &cobra.Command{
		Use:   "deliveries",
		Short: "List the delivery log: every KooGallery and SmartHub call and what kooflow made of it",
		Long: `Every call KooGallery or SmartHub made to the webhook, newest first, with its outcome:
  accepted     the call did what it asked (an expiry queued, an instance provisioned, renewed, ...)
  duplicate    an expiry already accepted; nothing new was queued
  ignored      acknowledged; the rule named in REASON says it changes nothing
  conflict     an expiry that contradicts the registry, held for an operator (kooflow status)
  unmatched    a SmartHub expiry for a SIM package not in the registry (kooflow replay)
  refused      answered with an error; REASON is auth, malformed, unknown-instance, released,
               oversize or not-ready
  unavailable  kooflow's store did not answer; the sender retries
The request is kept as received, without its credentials. Rows older than the retention
(KOOFLOW_RECORD_RETENTION) are pruned by the webhook.`,
		Example: `  kooflow deliveries --outcome refused --since 24h
  kooflow deliveries --subject inst-0042 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkChoice("-o", output, recordFormats); err != nil {
				return err
			}
			if err := checkChoice("--outcome", f.Outcome, store.DeliveryOutcomes); err != nil {
				return err
			}
			if err := checkChoice("--source", f.Source, []string{"koogallery", "smarthub"}); err != nil {
				return err
			}
			var err error
			if f.Since, f.Until, err = when.parse(time.Now()); err != nil {
				return err
			}
			if subject != "" {
				f.Subjects = []string{subject}
			}
			st, err := sf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			ds, err := st.Deliveries(cmd.Context(), f)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), deliveriesJSON(ds))
			}
			printDeliveries(cmd.OutOrStdout(), ds)
			return nil
		},
	}
	sf.register(cmd)
	when.register(cmd)
	cmd.Flags().StringVar(&f.Source, "source", "", "only koogallery or smarthub")
	cmd.Flags().StringVar(&f.Outcome, "outcome", "", "only this outcome: "+strings.Join(store.DeliveryOutcomes, ", "))
	cmd.Flags().StringVar(&subject, "subject", "", "only calls about this instance ID or gIccid/packageCode")
	cmd.Flags().IntVar(&f.Limit, "limit", 50, "at most this many rows, newest first")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json (json: the request as received too)")
	return cmd
}

// deliveryJSON is one delivery for scripts.
type deliveryJSON struct {
	ID         int64     `json:"id"`
	ReceivedAt time.Time `json:"receivedAt"`
	Source     string    `json:"source"`
	Activity   string    `json:"activity"`
	Subject    string    `json:"subject"`
	Outcome    string    `json:"outcome"`
	Reason     string    `json:"reason,omitempty"`
	Answer     string    `json:"answer"`
	Detail     string    `json:"detail"`
	WorkflowID string    `json:"workflowId,omitempty"`
	Request    string    `json:"request"`
}

func deliveriesJSON(ds []store.Delivery) []deliveryJSON {
	out := make([]deliveryJSON, 0, len(ds))
	for _, d := range ds {
		out = append(out, deliveryJSON{ID: d.ID, ReceivedAt: d.ReceivedAt, Source: d.Source, Activity: d.Activity, Subject: d.Subject,
			Outcome: d.Outcome, Reason: d.Reason, Answer: d.Answer, Detail: d.Detail, WorkflowID: d.WorkflowID, Request: d.Request})
	}
	return out
}

// printDeliveries writes the delivery log as a table.
func printDeliveries(out io.Writer, ds []store.Delivery) {
	if len(ds) == 0 {
		fmt.Fprintln(out, "no deliveries match")
		return
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RECEIVED\tSOURCE\tACTIVITY\tSUBJECT\tOUTCOME\tREASON\tANSWER\tDETAIL")
	for _, d := range ds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ReceivedAt.UTC().Format(time.RFC3339), d.Source, dash(d.Activity),
			dash(d.Subject), d.Outcome, dash(d.Reason), d.Answer, truncateText(d.Detail, 80))
	}
	tw.Flush()
}

// newAuditCommand is kooflow audit: who did what to which expiry, and how it ended.
func newAuditCommand() *cobra.Command {
	var (
		sf      storeFlags
		f       store.AuditFilter
		subject string
		when    timeRange
		output  string
	)
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "List the audit log: every operator action, who ran it, from where, and its result",
		Long: `Every operator action — retry, expire, replay, reconcile, schedule apply, registry import —
whichever door it came through (the CLI, the console), newest first: when, who (the
operating-system user, or the console's signed-in operator), from which host, the arguments,
the expirations or other subjects it touched, and whether it succeeded. The log is append-only;
entries older than the retention (KOOFLOW_RECORD_RETENTION) are pruned by the webhook.`,
		Example: `  kooflow audit --subject inst-0042
  kooflow audit --actor alice --since 7d -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkChoice("-o", output, recordFormats); err != nil {
				return err
			}
			if err := checkChoice("--result", f.Result, []string{store.AuditOK, store.AuditFailed}); err != nil {
				return err
			}
			var err error
			if f.Since, f.Until, err = when.parse(time.Now()); err != nil {
				return err
			}
			if subject != "" {
				f.Subjects = []string{subject}
			}
			st, err := sf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			entries, err := st.AuditEntries(cmd.Context(), f)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), auditJSON(entries))
			}
			printAudit(cmd.OutOrStdout(), entries)
			return nil
		},
	}
	sf.register(cmd)
	when.register(cmd)
	cmd.Flags().StringVar(&f.Actor, "actor", "", "only actions of this person")
	cmd.Flags().StringVar(&f.Action, "action", "", `only this action, e.g. retry, expire, "registry import"`)
	cmd.Flags().StringVar(&f.Result, "result", "", "only ok or failed actions")
	cmd.Flags().StringVar(&subject, "subject", "", "only actions on this instance, workflow ID, SIM package, event or cycle")
	cmd.Flags().IntVar(&f.Limit, "limit", 50, "at most this many entries, newest first")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

// auditEntryJSON is one audit entry for scripts.
type auditEntryJSON struct {
	ID       int64     `json:"id"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
	Via      string    `json:"via"`
	Host     string    `json:"host"`
	Action   string    `json:"action"`
	Args     string    `json:"args"`
	Subjects []string  `json:"subjects"`
	Result   string    `json:"result"`
	Detail   string    `json:"detail"`
}

func auditJSON(entries []store.AuditEntry) []auditEntryJSON {
	out := make([]auditEntryJSON, 0, len(entries))
	for _, e := range entries {
		subjects := e.Subjects
		if subjects == nil {
			subjects = []string{}
		}
		out = append(out, auditEntryJSON{ID: e.ID, At: e.At, Actor: e.Actor, Via: e.Via, Host: e.Host, Action: e.Action, Args: e.Args,
			Subjects: subjects, Result: e.Result, Detail: e.Detail})
	}
	return out
}

// printAudit writes audit entries as a table.
func printAudit(out io.Writer, entries []store.AuditEntry) {
	if len(entries) == 0 {
		fmt.Fprintln(out, "no operator actions match")
		return
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WHEN\tWHO\tVIA\tHOST\tACTION\tARGS\tRESULT\tSUBJECTS\tDETAIL")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.At.UTC().Format(time.RFC3339), e.Actor, e.Via, dash(e.Host),
			e.Action, dash(e.Args), e.Result, truncateText(strings.Join(e.Subjects, " "), 60), truncateText(e.Detail, 80))
	}
	tw.Flush()
}

// dash shows an empty cell as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
