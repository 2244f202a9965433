// Package devapp assembles a whole kooflow in one process — embedded Temporal and UI,
// store, KooDrive (sandbox or real), worker, webhook and metrics — for `kooflow dev` and
// for the integration tests, so that both run exactly the same wiring.
package devapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/devstack"
	"github.com/kooflow/kooflow/httpserver"
	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/koodrive/sandbox"
	"github.com/kooflow/kooflow/metrics"
	"github.com/kooflow/kooflow/smarthub"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/webhook"
	"github.com/kooflow/kooflow/worker"
)

// Options configure a dev process.
type Options struct {
	// DataDir holds temporal.db, kooflow.db (unless DB is set) and temporal.log.
	DataDir string
	// DB overrides the kooflow store (sqlite:PATH or postgres://...).
	DB string
	// TemporalPort and UIPort: 0 picks free ports; UIPort -1 disables the UI.
	TemporalPort int
	UIPort       int
	// WebhookAddr, MetricsAddr and SandboxAddr are listen addresses (":0" picks a port).
	WebhookAddr string
	MetricsAddr string
	SandboxAddr string
	// KooGalleryKey verifies KooGallery calls and signs the answers.
	KooGalleryKey string
	// SmartHubAPIKey authenticates SmartHub pushes; SmartHubSignatureMode defaults to log.
	SmartHubAPIKey        string
	SmartHubSignatureMode smarthub.SignatureMode
	// KooDriveURL points at a real KooDrive (or a test's own sandbox); empty runs the
	// embedded sandbox with KooDriveToken and KooDriveUser as its credentials.
	KooDriveURL   string
	KooDriveToken string
	KooDriveUser  string
	// KooDriveAuth signs every call to KooDrive; nil sends KooDriveToken as a static
	// bearer token.
	KooDriveAuth koodrive.Signer
	// KooDriveApps are the app IDs and secrets whose §7 signatures the embedded sandbox
	// accepts.
	KooDriveApps map[string]string
	// Schedule configures the monthly reconciliation schedule, applied at start.
	Schedule starter.ScheduleConfig
	// NotifyWindow shortens the one-hour rule for reliability runs; 0 keeps the hour.
	NotifyWindow time.Duration
	// NoRelay leaves the intake queue undelivered: tests that play a relay's crash
	// windows deliver it themselves.
	NoRelay bool
	// WorkerOptions tune the Temporal worker.
	WorkerOptions sdkworker.Options
	Logger        *slog.Logger
}

// App is a running dev process.
type App struct {
	Stack  *devstack.Stack
	Client client.Client
	Store  *store.Store
	// Intake commits accepted expiries and stops; Relay starts them in Temporal.
	Intake  *starter.Intake
	Relay   *starter.Relay
	Starter *starter.Starter
	Metrics *metrics.Metrics
	// Sandbox is the embedded KooDrive, nil when KooDriveURL was given.
	Sandbox     *sandbox.Sandbox
	KooDriveURL string
	WebhookURL  string
	MetricsURL  string

	worker      sdkworker.Worker
	servers     []*httpserver.Server
	closers     []io.Closer
	logger      *slog.Logger
	stackOpts   devstack.Options
	stopRelay   context.CancelFunc
	relayExited chan struct{}
}

