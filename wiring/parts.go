package wiring

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/httpserver"
	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/metrics"
	"github.com/kooflow/kooflow/payloadcodec"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/webhook"
	"github.com/kooflow/kooflow/worker"
)

// Parts are what every kooflow process shares: its Config, the store, the metrics
// registry (with the store's gauges and the Temporal SDK's metrics) and the completed
// Temporal client options. The other parts are built from them.
type Parts struct {
	// Config is what the parts were built from (Logger set).
	Config Config
	// Store is kooflow's store; Metrics the process's one registry.
	Store   *store.Store
	Metrics *metrics.Metrics
	// ClientOptions are Config.Temporal completed by ClientOptions, with the SDK's metrics
	// in the registry: use them for every client of the process.
	ClientOptions client.Options
	logger        *slog.Logger
	sdkMetrics    io.Closer
	// kooDriveHealth writes what the worker's KooDrive client saw for the console, once
	// WorkerDependencies made the client; stopKooDriveHealth writes its last calls and
	// stops it.
	kooDriveHealth     *worker.KooDriveHealthRecorder
	stopKooDriveHealth func()
	// stopKooDriveProbe ends the worker's probe of KooDrive's service status.
	stopKooDriveProbe func()
}

// Open opens the store and the metrics registry and completes the client options. Close
// releases them.
func Open(ctx context.Context, cfg Config) (*Parts, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Codec == nil {
		cfg.Logger.Warn(payloadcodec.OffWarning)
	} else {
		cfg.Logger.Info("payload encryption on", "encryptWith", cfg.Codec.Keyring().EncryptionKeyID(), "decryptWith", cfg.Codec.Keyring().KeyIDs())
	}
	st, err := store.Open(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	m := metrics.New()
	m.RegisterStore(st)
	handler, sdkMetrics := m.TemporalHandler()
	return &Parts{Config: cfg, Store: st, Metrics: m, ClientOptions: ClientOptions(cfg, handler), logger: cfg.Logger, sdkMetrics: sdkMetrics}, nil
}

// ClientOptions is the one place where kooflow's Temporal client options are completed:
// cfg.Temporal (where and how to connect) with the SDK's logger, the SDK's metrics
// (nil: none) and the payload and failure converters (payload encryption). Every client
// and worker of a process, and every operator command's client, is made from its result.
func ClientOptions(cfg Config, metrics client.MetricsHandler) client.Options {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	opts := cfg.Temporal
	opts.Logger = sdklog.NewStructuredLogger(logger)
	opts.MetricsHandler = metrics
	payloadcodec.Configure(&opts, cfg.Codec)
	return opts
}

// Close writes the last KooDrive calls the worker saw, stops the SDK metrics and closes
// the store; stop the parts built from them first.
func (p *Parts) Close() {
	if p.stopKooDriveProbe != nil {
		p.stopKooDriveProbe()
	}
	if p.stopKooDriveHealth != nil {
		p.stopKooDriveHealth()
	}
	if err := p.sdkMetrics.Close(); err != nil {
		p.logger.Warn("Temporal SDK metrics stop", "error", err)
	}
	if err := p.Store.Close(); err != nil {
		p.logger.Warn("store close", "error", err)
	}
}

// Dial connects to Temporal with the process's client options, once: for a process whose
// Temporal is already up (kooflow dev's embedded one). Long-running processes that may
// start before the cluster use LazyClient and AwaitTemporal.
func (p *Parts) Dial(ctx context.Context) (client.Client, error) {
	c, err := client.DialContext(ctx, p.ClientOptions)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", p.ClientOptions.HostPort, p.ClientOptions.Namespace, err)
	}
	return c, nil
}

// LazyClient returns a client that connects on first use, for the long-running processes,
// which start (and the intake accepts deliveries) even while Temporal is down.
func (p *Parts) LazyClient() (client.Client, error) {
	c, err := client.NewLazyClient(p.ClientOptions)
	if err != nil {
		return nil, fmt.Errorf("Temporal client: %w", err)
	}
	return c, nil
}

