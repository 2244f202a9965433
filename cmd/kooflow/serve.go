package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/httpserver"
	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/metrics"
	"github.com/kooflow/kooflow/smarthub"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/webhook"
	"github.com/kooflow/kooflow/worker"
)

// startWorker runs kooflow's Temporal worker until Stop. Statements and reports are
// written under dir.
func startWorker(c client.Client, st *store.Store, kd *koodrive.Client, dir string, m *metrics.Metrics, logger *slog.Logger) (sdkworker.Worker, error) {
	w := worker.New(c, worker.Dependencies{
		Expiration:     &activities.Expiration{Store: st, KooDrive: kd, Logger: logger, Metrics: m},
		Reconciliation: &activities.Reconciliation{Store: st, KooDrive: kd, Dir: dir, Logger: logger, Metrics: m},
	}, sdkworker.Options{})
	if err := w.Start(); err != nil {
		return nil, fmt.Errorf("start Temporal worker: %w", err)
	}
	return w, nil
}

// openProcess sets up what the worker and webhook processes share: the store, the
// Temporal client options, and the metrics registry (kooflow's, the store gauge, and the
// SDK's on the client options). Call cleanup at exit.
func openProcess(ctx context.Context, dsn string, logger *slog.Logger) (*store.Store, client.Options, *metrics.Metrics, func(), error) {
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return nil, client.Options{}, nil, nil, err
	}
	opts, err := temporalOptions(logger)
	if err != nil {
		st.Close()
		return nil, client.Options{}, nil, nil, err
	}
	m := metrics.New()
	m.RegisterStore(st)
	handler, closer := m.TemporalHandler()
	opts.MetricsHandler = handler
	return st, opts, m, func() { closer.Close(); st.Close() }, nil
}

func newWorkerCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run the Temporal worker (workflows and activities) as a long-running process",
		Long: `Runs kooflow's Temporal worker against any Temporal cluster.

Environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS* (the SDK's
standard client configuration); KOOFLOW_DB (required); KOODRIVE_BASE_URL, KOODRIVE_USER_ID
(required) and KooDrive credentials chosen by KOODRIVE_AUTH — app: KOODRIVE_APP_ID and
KOODRIVE_APP_SECRET; token: KOODRIVE_ACCESS_TOKEN or KOODRIVE_ACCESS_TOKEN_FILE (unset: app when
KOODRIVE_APP_ID is set); KOOFLOW_METRICS_ADDR (default :9090); KOOFLOW_DATA_DIR (statements
and discrepancy reports are written under its reconciliation/ folder; default ./kooflow-data).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			logger := slog.Default().With("process", "worker")
			env, envErr := requireEnv("KOOFLOW_DB")
			kdConfig, kdErr := koodrive.ConfigFromEnv(os.Getenv)
			if err := errors.Join(envErr, kdErr); err != nil {
				return err
			}
			st, opts, m, cleanup, err := openProcess(ctx, env["KOOFLOW_DB"], logger)
			if err != nil {
				return err
			}
			defer cleanup()
			kdConfig.Observe = m.ObserveKooDrive
			kd, err := koodrive.New(kdConfig)
			if err != nil {
				return err
			}
			logger.Info("KooDrive client", "url", kdConfig.BaseURL, "credentials", fmt.Sprint(kdConfig.Auth))
			c, err := dialPatiently(ctx, opts, 2*time.Minute, logger)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := starter.EnsureSearchAttributes(ctx, c, opts.Namespace); err != nil {
				// Without operator rights the attributes must be created by an administrator;
				// workflows that set a missing attribute fail their workflow tasks until then.
				logger.Warn("could not register kooflow's search attributes; ask a Temporal administrator to create them",
					"attributes", "KooflowInstanceId, KooflowCarrierUserId, KooflowState, KooflowBillingCycle (Keyword)", "error", err)
			}
			ms, err := serveMetrics(m, logger)
			if err != nil {
				return err
			}
			defer ms.Shutdown()
			w, err := startWorker(c, st, kd, filepath.Join(envOr("KOOFLOW_DATA_DIR", "./kooflow-data"), "reconciliation"), m, logger)
			if err != nil {
				return err
			}
			logger.Info("worker running", "taskQueue", "kooflow", "metrics", ms.URL+"/metrics", "store", st.Dialect())
			<-ctx.Done()
			logger.Info("worker stopping")
			w.Stop()
			return nil
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

Environment: TEMPORAL_* (the SDK's standard client configuration); KOOFLOW_DB and
KOOGALLERY_KEY (required); SMARTHUB_API_KEY (SmartHub pushes are refused without it);
SMARTHUB_SIGNATURE_MODE (off, log or enforce; default log); KOOFLOW_WEBHOOK_ADDR (intake,
default :8080); KOOFLOW_METRICS_ADDR (/metrics, default :9090 — keep it off the public network).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			logger := slog.Default().With("process", "webhook")
			env, err := requireEnv("KOOFLOW_DB", "KOOGALLERY_KEY")
			if err != nil {
				return err
			}
			st, opts, m, cleanup, err := openProcess(ctx, env["KOOFLOW_DB"], logger)
			if err != nil {
				return err
			}
			defer cleanup()
			// Lazy: the intake starts and accepts deliveries even while Temporal is down.
			c, err := client.NewLazyClient(opts)
			if err != nil {
				return fmt.Errorf("Temporal client: %w", err)
			}
			defer c.Close()
			mode, err := smarthub.ParseSignatureMode(os.Getenv("SMARTHUB_SIGNATURE_MODE"))
			if err != nil {
				return err
			}
			if os.Getenv("SMARTHUB_API_KEY") == "" {
				logger.Warn("SMARTHUB_API_KEY is not set: SmartHub pushes to /smarthub/events are refused with 401")
			}
			host, _ := os.Hostname()
			relay := &starter.Relay{Store: st, Client: c, Owner: fmt.Sprintf("webhook@%s:%d", host, os.Getpid()), Logger: logger,
				Observe: m.RegisterIntake(st).ObserveRelay}
			router := webhook.NewRouter(webhook.Config{
				KooGalleryKey: env["KOOGALLERY_KEY"], SmartHubAPIKey: os.Getenv("SMARTHUB_API_KEY"), SmartHubSignatureMode: mode, Store: st,
				Intake: &starter.Intake{Store: st, Nudge: relay.Nudge}, Temporal: c, Metrics: m, Logger: logger,
			})
			ms, err := serveMetrics(m, logger)
			if err != nil {
				return err
			}
			defer ms.Shutdown()
			srv, err := httpserver.Start("webhook", envOr("KOOFLOW_WEBHOOK_ADDR", ":8080"), router, logger)
			if err != nil {
				return err
			}
			relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
			relayDone := make(chan struct{})
			go func() {
				defer close(relayDone)
				relay.Run(relayCtx)
			}()
			logger.Info("webhook listening", "url", srv.URL, "metrics", ms.URL+"/metrics", "temporal", opts.HostPort, "store", st.Dialect())
			<-ctx.Done()
			logger.Info("webhook stopping")
			srv.Shutdown()
			stopRelay()
			<-relayDone
			return nil
		},
	}
}

// serveMetrics serves /metrics and /healthz on KOOFLOW_METRICS_ADDR (default :9090).
func serveMetrics(m *metrics.Metrics, logger *slog.Logger) (*httpserver.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"status":"ok"}`)) })
	return httpserver.Start("metrics", envOr("KOOFLOW_METRICS_ADDR", ":9090"), mux, logger)
}
