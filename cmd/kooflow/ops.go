package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
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
A row is identified by instanceId, or by gIccid+packageCode; carrierUserId and packageId are
required. Existing subscriptions are updated, new ones inserted. A file with any invalid row is
refused whole, listing every bad row, and nothing is written.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			subs, err := registry.ReadFile(args[0])
			if err != nil {
				return err
			}
			st, err := sf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			stats, err := st.UpsertSubscriptions(cmd.Context(), subs)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %s: %d inserted, %d updated\n", args[0], stats.Inserted, stats.Updated)
			return nil
		},
	}
	sf.register(imp)
	cmd.AddCommand(imp)
	return cmd
}

func newExpireCommand() *cobra.Command {
	var (
		sf       storeFlags
		instance string
		test     bool
	)
	cmd := &cobra.Command{
		Use:   "expire --instance ID",
		Short: "Start an expiration by hand, exactly as a KooGallery expireInstance would",
		Args:  cobra.NoArgs,
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
			c, err := dialTemporal(ctx, slog.Default())
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := (&starter.Starter{Client: c, Store: st}).StartExpiration(ctx, starter.ExpirationInput(starter.SourceKooGallery, instance, sub, test))
			if err != nil {
				return err
			}
			if res.Existing {
				fmt.Fprintf(cmd.OutOrStdout(), "already accepted: %s (nothing new started)\n", res.WorkflowID)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "started %s\n", res.WorkflowID)
			}
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&instance, "instance", "", "KooGallery instance ID (must be in the registry)")
	cmd.Flags().BoolVar(&test, "test", false, "run as a test: nothing is frozen or sent to KooDrive")
	return cmd
}

func newRetryCommand() *cobra.Command {
	var (
		sf  storeFlags
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
			c, err := dialTemporal(ctx, slog.Default())
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
			filter := store.ExpirationFilter{State: state, Limit: limit}
			if len(args) == 1 {
				filter.Subject = args[0]
				if err := printSubscription(ctx, out, st, args[0]); err != nil {
					return err
				}
			}
			exps, err := st.Expirations(ctx, filter)
			if err != nil {
				return err
			}
			counts, err := st.CountExpirationsByState(ctx)
			if err != nil {
				return err
			}
			printExpirations(out, exps, counts)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&state, "state", "", "only this state: accepted, freezing, notifying, stalled, reserved")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many rows")
	cmd.Flags().BoolVar(&unmatched, "unmatched", false, "list SmartHub expiries whose SIM/package is not in the registry")
	return cmd
}

// printSubscription shows the registry entry named by an instance ID or by
// gIccid/packageCode, with its history.
func printSubscription(ctx context.Context, out io.Writer, st *store.Store, subject string) error {
	var sub store.Subscription
	var err error
	if iccid, pkg, isSIM := strings.Cut(subject, "/"); isSIM {
		sub, err = st.SubscriptionBySIM(ctx, iccid, pkg)
	} else {
		sub, err = st.SubscriptionByInstance(ctx, subject)
	}
	if errors.Is(err, store.ErrNotFound) {
		fmt.Fprintf(out, "%s is not in the registry\n\n", subject)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: status %s, carrierUserId %s, packageId %s, expires %s, frozen for %q\n",
		subject, sub.Status, sub.CarrierUserID, sub.PackageID, formatWhen(sub.ExpireTime), sub.FrozenPeriod)
	events, err := st.Events(ctx, sub.ID)
	if err != nil {
		return err
	}
	for _, e := range events {
		fmt.Fprintf(out, "  %s  %-9s %s\n", e.At.Format(time.RFC3339), e.Event, e.Detail)
	}
	fmt.Fprintln(out)
	return nil
}

func printExpirations(out io.Writer, exps []store.Expiration, counts map[string]int) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKFLOW ID\tSTATE\tATTEMPTS\tUSER\tPACKAGE\tUPDATED\tLAST ERROR")
	for _, e := range exps {
		state := e.State
		if e.Test {
			state += " (test)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", e.WorkflowID, state, e.Attempts, e.CarrierUserID, e.PackageID,
			e.UpdatedAt.Format(time.RFC3339), truncateText(e.LastError, 80))
	}
	tw.Flush()
	var parts []string
	for _, s := range []string{store.StateAccepted, store.StateFreezing, store.StateNotifying, store.StateStalled, store.StateReserved} {
		parts = append(parts, fmt.Sprintf("%s %d", s, counts[s]))
	}
	fmt.Fprintf(out, "\nall expirations: %s\n", strings.Join(parts, ", "))
	if counts[store.StateStalled] > 0 {
		fmt.Fprintln(out, "stalled expirations wait for an operator: fix the cause, then `kooflow retry <instanceId|workflowId>` or `kooflow retry --all-stalled`")
	}
}

func formatWhen(t time.Time) string {
	if t.IsZero() {
		return "(unknown)"
	}
	return t.Format(time.RFC3339)
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func newSendCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "send", Short: "Send test deliveries to a running webhook"}
	var (
		dataDir  string
		hook     string
		instance string
		order    string
		test     bool
	)
	kg := &cobra.Command{
		Use:   "koogallery-expire --instance ID",
		Short: "Send a correctly signed KooGallery expireInstance call and verify the signed answer",
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
				return fmt.Errorf("send to %s: %w", hook, err)
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
