package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/koogallery"
)

// sendError reports a failed send without the request URL, whose query carries the
// signed call (authToken): only the webhook's base URL and the cause are named.
func sendError(hook string, err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return fmt.Errorf("send to %s: %v (is the webhook running? see --webhook)", hook, err)
}

// newSendCommand is kooflow send: signed test deliveries to a running webhook.
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
