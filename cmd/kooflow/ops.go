package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/koogallery"
	"github.com/kooflow/kooflow/registry"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
)

func newRegistryCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "registry", Short: "Manage the subscription registry"}
	var sf storeFlags
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Import subscriptions from a CSV or XLSX file (all rows or none)",
		Long: `Reads a CSV or XLSX file whose first row is a header (case-insensitive) with the columns
` + strings.Join(registry.Columns, ", ") + `.
A row is identified by instanceId, or by gIccid+packageCode, or by orderId; carrierUserId and
packageId are required. Existing subscriptions are updated (history "updated", naming the
changed fields), new ones inserted (history "imported"), rows equal to the registry left alone.

The file is read twice, streaming: the first pass checks every row on its own and lists every
bad one; the second stages the rows and refuses the file if rows repeat a subscription or
clash with the registry (an instanceId whose gIccid or orderId belongs to another
subscription), listing every such row. Only then is it applied, in one transaction. A refused
file writes nothing. On a terminal, a progress line shows rows/s and the time left.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := sf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			var opts registry.Options
			if f, ok := cmd.ErrOrStderr().(*os.File); ok && isTerminal(f) {
				p := newProgressLine(f)
				defer p.done()
				opts.Progress = p.show
			}
			started := time.Now()
			stats, err := registry.Import(cmd.Context(), st, args[0], opts)
			if opts.Progress != nil {
				opts.Progress(registry.Progress{})
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %s: %d inserted, %d updated, %d unchanged (%.1f s)\n",
				args[0], stats.Inserted, stats.Updated, stats.Unchanged, time.Since(started).Seconds())
			return nil
		},
	}
	sf.register(imp)
	sf.create = true
	cmd.AddCommand(imp)
	return cmd
}

// isTerminal reports whether f is a terminal (a character device).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressLine redraws one status line of a long import: phase, rows, rows/s, time left.
type progressLine struct {
	w          io.Writer
	phase      string
	phaseStart time.Time
	lastDraw   time.Time
	drawn      bool
}

func newProgressLine(w io.Writer) *progressLine { return &progressLine{w: w} }

// show draws p, at most five times a second; an empty phase clears the line.
func (l *progressLine) show(p registry.Progress) {
	now := time.Now()
	if p.Phase == "" {
		l.done()
		return
	}
	if p.Phase != l.phase {
		l.phase, l.phaseStart = p.Phase, now
	} else if now.Sub(l.lastDraw) < 200*time.Millisecond {
		return
	}
	l.lastDraw = now
	elapsed := now.Sub(l.phaseStart).Seconds()
	line := fmt.Sprintf("%-10s %10d rows", p.Phase, p.Rows)
	if p.Total > 0 {
		line = fmt.Sprintf("%-10s %10d/%d rows", p.Phase, p.Rows, p.Total)
	}
	if elapsed > 0.5 && p.Rows > 0 {
		line += fmt.Sprintf("  %8.0f rows/s", float64(p.Rows)/elapsed)
	}
	if f := p.Fraction; elapsed > 0.5 && f > 0 && f < 1 {
		line += fmt.Sprintf("  ETA %s", time.Duration(elapsed*(1-f)/f*float64(time.Second)).Round(time.Second))
	}
	fmt.Fprintf(l.w, "\r\033[K%s", line)
	l.drawn = true
}

// done ends the progress line so later output starts on a fresh line.
func (l *progressLine) done() {
	if l.drawn {
		fmt.Fprint(l.w, "\r\033[K")
		l.drawn = false
	}
}

func newExpireCommand() *cobra.Command {
	var (
		sf       storeFlags
		tf       temporalFlags
		instance string
		test     bool
	)
	cmd := &cobra.Command{
		Use:   "expire --instance ID",
		Short: "Accept an expiration by hand, exactly as a KooGallery expireInstance would",
		Long: `Judges the expiry by the same rule book as the webhook (a released instance has nothing to
freeze; an instance renewed more than an hour ahead is not expired), records it in the intake
queue like a delivery, and starts its workflow at once if Temporal answers. If Temporal does
not, the expiry stays queued and the relay of a running kooflow webhook (or kooflow dev)
starts it when Temporal is back.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if instance == "" {
				return errors.New("--instance is required")
			}
			ctx := cmd.Context()
			st, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			sub, err := st.SubscriptionByInstance(ctx, instance)
			if err != nil {
				return err
			}
			v := starter.KooGalleryExpiry(sub, test, time.Now())
			if !v.Accept {
				return fmt.Errorf("instance %s is not expired: %s", instance, v.Ignored)
			}
			acc, err := (&starter.Intake{Store: st}).AcceptExpiry(ctx, v,
				store.Delivery{Source: "operator", Activity: "expire", Subject: instance, Outcome: "accepted", Detail: "kooflow expire"}, "")
			if err != nil {
				return err
			}
			return reportAcceptance(ctx, cmd.OutOrStdout(), st, &tf, acc, v.Input.Subject)
		},
	}
	sf.register(cmd)
	tf.register(cmd, &sf.dataDir)
	cmd.Flags().StringVar(&instance, "instance", "", "KooGallery instance ID (must be in the registry)")
	cmd.Flags().BoolVar(&test, "test", false, "run as a test: nothing is frozen or sent to KooDrive")
	return cmd
}

