package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/devapp"
	"github.com/kooflow/kooflow/smarthub"
	"github.com/kooflow/kooflow/store"
)

// devFlags are `kooflow dev`'s settings; each flag also reads a KOOFLOW_* variable.
type devFlags struct {
	dataDir      string
	temporalPort int
	uiPort       int
	webhookAddr  string
	metricsAddr  string
	sandboxAddr  string
	schedule     scheduleFlags
}

func newDevCommand() *cobra.Command {
	var f devFlags
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything in one process: Temporal server and UI, worker, webhook, metrics, KooDrive sandbox",
		Long: `Runs a complete kooflow on this machine with nothing else installed: an embedded Temporal
server on SQLite in --data-dir (workflows survive a restart), the Temporal UI, a worker, the
webhook receiver, /metrics, and — unless KOODRIVE_BASE_URL is set — a local KooDrive sandbox.
Ctrl-C stops it; starting it again on the same --data-dir resumes unfinished workflows.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDev(cmd.Context(), f, cmd.OutOrStdout()) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dataDir, "data-dir", envOr("KOOFLOW_DATA_DIR", "./kooflow-data"), "directory for the Temporal and kooflow databases (env KOOFLOW_DATA_DIR)")
	fl.IntVar(&f.temporalPort, "temporal-port", envInt("KOOFLOW_TEMPORAL_PORT", 7233), "Temporal frontend gRPC port")
	fl.IntVar(&f.uiPort, "ui-port", envInt("KOOFLOW_UI_PORT", 8233), "Temporal UI port (-1 disables the UI)")
	fl.StringVar(&f.webhookAddr, "webhook-addr", envOr("KOOFLOW_WEBHOOK_ADDR", ":8080"), "webhook listen address (env KOOFLOW_WEBHOOK_ADDR)")
	fl.StringVar(&f.metricsAddr, "metrics-addr", envOr("KOOFLOW_METRICS_ADDR", ":9090"), "metrics listen address (env KOOFLOW_METRICS_ADDR)")
	f.schedule.register(cmd)
	fl.StringVar(&f.sandboxAddr, "sandbox-addr", envOr("KOOFLOW_SANDBOX_ADDR", "127.0.0.1:0"), "KooDrive sandbox listen address (0 = any free port)")
	return cmd
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// demoSubscriptions seed an empty dev registry so the banner's sample command works.
var demoSubscriptions = []store.Subscription{
	{InstanceID: "demo-0001", OrderID: "CS-DEMO-0001", CarrierUserID: "demo-user-1", PackageID: "demo-pkg-50GB", CarrierOrderID: "CO-0001", CarrierOrderTime: "2026-01-15T08:00:00Z"},
	{InstanceID: "demo-0002", OrderID: "CS-DEMO-0002", CarrierUserID: "demo-user-2", PackageID: "demo-pkg-200GB", CarrierOrderID: "CO-0002", CarrierOrderTime: "2026-01-15T08:00:00Z"},
	{InstanceID: "demo-sim-0001", GIccid: "8986000000000000001", PackageCode: "PKG-DEMO", CarrierUserID: "demo-user-3", PackageID: "demo-pkg-sim", CarrierOrderID: "CO-0003", CarrierOrderTime: "2026-01-15T08:00:00Z"},
}

func runDev(ctx context.Context, f devFlags, out io.Writer) error {
	logger := slog.Default().With("process", "dev")
	dataDir, err := filepath.Abs(f.dataDir)
	if err != nil {
		return err
	}
	key, err := devKey(dataDir, true)
	if err != nil {
		return err
	}
	smartHubKey, err := devSmartHubKey(dataDir, true)
	if err != nil {
		return err
	}
	mode, err := smarthub.ParseSignatureMode(os.Getenv("SMARTHUB_SIGNATURE_MODE"))
	if err != nil {
		return err
	}
	logger.Info("starting kooflow dev", "dataDir", dataDir, "temporalPort", f.temporalPort)
	app, err := devapp.Start(ctx, devapp.Options{
		DataDir: dataDir, DB: os.Getenv("KOOFLOW_DB"), TemporalPort: f.temporalPort, UIPort: f.uiPort,
		WebhookAddr: f.webhookAddr, MetricsAddr: f.metricsAddr, SandboxAddr: f.sandboxAddr, KooGalleryKey: key,
		SmartHubAPIKey: smartHubKey, SmartHubSignatureMode: mode,
		KooDriveURL: os.Getenv("KOODRIVE_BASE_URL"), KooDriveToken: envOr("KOODRIVE_ACCESS_TOKEN", "dev-token"),
		KooDriveUser: envOr("KOODRIVE_USER_ID", "dev-koodrive-user"), Logger: logger, Schedule: f.schedule.config(),
	})
	if err != nil {
		return err
	}
	defer app.Stop()
	if err := seedDemo(ctx, app.Store); err != nil {
		return err
	}
	printBanner(out, banner{app: app, dataDir: f.dataDir, key: key, smartHubKey: smartHubKey})
	<-ctx.Done()
	logger.Info("stopping: webhook, worker, Temporal (unfinished workflows resume on the next start)")
	return nil
}

func seedDemo(ctx context.Context, st *store.Store) error {
	var missing []store.Subscription
	for _, d := range demoSubscriptions {
		_, err := st.SubscriptionByInstance(ctx, d.InstanceID)
		if errors.Is(err, store.ErrNotFound) {
			d.ExpireTime = time.Now().UTC().Truncate(24 * time.Hour)
			missing = append(missing, d)
		} else if err != nil {
			return err
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err := st.UpsertSubscriptions(ctx, missing)
	return err
}

type banner struct {
	app         *devapp.App
	dataDir     string
	key         string
	smartHubKey string
}

func printBanner(out io.Writer, b banner) {
	a := b.app
	ui := a.Stack.UIURL()
	if ui == "" {
		ui = "(disabled)"
	}
	kd := a.KooDriveURL + " (real KooDrive, from KOODRIVE_BASE_URL)"
	if a.Sandbox != nil {
		kd = a.KooDriveURL + " (sandbox; accepted calls: " + a.KooDriveURL + "/sandbox/notifications)"
	}
	fmt.Fprintf(out, `
kooflow dev is running. Ctrl-C stops it; workflows resume on the next start.

  Temporal frontend  %s (namespace %s)
  Temporal UI        %s
  Webhook            %s/koogallery/produce   (health %s/healthz, readiness %s/readyz)
  Metrics            %s/metrics
  KooDrive           %s
  Data directory     %s
  KooGallery key     %s   (dev key, stored in %s)
  SmartHub API key   %s   (dev key, stored in %s)

Demo subscriptions demo-0001 and demo-0002 (and SIM 8986000000000000001 with package PKG-DEMO) are
in the registry. Send a signed sample expiration:

  go run ./cmd/kooflow send koogallery-expire --instance demo-0001 --webhook %s --data-dir %s

or a SmartHub "Prepaid Service Package Expired" push:

  go run ./cmd/kooflow send smarthub-expired --iccid 8986000000000000001 --package PKG-DEMO --webhook %s --data-dir %s

then watch it in the Temporal UI (%s) or with:

  go run ./cmd/kooflow status --data-dir %s

`, a.Stack.HostPort(), a.Stack.Namespace(), ui, a.WebhookURL, a.WebhookURL, a.WebhookURL, a.MetricsURL, kd, b.dataDir, b.key,
		filepath.Join(b.dataDir, "koogallery.key"), b.smartHubKey, filepath.Join(b.dataDir, "smarthub.key"),
		a.WebhookURL, b.dataDir, a.WebhookURL, b.dataDir, ui, b.dataDir)
}
