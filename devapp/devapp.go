// Package devapp assembles a whole kooflow in one process — embedded Temporal and UI,
// store, KooDrive (sandbox or real), worker, webhook and metrics — for `kooflow dev` and
// for the integration tests. Its parts are built by package wiring, exactly as in the
// production `kooflow worker` and `kooflow webhook`; only the embedded Temporal and the
// KooDrive sandbox are its own.
package devapp

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/kooflow/kooflow/console"
	"github.com/kooflow/kooflow/devstack"
	"github.com/kooflow/kooflow/httpserver"
	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/koodrive/sandbox"
	"github.com/kooflow/kooflow/metrics"
	"github.com/kooflow/kooflow/payloadcodec"
	"github.com/kooflow/kooflow/smarthub"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/wiring"
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
	// UIWriteActions lets the embedded UI cancel, terminate and reset workflows
	// (devstack.Options.UIWriteActions); off by default.
	UIWriteActions bool
	// TemporalMemory bounds what the embedded server keeps in memory per workflow
	// (devstack.Options.Memory); the zero value keeps devstack's measured defaults.
	TemporalMemory devstack.MemoryBounds
	// WebhookAddr, MetricsAddr and SandboxAddr are listen addresses (":0" picks a port).
	WebhookAddr string
	MetricsAddr string
	SandboxAddr string
	// Pprof serves /debug/pprof/ on MetricsAddr (wiring.Config.Pprof); off by default.
	Pprof bool
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
	// KooDriveProbe is how often the worker asks KooDrive for the tenant's service status
	// (wiring.Config.KooDriveProbe): 0 its default, negative never — for tests that count
	// every call KooDrive receives.
	KooDriveProbe time.Duration
	// NoRelay leaves the intake queue undelivered: tests that play a relay's crash
	// windows deliver it themselves.
	NoRelay bool
	// MaxActive is the relay's admission cap (wiring.Config.MaxActive): 0 its default,
	// negative none.
	MaxActive int
	// WorkerOptions tune the Temporal worker.
	WorkerOptions sdkworker.Options
	// PayloadCodec encrypts Temporal payloads; nil takes payloadcodec.ForDev: the keys in
	// KOOFLOW_PAYLOAD_KEYS(_FILE), or the dev key kept in DataDir (created once), or none
	// when KOOFLOW_PAYLOAD_ENCRYPTION=off. PlainPayloads turns encryption off outright.
	PayloadCodec  *payloadcodec.Codec
	PlainPayloads bool
	// CodecAddr is where the codec server the embedded UI decodes payloads with listens
	// (default 127.0.0.1:0); it runs when payloads are encrypted and the UI is on.
	CodecAddr string
	// ConsoleAddr is where the operators' console listens (default 127.0.0.1:0); "-"
	// serves none.
	ConsoleAddr string
	Logger      *slog.Logger
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
	// Codec encrypts payloads (nil: in clear). CodecURL is the UI's codec server and
	// CodecTokenPath the file with its token (sign in at CodecURL/login), both empty
	// without one.
	Codec          *payloadcodec.Codec
	CodecURL       string
	CodecTokenPath string
	// ConsoleURL is the operators' console, ConsoleSignIn a one-time link that signs the
	// person at the terminal in as an admin; both empty without a console.
	ConsoleURL    string
	ConsoleSignIn string
	// Console serves ConsoleURL; it mints further sign-in links.
	Console *console.Console

	parts     *wiring.Parts
	worker    sdkworker.Worker
	intake    *wiring.Intake
	servers   []*httpserver.Server
	logger    *slog.Logger
	stackOpts devstack.Options
}

// Start brings every part up, in dependency order, and stops what it started if a later
// part fails. The parts are wiring's, as in `kooflow worker` and `kooflow webhook`; only
// the embedded Temporal and the KooDrive sandbox are dev's own.
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
		UIWriteActions: opts.UIWriteActions, Memory: opts.TemporalMemory,
	}
	if a.Codec = opts.PayloadCodec; a.Codec == nil && !opts.PlainPayloads {
		if a.Codec, err = payloadcodec.ForDev(os.Getenv, opts.DataDir); err != nil {
			return nil, err
		}
	}
	// The UI decodes payloads through a codec server: it must listen before the UI starts
	// (the UI is told its address), and it admits the UI's origin, known once the UI is up.
	var codecListener *httpserver.Bound
	if a.Codec != nil && opts.UIPort >= 0 {
		if codecListener, err = httpserver.Bind("codec-server", cmp.Or(opts.CodecAddr, "127.0.0.1:0")); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				codecListener.Close()
			}
		}()
		a.stackOpts.UICodec = devstack.UICodec{Endpoint: codecListener.URL, IncludeCredentials: true,
			DefaultErrorMessage: "Payloads are encrypted: sign in to kooflow's codec server to read them",
			DefaultErrorLink:    codecListener.URL + "/login"}
	}
	a.Stack, err = devstack.Start(ctx, a.stackOpts)
	if err != nil {
		return nil, err
	}
	if codecListener != nil {
		if err := a.serveCodec(codecListener, opts.DataDir); err != nil {
			return nil, err
		}
	}
	// A restart (StartTemporal) comes back where the clients look for it.
	if _, port, err := net.SplitHostPort(a.Stack.HostPort()); err == nil {
		a.stackOpts.FrontendPort, _ = strconv.Atoi(port)
	}
	cfg := a.config(opts)
	if a.parts, err = wiring.Open(ctx, cfg); err != nil {
		return nil, err
	}
	a.Store, a.Metrics = a.parts.Store, a.parts.Metrics
	if a.Client, err = a.parts.Dial(ctx); err != nil {
		return nil, fmt.Errorf("embedded Temporal: %w", err)
	}
	a.parts.EnsureSearchAttributes(ctx, a.Client)

	a.KooDriveURL = opts.KooDriveURL
	if a.KooDriveURL == "" {
		a.Sandbox = sandbox.New(sandbox.Options{AccessToken: opts.KooDriveToken, UserID: opts.KooDriveUser, Apps: opts.KooDriveApps})
		srv, err := httpserver.Start("koodrive-sandbox", opts.SandboxAddr, a.Sandbox.Handler(), a.logger)
		if err != nil {
			return nil, err
		}
		a.servers = append(a.servers, srv)
		a.KooDriveURL = srv.URL
	}
	a.parts.Config.KooDrive.BaseURL = a.KooDriveURL
	if a.worker, err = a.parts.StartWorker(a.Client); err != nil {
		return nil, err
	}
	a.Starter = &starter.Starter{Client: a.Client, Store: a.Store}
	if a.intake, err = a.parts.StartIntake(ctx, a.Client, nil); err != nil {
		return nil, err
	}
	a.Intake, a.Relay, a.WebhookURL = a.intake.Intake, a.intake.Relay, a.intake.URL
	ms, err := a.parts.ServeMetrics(nil)
	if err != nil {
		return nil, err
	}
	a.servers = append(a.servers, ms)
	a.MetricsURL = ms.URL
	if opts.ConsoleAddr != "-" {
		if err := a.serveConsole(cmp.Or(opts.ConsoleAddr, "127.0.0.1:0")); err != nil {
			return nil, err
		}
	}
	if _, err := starter.ApplySchedule(ctx, a.Client, opts.Schedule); err != nil {
		return nil, err
	}
	return a, nil
}