// EnsureSearchAttributes registers kooflow's search attributes on the namespace. Without
// operator rights they must be created by an administrator; workflows that set a missing
// attribute fail their workflow tasks until then, so a failure is logged, not returned.
func (p *Parts) EnsureSearchAttributes(ctx context.Context, c client.Client) {
	if err := starter.EnsureSearchAttributes(ctx, c, p.ClientOptions.Namespace); err != nil {
		names := slices.Sorted(maps.Keys(starter.SearchAttributes()))
		p.logger.Warn("could not register kooflow's search attributes; ask a Temporal administrator to create them",
			"attributes", strings.Join(names, ", ")+" (Keyword)", "error", err)
	}
}

// WorkerDependencies builds the activities' dependencies: the store, a KooDrive client
// from Config.KooDrive that reports to the metrics and, for the console, to the store
// (worker.KooDriveHealthRecorder, running until Close), the logger, and the folder of
// reconciliation statements and reports (Config.DataDir/reconciliation).
func (p *Parts) WorkerDependencies() (worker.Dependencies, error) {
	kdConfig := p.Config.KooDrive
	kdConfig.Observe = p.Metrics.ObserveKooDrive
	health := p.kooDriveHealth
	if health == nil {
		health = worker.NewKooDriveHealthRecorder(p.Store, p.logger)
	}
	kdConfig.Report = health.Report
	kd, err := koodrive.New(kdConfig)
	if err != nil {
		return worker.Dependencies{}, err
	}
	if p.kooDriveHealth == nil {
		p.kooDriveHealth, p.stopKooDriveHealth = health, health.Start(worker.KooDriveHealthInterval)
		if every := p.Config.KooDriveProbe; every >= 0 {
			if every == 0 {
				every = DefaultKooDriveProbe
			}
			probe := &worker.KooDriveProbe{KooDrive: kd, Report: health.Report, Logger: p.logger}
			p.stopKooDriveProbe = probe.Start(every)
		}
	}
	p.logger.Info("KooDrive client", "url", kdConfig.BaseURL, "credentials", fmt.Sprint(kdConfig.Auth))
	return worker.Dependencies{
		Expiration: &activities.Expiration{Store: p.Store, KooDrive: kd, Logger: p.logger, Metrics: p.Metrics},
		Reconciliation: &activities.Reconciliation{Store: p.Store, KooDrive: kd, Dir: filepath.Join(p.Config.DataDir, "reconciliation"),
			Logger: p.logger, Metrics: p.Metrics},
	}, nil
}

// StartWorker starts kooflow's Temporal worker on c with WorkerDependencies; stop it with
// its Stop.
func (p *Parts) StartWorker(c client.Client) (sdkworker.Worker, error) {
	deps, err := p.WorkerDependencies()
	if err != nil {
		return nil, err
	}
	return p.startWorker(c, deps)
}

// startWorker starts a new worker with deps on c; a worker that failed to start is
// stopped, so the next attempt starts a fresh one.
func (p *Parts) startWorker(c client.Client, deps worker.Dependencies) (sdkworker.Worker, error) {
	w := worker.New(c, deps, p.Config.WorkerOptions)
	if err := w.Start(); err != nil {
		w.Stop()
		return nil, fmt.Errorf("start Temporal worker: %w", err)
	}
	return w, nil
}

// Intake is the webhook part of a process: the router on its listener, the intake that
// commits accepted deliveries, and the relay that starts them in Temporal.
type Intake struct {
	// Intake commits accepted expiries and stops; Relay starts them in Temporal.
	Intake *starter.Intake
	Relay  *starter.Relay
	// URL is where the webhook listens.
	URL    string
	server *httpserver.Server
	// stopBackground ends the relay and the pruning of the record, which close
	// backgroundDone when they have returned.
	stopBackground context.CancelFunc
	backgroundDone chan struct{}
}