// Start brings every part up, in dependency order, and stops what it started if a later
// part fails.
func Start(ctx context.Context, opts Options) (app *App, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.KooGalleryKey == "" {
		return nil, errors.New("devapp: KooGalleryKey is required")
	}
	a := &App{logger: opts.Logger}
	defer func() {
		if err != nil {
			a.Stop()
		}
	}()

	a.stackOpts = devstack.Options{
		DataDir: opts.DataDir, FrontendPort: opts.TemporalPort, UIPort: opts.UIPort, SearchAttributes: starter.SearchAttributes(),
	}
	a.Stack, err = devstack.Start(ctx, a.stackOpts)
	if err != nil {
		return nil, err
	}
	// A restart (StartTemporal) comes back where the clients look for it.
	if _, port, err := net.SplitHostPort(a.Stack.HostPort()); err == nil {
		a.stackOpts.FrontendPort, _ = strconv.Atoi(port)
	}
	a.Metrics = metrics.New()
	handler, closer := a.Metrics.TemporalHandler()
	a.closers = append(a.closers, closer)
	clientOpts := client.Options{
		HostPort: a.Stack.HostPort(), Namespace: a.Stack.Namespace(), Logger: sdklog.NewStructuredLogger(opts.Logger),
		MetricsHandler: handler,
	}
	a.Client, err = client.DialContext(ctx, clientOpts)
	if err != nil {
		return nil, fmt.Errorf("connect to the embedded Temporal: %w", err)
	}
	if err := starter.EnsureSearchAttributes(ctx, a.Client, a.Stack.Namespace()); err != nil {
		return nil, err
	}
	dsn := opts.DB
	if dsn == "" {
		dsn = "sqlite:" + filepath.Join(opts.DataDir, "kooflow.db")
	}
	if a.Store, err = store.Open(ctx, dsn); err != nil {
		return nil, err
	}
	a.Metrics.RegisterStore(a.Store)

	a.KooDriveURL = opts.KooDriveURL
	if a.KooDriveURL == "" {
		a.Sandbox = sandbox.New(sandbox.Options{AccessToken: opts.KooDriveToken, UserID: opts.KooDriveUser, Apps: opts.KooDriveApps})
		if a.KooDriveURL, err = a.serve("koodrive-sandbox", opts.SandboxAddr, a.Sandbox.Handler()); err != nil {
			return nil, err
		}
	}
	kd, err := koodrive.New(koodrive.Config{BaseURL: a.KooDriveURL, Auth: opts.KooDriveAuth, AccessToken: opts.KooDriveToken, UserID: opts.KooDriveUser,
		Observe: a.Metrics.ObserveKooDrive})
	if err != nil {
		return nil, err
	}

	a.worker = worker.New(a.Client, worker.Dependencies{
		Expiration: &activities.Expiration{Store: a.Store, KooDrive: kd, Logger: opts.Logger, Metrics: a.Metrics},
		Reconciliation: &activities.Reconciliation{Store: a.Store, KooDrive: kd, Dir: filepath.Join(opts.DataDir, "reconciliation"),
			Logger: opts.Logger, Metrics: a.Metrics},
	}, opts.WorkerOptions)
	if err := a.worker.Start(); err != nil {
		a.worker = nil
		return nil, fmt.Errorf("start Temporal worker: %w", err)
	}
	a.Starter = &starter.Starter{Client: a.Client, Store: a.Store}
	a.Relay = &starter.Relay{Store: a.Store, Client: a.Client, Owner: "dev", Logger: opts.Logger,
		Observe: a.Metrics.RegisterIntake(a.Store).ObserveRelay}
	a.Intake = &starter.Intake{Store: a.Store, Nudge: a.Relay.Nudge, NotifyWindow: opts.NotifyWindow}
	if !opts.NoRelay {
		relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
		a.stopRelay, a.relayExited = stopRelay, make(chan struct{})
		go func() {
			defer close(a.relayExited)
			a.Relay.Run(relayCtx)
		}()
	}
	router := webhook.NewRouter(webhook.Config{
		KooGalleryKey: opts.KooGalleryKey, SmartHubAPIKey: opts.SmartHubAPIKey, SmartHubSignatureMode: opts.SmartHubSignatureMode,
		Store: a.Store, Intake: a.Intake, Temporal: a.Client, Metrics: a.Metrics, Logger: opts.Logger,
	})
	if a.WebhookURL, err = a.serve("webhook", opts.WebhookAddr, router); err != nil {
		return nil, err
	}
	if a.MetricsURL, err = a.serve("metrics", opts.MetricsAddr, a.Metrics.Handler()); err != nil {
		return nil, err
	}
	if _, err := starter.ApplySchedule(ctx, a.Client, opts.Schedule); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *App) serve(name, addr string, h http.Handler) (string, error) {
	srv, err := httpserver.Start(name, addr, h, a.logger)
	if err != nil {
		return "", err
	}
	a.servers = append(a.servers, srv)
	return srv.URL, nil
}

// Stop shuts everything down in reverse order. The data directory is kept, so a new
// Start resumes unfinished workflows.
func (a *App) Stop() {
	for i := len(a.servers) - 1; i >= 0; i-- {
		a.servers[i].Shutdown()
	}
	a.servers = nil
	if a.stopRelay != nil {
		a.stopRelay()
		<-a.relayExited
		a.stopRelay = nil
	}
	if a.worker != nil {
		a.worker.Stop()
		a.worker = nil
	}
	if a.Client != nil {
		a.Client.Close()
		a.Client = nil
	}
	if a.Stack != nil {
		if err := a.Stack.Stop(); err != nil {
			a.logger.Warn("Temporal server stop", "error", err)
		}
		a.Stack = nil
	}
	if a.Store != nil {
		_ = a.Store.Close()
		a.Store = nil
	}
	for _, c := range a.closers {
		_ = c.Close()
	}
	a.closers = nil
}

// StopTemporal stops the embedded Temporal server and nothing else: the webhook keeps
// accepting, the relay backs off and the worker retries its polls, as in a Temporal
// outage. StartTemporal brings it back on the same ports and data.
func (a *App) StopTemporal() error {
	if a.Stack == nil {
		return errors.New("devapp: Temporal is not running")
	}
	err := a.Stack.Stop()
	a.Stack = nil
	return err
}

// StartTemporal restarts the embedded Temporal server after StopTemporal.
func (a *App) StartTemporal(ctx context.Context) error {
	if a.Stack != nil {
		return errors.New("devapp: Temporal is already running")
	}
	stack, err := devstack.Start(ctx, a.stackOpts)
	if err != nil {
		return fmt.Errorf("restart the embedded Temporal: %w", err)
	}
	a.Stack = stack
	return nil
}
