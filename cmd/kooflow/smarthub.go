package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/smarthub"
	"github.com/kooflow/kooflow/store"
)

func printUnmatched(out io.Writer, events []store.SmartHubEvent) {
	if len(events) == 0 {
		fmt.Fprintln(out, "no unmatched SmartHub events")
		return
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT ID (DELIVERY)\tRECEIVED\tGICCID\tPACKAGE\tVALID THRU")
	for _, e := range events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.EventID, e.ReceivedAt.Format(time.RFC3339), e.GIccid, e.PackageCode, e.ValidThru.Format(time.RFC3339))
	}
	tw.Flush()
	fmt.Fprintln(out, "\nimport the missing SIMs (`kooflow registry import FILE` with gIccid and packageCode), then `kooflow replay <eventId>`")
}

func newReplayCommand() *cobra.Command {
	var (
		sf stackFlags
	)
	cmd := &cobra.Command{
		Use:   "replay <eventId>",
		Short: "Process a stored SmartHub push again, e.g. an unmatched expiry after fixing the registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			stack, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer stack.Close()
			v, acc, err := stack.operator().Replay(ctx, args[0], func(ev store.SmartHubEvent) bool {
				return ev.TriggerType == smarthub.TriggerPackageExpired
			})
			if err != nil {
				return err
			}
			return reportAcceptance(ctx, cmd.OutOrStdout(), stack, acc, v.Input.Subject)
		},
	}
	sf.register(cmd)
	return cmd
}

func newSendSmartHubCommand() *cobra.Command {
	var (
		dataDir   string
		hook      string
		iccid     string
		pkg       string
		validThru string
		eventID   string
	)
	cmd := &cobra.Command{
		Use:   "smarthub-expired --iccid ICCID --package CODE",
		Short: "Send a SmartHub \"Prepaid Service Package Expired\" push to a running webhook",
		Long: `Sends a push as SmartHub does: X-API-Key from SMARTHUB_API_KEY (or the dev key in --data-dir),
a body signature by the assumed algorithm, and a new eventId unless --event-id repeats one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if iccid == "" || pkg == "" {
				return errors.New("--iccid and --package are required")
			}
			key, err := devSmartHubKey(dataDir, false)
			if err != nil {
				return err
			}
			if eventID == "" {
				buf := make([]byte, 16)
				_, _ = rand.Read(buf)
				eventID = hex.EncodeToString(buf)
			}
			now := time.Now().UTC()
			if validThru == "" {
				validThru = now.Truncate(24 * time.Hour).Format("2006-01-02T15:04:05-0700")
			} else if _, err := smarthub.ParseTime(validThru); err != nil {
				return fmt.Errorf("--valid-thru: %w", err)
			}
			datePush := now.Format("2006-01-02T15:04:05.000Z")
			body, _ := json.Marshal(map[string]any{
				"eventId": eventID, "datePush": datePush, "signature": smarthub.Sign(key, eventID, datePush), "eventType": "RULE_TRIGGERED",
				"data": map[string]string{"ruleName": "kooflow send", "triggerDate": now.Format("2006-01-02 15:04:05"), "gIccid": iccid,
					"triggerType": smarthub.TriggerPackageExpired, "packageCode": pkg, "packageName": pkg,
					"activateDate": now.AddDate(0, -1, 0).Format("2006-01-02T15:04:05-0700"), "validThru": validThru},
			})
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(hook, "/")+"/smarthub/events", bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-API-Key", key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return sendError(hook, err)
			}
			defer resp.Body.Close()
			answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			fmt.Fprintf(cmd.OutOrStdout(), "event %s: HTTP %d %s\n", eventID, resp.StatusCode, strings.TrimSpace(string(answer)))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("SmartHub would retry this push: HTTP %d", resp.StatusCode)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", envOr("KOOFLOW_DATA_DIR", "./kooflow-data"), "data directory holding the dev key (when SMARTHUB_API_KEY is unset)")
	cmd.Flags().StringVar(&hook, "webhook", "http://127.0.0.1:8080", "base URL of the running webhook")
	cmd.Flags().StringVar(&iccid, "iccid", "", "the SIM's gIccid")
	cmd.Flags().StringVar(&pkg, "package", "", "the service package code")
	cmd.Flags().StringVar(&validThru, "valid-thru", "", "the package's validity end as yyyy-MM-ddTHH:mm:ss±hhmm (e.g. 2026-10-31T00:00:00+0000), RFC 3339 or \"yyyy-MM-dd HH:mm:ss\" (UTC) (default: today 00:00 UTC)")
	cmd.Flags().StringVar(&eventID, "event-id", "", "event ID (default: a new random one; repeat one to test deduplication)")
	return cmd
}