// reportAcceptance tells the operator what became of an expiry accepted by hand: known
// already, started now, or queued because Temporal did not answer.
func reportAcceptance(ctx context.Context, out io.Writer, st *store.Store, tf *temporalFlags, acc store.Acceptance, subject string) error {
	if acc.Existing {
		fmt.Fprintf(out, "already accepted: %s (state %s; nothing new queued)\n", acc.WorkflowID, acc.State)
		return nil
	}
	dialCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := tf.dial(dialCtx)
	if err == nil {
		defer c.Close()
		_, err = (&starter.Relay{Store: st, Client: c, Owner: "cli"}).DeliverSubject(dialCtx, subject)
	}
	if err != nil {
		fmt.Fprintf(out, "accepted and queued: %s\nTemporal did not take it now (%v);\nthe relay of a running `kooflow webhook` or `kooflow dev` starts it when Temporal is reachable.\n", acc.WorkflowID, err)
		return nil
	}
	fmt.Fprintf(out, "started %s\n", acc.WorkflowID)
	return nil
}

func newRetryCommand() *cobra.Command {
	var (
		sf  storeFlags
		tf  temporalFlags
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
			st, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			ids, err := stalledWorkflowIDs(ctx, st, args, all)
			if err != nil {
				return err
			}
			c, err := tf.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			s := &starter.Starter{Client: c, Store: st}
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
	tf.register(cmd, &sf.dataDir)
	cmd.Flags().BoolVar(&all, "all-stalled", false, "retry every stalled expiration")
	return cmd
}

func stalledWorkflowIDs(ctx context.Context, st *store.Store, args []string, all bool) ([]string, error) {
	if len(args) == 1 && strings.HasPrefix(args[0], "expire/") {
		return args, nil
	}
	filter := store.ExpirationFilter{State: store.StateStalled, Limit: 10000}
	if !all {
		filter.Subject = args[0]
	}
	exps, err := st.Expirations(ctx, filter)
	if err != nil {
		return nil, err
	}
	if len(exps) == 0 {
		if all {
			return nil, errors.New("no stalled expirations")
		}
		return nil, fmt.Errorf("instance %s has no stalled expiration (see `kooflow status %s`)", args[0], args[0])
	}
	ids := make([]string, len(exps))
	for i, e := range exps {
		ids[i] = e.WorkflowID
	}
	return ids, nil
}

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

// sendError reports a failed send without the request URL, whose query carries the
// signed call (authToken): only the webhook's base URL and the cause are named.
func sendError(hook string, err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return fmt.Errorf("send to %s: %v (is the webhook running? see --webhook)", hook, err)
}

func newSendCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "send",
		Short: "Send test deliveries to a running webhook",
		// An unknown subcommand (with its flags) is named as such, not taken for unknown flags.
		FParseErrWhitelist: cobra.FParseErrWhitelist{UnknownFlags: true},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return fmt.Errorf("unknown command %q for \"kooflow send\": use koogallery-expire (alias koogallery-expired) or smarthub-expired", args[0])
		},
	}
	var (
		dataDir  string
		hook     string
		instance string
		order    string
		test     bool
	)
	kg := &cobra.Command{
		Use:     "koogallery-expire --instance ID",
		Aliases: []string{"koogallery-expired"},
		Short:   "Send a correctly signed KooGallery expireInstance call and verify the signed answer",
		Long: `Signs an expireInstance call exactly as KooGallery does (authToken over the sorted parameters
with the seller key from KOOGALLERY_KEY or the dev key in --data-dir), sends it, and checks the
Body-Sign of the answer.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if instance == "" {
				return errors.New("--instance is required")
			}
			key, err := devKey(dataDir, false)
			if err != nil {
				return err
			}
			if order == "" {
				order = "ORDER-" + instance
			}
			params := koogallery.Params{
				"activity": koogallery.ActivityExpireInstance, "instanceId": instance, "orderId": order,
				"timeStamp": time.Now().UTC().Format("20060102150405.000"), "testFlag": "0",
			}
			params["timeStamp"] = strings.Replace(params["timeStamp"], ".", "", 1)
			if test {
				params["testFlag"] = "1"
			}
			url := strings.TrimRight(hook, "/") + "/koogallery/produce?" + koogallery.SignedQuery(key, params)
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return sendError(hook, err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "HTTP %d %s\n", resp.StatusCode, body)
			if err := koogallery.VerifyBodySignHeader(key, resp.Header.Get(koogallery.BodySignHeaderName), body); err != nil {
				return fmt.Errorf("answer's Body-Sign does not verify: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Body-Sign verified")
			if !strings.Contains(string(body), `"000000"`) {
				return errors.New("KooGallery would retry this call: the result code is not 000000")
			}
			return nil
		},
	}
	kg.Flags().StringVar(&dataDir, "data-dir", envOr("KOOFLOW_DATA_DIR", "./kooflow-data"), "data directory holding the dev key (when KOOGALLERY_KEY is unset)")
	kg.Flags().StringVar(&hook, "webhook", "http://127.0.0.1:8080", "base URL of the running webhook")
	kg.Flags().StringVar(&instance, "instance", "", "instance ID to expire")
	kg.Flags().StringVar(&order, "order", "", "purchase order ID (default ORDER-<instance>)")
	kg.Flags().BoolVar(&test, "test", false, "send as a Seller Console debugging call (testFlag=1)")
	cmd.AddCommand(kg, newSendSmartHubCommand())
	return cmd
}