// serveConsole serves the operators' console on addr, over the dev process's store and
// Temporal client, with a session key made for this run (sessions end with it) and a
// one-time admin sign-in link for the banner.
func (a *App) serveConsole(addr string) error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("console session key: %w", err)
	}
	c, err := console.New(console.Config{
		Store: a.Store, SessionKey: key, TemporalUIURL: a.Stack.UIURL(), Namespace: a.Stack.Namespace(), Logger: a.logger,
		Operator: func(actor starter.Actor) console.Operator {
			return &starter.Operator{Store: a.Store, Actor: actor, Dial: func(context.Context) (client.Client, error) { return a.Client, nil }}
		},
	})
	if err != nil {
		return err
	}
	srv, err := httpserver.Start("console", addr, c, a.logger)
	if err != nil {
		return err
	}
	a.servers = append(a.servers, srv)
	a.Console, a.ConsoleURL = c, srv.URL
	a.ConsoleSignIn = srv.URL + c.SignInLink(devActor(), console.RoleAdmin)
	return nil
}

// devActor names the person at kooflow dev's terminal in the audit log: their
// operating-system user, signed in with the banner's link.
func devActor() string { return starter.CLIActor().Name + " (kooflow dev link)" }

// serveCodec serves the UI's codec server on l: the payload codec behind the dev token
// (kept in dataDir, created once), for the embedded UI's origin only.
func (a *App) serveCodec(l *httpserver.Bound, dataDir string) error {
	path, err := payloadcodec.EnsureDevToken(dataDir)
	if err != nil {
		return err
	}
	token, err := payloadcodec.TokenFromEnv(func(name string) string {
		if name == payloadcodec.EnvCodecTokenFile {
			return path
		}
		return ""
	})
	if err != nil {
		return err
	}
	h, err := payloadcodec.NewHandler(payloadcodec.HandlerOptions{Codec: a.Codec, Token: token, AllowedOrigins: []string{a.Stack.UIURL()}, Logger: a.logger})
	if err != nil {
		return err
	}
	a.servers = append(a.servers, l.Serve(h, a.logger))
	a.CodecURL, a.CodecTokenPath = l.URL, path
	return nil
}

// config is the wiring configuration of a dev process on its embedded Temporal. The
// KooDrive base URL is set once the sandbox, if any, listens.
func (a *App) config(opts Options) wiring.Config {
	stack := a.Stack
	dsn := opts.DB
	if dsn == "" {
		dsn = "sqlite:" + filepath.Join(opts.DataDir, "kooflow.db")
	}
	return wiring.Config{
		DB: dsn, DataDir: opts.DataDir,
		Temporal:      client.Options{HostPort: stack.HostPort(), Namespace: stack.Namespace()},
		KooDrive:      koodrive.Config{BaseURL: opts.KooDriveURL, Auth: opts.KooDriveAuth, AccessToken: opts.KooDriveToken, UserID: opts.KooDriveUser},
		KooGalleryKey: opts.KooGalleryKey, SmartHubAPIKey: opts.SmartHubAPIKey, SmartHubSignatureMode: opts.SmartHubSignatureMode,
		WebhookAddr: opts.WebhookAddr, MetricsAddr: opts.MetricsAddr, Pprof: opts.Pprof,
		RelayOwner: "dev", NoRelay: opts.NoRelay, MaxActive: opts.MaxActive, NotifyWindow: opts.NotifyWindow, WorkerOptions: opts.WorkerOptions, KooDriveProbe: opts.KooDriveProbe,
		Codec: a.Codec, Logger: opts.Logger,
	}
}

// Stop shuts everything down in reverse order. The data directory is kept, so a new
// Start resumes unfinished workflows.
func (a *App) Stop() {
	if a.intake != nil {
		a.intake.Stop()
		a.intake = nil
	}
	for i := len(a.servers) - 1; i >= 0; i-- {
		a.servers[i].Shutdown()
	}
	a.servers = nil
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
	if a.parts != nil {
		a.parts.Close()
		a.parts, a.Store = nil, nil
	}
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