// StartIntake serves the webhook on Config.WebhookAddr and, unless Config.NoRelay, runs
// the relay until Stop: once Temporal answers (AwaitTemporal, which ready follows; ready
// may be nil), then on its own backoff, and with it the sweep that finds expirations
// ended in Temporal outside kooflow (starter.RunDriftSweep). Meanwhile it prunes the
// delivery and audit logs past Config.RecordRetention. c may be lazy: the intake answers whether Temporal is up
// or not.
func (p *Parts) StartIntake(ctx context.Context, c client.Client, ready *Readiness) (*Intake, error) {
	cfg := p.Config
	if cfg.SmartHubAPIKey == "" {
		p.logger.Warn("SMARTHUB_API_KEY is not set: SmartHub pushes to /smarthub/events are refused with 401")
	}
	intakeMetrics := p.Metrics.RegisterIntake(p.Store)
	in := &Intake{Relay: &starter.Relay{Store: p.Store, Client: c, Owner: cfg.RelayOwner, Logger: p.logger,
		Observe: intakeMetrics.ObserveRelay, MaxActive: cfg.MaxActive, Admission: intakeMetrics.ObserveAdmission}}
	if !cfg.NoRelay {
		intakeMetrics.SetAdmissionCap(in.Relay.Cap())
	}
	in.Intake = &starter.Intake{Store: p.Store, Nudge: in.Relay.Nudge, NotifyWindow: cfg.NotifyWindow}
	router := webhook.NewRouter(webhook.Config{
		KooGalleryKey: cfg.KooGalleryKey, SmartHubAPIKey: cfg.SmartHubAPIKey, SmartHubSignatureMode: cfg.SmartHubSignatureMode,
		Store: p.Store, Intake: in.Intake, Temporal: c, Metrics: p.Metrics, Logger: p.logger,
	})
	srv, err := httpserver.Start("webhook", cfg.WebhookAddr, router, p.logger)
	if err != nil {
		return nil, err
	}
	in.server, in.URL = srv, srv.URL
	if cfg.NoRelay {
		ready.SetReady()
	}
	background, stop := context.WithCancel(context.WithoutCancel(ctx))
	in.stopBackground, in.backgroundDone = stop, make(chan struct{})
	go func() {
		defer close(in.backgroundDone)
		var wg sync.WaitGroup
		if !cfg.NoRelay {
			wg.Go(func() {
				if p.AwaitTemporal(background, c, ready, nil) != nil {
					return // stopped before Temporal answered
				}
				wg.Go(func() { starter.RunDriftSweep(background, c, p.Store, p.logger) })
				in.Relay.Run(background)
			})
		}
		wg.Go(func() { pruneRecords(background, p.Store, cfg.RecordRetention, p.logger) })
		wg.Wait()
	}()
	return in, nil
}

// Stop stops accepting deliveries, then stops the relay and the pruning.
func (in *Intake) Stop() {
	in.server.Shutdown()
	in.stopBackground()
	<-in.backgroundDone
}

// ServeMetrics serves on Config.MetricsAddr /metrics, /healthz (200 while the process
// runs) and /readyz (ready's answer: 503 with a plain reason until the process reaches
// Temporal, 200 after; a nil ready is always ready), and /debug/pprof/ when Config.Pprof
// is on (404 otherwise).
func (p *Parts) ServeMetrics(ready *Readiness) (*httpserver.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", p.Metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"status":"ok"}`)) })
	mux.Handle("GET /readyz", ready)
	if p.Config.Pprof {
		metrics.MountPprof(mux)
		p.logger.Warn("profiling endpoint on: keep the metrics port on loopback", "url", "/debug/pprof/", "addr", p.Config.MetricsAddr)
	}
	return httpserver.Start("metrics", p.Config.MetricsAddr, mux, p.logger)
}
