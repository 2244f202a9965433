package main

import (
	"context"
	"log/slog"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/wiring"
)

func newWorkerCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run the Temporal worker (workflows and activities) as a long-running process",
		Long: `Runs kooflow's Temporal worker against any Temporal cluster.

It starts whether Temporal is up or not: it logs once that it waits and for which address,
tries again with exponential backoff capped at ` + wiring.TemporalRetryMax.String() + `, logs when it is connected, and never
exits for want of Temporal — only SIGTERM or SIGINT stop it, or a configuration error at
start. On KOOFLOW_METRICS_ADDR it serves /metrics, /healthz (200 while the process runs) and
/readyz (503 "waiting for Temporal at host:port …" until the worker polls, then 200).

On SIGTERM or SIGINT it stops polling and lets the activities in flight finish for up to
KOOFLOW_WORKER_STOP_TIMEOUT (default ` + wiring.DefaultWorkerStopTimeout.String() + `, longer than a KooDrive notification may take);
an activity still running then is stopped and retried by Temporal on another worker. Give
the process that long plus 15 s before killing it (compose's stop_grace_period).

Environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS* (the SDK's
standard client configuration); KOOFLOW_DB (required); KOODRIVE_BASE_URL, KOODRIVE_USER_ID
(required) and KooDrive credentials chosen by KOODRIVE_AUTH — app: KOODRIVE_APP_ID and
KOODRIVE_APP_SECRET or KOODRIVE_APP_SECRET_FILE (a file holding the secret, e.g. a mounted
secret); token: KOODRIVE_ACCESS_TOKEN or KOODRIVE_ACCESS_TOKEN_FILE (unset: app when
KOODRIVE_APP_ID is set); KOOFLOW_METRICS_ADDR (/metrics, /healthz and /readyz, default
` + wiring.DefaultMetricsAddr + `, loopback only: set e.g. :9090 for a scraper on another host);
KOOFLOW_WORKER_STOP_TIMEOUT (a duration such as 30s or 2m); KOOFLOW_DATA_DIR (statements and
discrepancy reports are written under its reconciliation/ folder; default ` + wiring.DefaultDataDir + `).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runProcess(cmd.Context(), wiring.Worker)
		},
	}
}

func newWebhookCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "webhook",
		Short: "Run the HTTP intake (KooGallery produce endpoint, SmartHub pushes, health) and the relay to Temporal",
		Long: `Runs the webhook receiver and the intake relay. An accepted expiry is committed to the
store (the intake outbox) and answered at once, whether Temporal is up, slow or down; the relay
starts the queued workflows as soon as Temporal takes them. Only an unavailable store is
answered 000005 (SmartHub: 503). Run several replicas on PostgreSQL if you like: relays share
the queue through leases and never start an intent twice.

The intake's /healthz and /readyz (on KOOFLOW_WEBHOOK_ADDR) answer 200 while the store
answers, whether Temporal is up or not. The relay waits for Temporal as the worker does
(one log line while it waits, backoff capped at ` + wiring.TemporalRetryMax.String() + `); KOOFLOW_METRICS_ADDR serves /metrics,
/healthz and the relay's /readyz (503 "waiting for Temporal at host:port …" until it
reaches Temporal, then 200).

Environment: TEMPORAL_* (the SDK's standard client configuration); KOOFLOW_DB and
KOOGALLERY_KEY (required); SMARTHUB_API_KEY (SmartHub pushes are refused without it);
SMARTHUB_SIGNATURE_MODE (off, log or enforce; default log); KOOFLOW_WEBHOOK_ADDR (intake,
default ` + wiring.DefaultWebhookAddr + `, loopback only: set e.g. :8080 to take KooGallery's and SmartHub's
calls); KOOFLOW_METRICS_ADDR (/metrics, /healthz, /readyz, default ` + wiring.DefaultMetricsAddr + ` — keep it off the public
network); KOOFLOW_RECORD_RETENTION (how long the delivery log and the audit log keep a row, e.g.
400d — the default; older rows are pruned hourly); KOOFLOW_MAX_ACTIVE_EXPIRIES (the most
expiries Temporal works on at once, default ` + strconv.Itoa(starter.DefaultMaxActive) + `; off for no cap: a month end waits in
kooflow's queue and starts oldest first).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runProcess(cmd.Context(), wiring.Webhook)
		},
	}
}

// runProcess runs a production process, configured from the environment, until ctx ends.
func runProcess(ctx context.Context, name wiring.Role) error {
	cfg, err := wiring.FromEnv(os.Environ(), name)
	if err != nil {
		return err
	}
	cfg.Logger = slog.Default().With("process", string(name))
	p, err := wiring.Start(ctx, name, cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	cfg.Logger.Info(string(name) + " stopping")
	p.Stop()
	cfg.Logger.Info(string(name) + " stopped")
	return nil
}
