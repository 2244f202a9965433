package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/devapp"
	"github.com/kooflow/kooflow/devstack"
	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/metrics"
	"github.com/kooflow/kooflow/payloadcodec"
	"github.com/kooflow/kooflow/smarthub"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/wiring"
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
	// uiWriteActions lets the embedded Temporal UI cancel, terminate and reset workflows.
	uiWriteActions bool
	consoleAddr    string
}

func newDevCommand() *cobra.Command {
	var f devFlags
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything in one process: Temporal server and UI, worker, webhook, metrics, KooDrive sandbox",
		Long: `Runs a complete kooflow on this machine with nothing else installed: an embedded Temporal
server on SQLite in --data-dir (workflows survive a restart), the Temporal UI, a worker, the
webhook receiver, /metrics, and — unless KOODRIVE_BASE_URL is set — a local KooDrive sandbox.
Ctrl-C stops it; starting it again on the same --data-dir resumes unfinished workflows.

Every flag can also be set by an environment variable (a flag given wins):
  KOOFLOW_DATA_DIR            --data-dir
  KOOFLOW_TEMPORAL_PORT       --temporal-port
  KOOFLOW_UI_PORT             --ui-port
  KOOFLOW_UI_WRITE_ACTIONS    --ui-write-actions (on or off)
  KOOFLOW_CONSOLE_ADDR        --console-addr
  KOOFLOW_WEBHOOK_ADDR        --webhook-addr
  KOOFLOW_METRICS_ADDR        --metrics-addr
  KOOFLOW_SANDBOX_ADDR        --sandbox-addr
  KOOFLOW_SCHEDULE_CRON       --cron
  KOOFLOW_SCHEDULE_TIMEZONE   --timezone
Other variables it honours:
  KOOFLOW_DB                  the kooflow store (default: SQLite kooflow.db in --data-dir)
  KOOGALLERY_KEY              the KooGallery seller key (default: a dev key kept in --data-dir)
  SMARTHUB_API_KEY            the SmartHub API key (default: a dev key kept in --data-dir)
  SMARTHUB_SIGNATURE_MODE     log (default), enforce or off
  KOODRIVE_BASE_URL           a real KooDrive instead of the sandbox, with KOODRIVE_USER_ID and
                              KOODRIVE_AUTH, KOODRIVE_APP_ID, KOODRIVE_APP_SECRET(_FILE),
                              KOODRIVE_ACCESS_TOKEN or KOODRIVE_ACCESS_TOKEN_FILE (the worker's)
  KOOFLOW_PAYLOAD_KEYS        the keys that encrypt Temporal payloads, id:base64key[,…] (first
                              encrypts, all decrypt), or KOOFLOW_PAYLOAD_KEYS_FILE; default: a
                              dev key kept in --data-dir (payload-keys)
  KOOFLOW_PAYLOAD_ENCRYPTION  off stores payloads in clear
  KOOFLOW_LOG_LEVEL           debug for debug logs
  KOOFLOW_TEMPORAL_HISTORY_CACHE
                              workflows the embedded Temporal keeps in its history cache
                              (default ` + strconv.Itoa(devstack.DefaultHistoryCacheEntries) + `; Temporal's own: 128,000)
  KOOFLOW_MAX_ACTIVE_EXPIRIES the most expiries Temporal works on at once; a month end's storm
                              waits in kooflow's queue and starts oldest first (default ` + strconv.Itoa(starter.DefaultMaxActive) + `;
                              off: no cap)
  KOOFLOW_PPROF               on serves /debug/pprof/ on the metrics address (off by default;
                              for diagnosis, with the metrics address on loopback)

The Temporal UI decodes the encrypted payloads through a codec server on 127.0.0.1 that admits
only the UI's origin and a browser signed in with the token kept in --data-dir (codec-token); the
banner says where to sign in.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkIntEnv("KOOFLOW_TEMPORAL_PORT", "KOOFLOW_UI_PORT"); err != nil {
				return err
			}
			if err := checkOnOffEnv("KOOFLOW_UI_WRITE_ACTIONS", metrics.PprofEnv); err != nil {
				return err
			}
			return runDev(cmd.Context(), f, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dataDir, "data-dir", envOr("KOOFLOW_DATA_DIR", "./kooflow-data"), "directory for the Temporal and kooflow databases (env KOOFLOW_DATA_DIR)")
	fl.IntVar(&f.temporalPort, "temporal-port", envInt("KOOFLOW_TEMPORAL_PORT", 7233), "Temporal frontend gRPC port (env KOOFLOW_TEMPORAL_PORT)")
	fl.IntVar(&f.uiPort, "ui-port", envInt("KOOFLOW_UI_PORT", 8233), "Temporal UI port, -1 disables the UI (env KOOFLOW_UI_PORT)")
	registerUIWriteActions(cmd, &f.uiWriteActions)
	fl.StringVar(&f.consoleAddr, "console-addr", envOr("KOOFLOW_CONSOLE_ADDR", "127.0.0.1:8280"), "operators' console listen address, - for none (env KOOFLOW_CONSOLE_ADDR)")
	fl.StringVar(&f.webhookAddr, "webhook-addr", envOr("KOOFLOW_WEBHOOK_ADDR", wiring.DefaultWebhookAddr), "webhook listen address (env KOOFLOW_WEBHOOK_ADDR)")
	fl.StringVar(&f.metricsAddr, "metrics-addr", envOr("KOOFLOW_METRICS_ADDR", wiring.DefaultMetricsAddr), "metrics listen address (env KOOFLOW_METRICS_ADDR)")
	f.schedule.register(cmd)
	fl.StringVar(&f.sandboxAddr, "sandbox-addr", envOr("KOOFLOW_SANDBOX_ADDR", "127.0.0.1:0"), "KooDrive sandbox listen address, port 0 = any free port (env KOOFLOW_SANDBOX_ADDR)")
	return cmd
}

// checkIntEnv refuses a set variable that is not a whole number, rather than quietly
// using the default in its place.
func checkIntEnv(names ...string) error {
	for _, name := range names {
		if v := os.Getenv(name); v != "" {
			if _, err := strconv.Atoi(v); err != nil {
				return fmt.Errorf("%s=%q is not a port number; unset it or give a number (-1 disables the UI)", name, v)
			}
		}
	}
	return nil
}

// registerUIWriteActions adds --ui-write-actions, off unless KOOFLOW_UI_WRITE_ACTIONS=on.
func registerUIWriteActions(cmd *cobra.Command, on *bool) {
	cmd.Flags().BoolVar(on, "ui-write-actions", os.Getenv("KOOFLOW_UI_WRITE_ACTIONS") == "on",
		"let the Temporal UI cancel, terminate, reset and signal workflows; off by default, as an expiry ended there is ended outside kooflow's rules — kooflow finds it and shows it terminated, see deploy/RUNBOOK.md (env KOOFLOW_UI_WRITE_ACTIONS=on)")
}

// checkOnOffEnv refuses a set variable that is neither on nor off.
func checkOnOffEnv(names ...string) error {
	for _, name := range names {
		if v := os.Getenv(name); v != "" && v != "on" && v != "off" {
			return fmt.Errorf("%s=%q: want on or off", name, v)
		}
	}
	return nil
}

// envInt is the whole number in the environment variable name, or def when it is unset
// (checkIntEnv refuses one that is not a number).
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// demoSubscriptions seed an empty dev registry so the banner's sample commands work.
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
	unlock, err := lockDataDir(dataDir)
	if err != nil {
		return err
	}
	defer unlock()
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
	kd, err := devKooDriveSettings(os.Getenv)
	if err != nil {
		return err
	}
	memory, err := devstack.MemoryBoundsFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	maxActive, err := wiring.ParseMaxActive(os.Getenv(wiring.MaxActiveEnv))
	if err != nil {
		return err
	}
	logger.Info("starting kooflow dev", "dataDir", dataDir, "temporalPort", f.temporalPort)
	app, err := devapp.Start(ctx, devapp.Options{
		DataDir: dataDir, DB: os.Getenv("KOOFLOW_DB"), TemporalPort: f.temporalPort, UIPort: f.uiPort, UIWriteActions: f.uiWriteActions, TemporalMemory: memory, MaxActive: maxActive,
		WebhookAddr: f.webhookAddr, MetricsAddr: f.metricsAddr, Pprof: os.Getenv(metrics.PprofEnv) == "on", SandboxAddr: f.sandboxAddr, KooGalleryKey: key,
		SmartHubAPIKey: smartHubKey, SmartHubSignatureMode: mode,
		KooDriveURL: kd.url, KooDriveToken: kd.token, KooDriveUser: kd.user, KooDriveAuth: kd.auth, KooDriveApps: kd.apps,
		Logger: logger, Schedule: f.schedule.config(), ConsoleAddr: f.consoleAddr,
	})
	if err != nil {
		return err
	}
	defer app.Stop()
	demo, err := seedDemo(ctx, app.Store, app.Sandbox != nil)
	if err != nil {
		return err
	}
	if demo && app.Sandbox == nil {
		logger.Warn("the registry holds kooflow dev's demo subscriptions (demo-0001, demo-0002, demo-sim-0001) while talking to a real KooDrive: they will be in the reconciliation statements it receives; start from an empty --data-dir or KOOFLOW_DB to leave them out")
	}
	ui := app.Stack.UIURL()
	if ui == "" {
		ui = "(disabled)"
	}
	kdLine := app.KooDriveURL + " (real KooDrive, from KOODRIVE_BASE_URL; " + kd.describe + ")"
	if app.Sandbox != nil {
		kdLine = app.KooDriveURL + " (sandbox; " + kd.describe + "; accepted calls: " + app.KooDriveURL + "/sandbox/notifications)"
	}
	printBanner(out, banner{
		temporal: app.Stack.HostPort(), namespace: app.Stack.Namespace(), ui: ui, webhook: app.WebhookURL, metrics: app.MetricsURL,
		koodrive: kdLine, dataDir: f.dataDir, demo: demo, sandbox: app.Sandbox != nil, payloads: payloadsLine(app, f.dataDir, os.Getenv),
		console: consoleLine(app),
		keys: []bannerKey{
			{label: "KooGallery key", env: "KOOGALLERY_KEY", value: key, file: "koogallery.key"},
			{label: "SmartHub API key", env: "SMARTHUB_API_KEY", value: smartHubKey, file: "smarthub.key"},
		},
	}, os.Getenv)
	<-ctx.Done()
	logger.Info("stopping: webhook, worker, Temporal (unfinished workflows resume on the next start)")
	return nil
}

// consoleLine is the banner's console line: where it is, and the link that signs the
// person at this terminal in (once; restart kooflow dev for a new one).
func consoleLine(app *devapp.App) string {
	if app.ConsoleURL == "" {
		return "(disabled)"
	}
	return app.ConsoleURL + "\n                     sign in once, as admin: " + app.ConsoleSignIn
}

// devKooDrive is how kooflow dev talks to KooDrive.
type devKooDrive struct {
	// url is empty for the embedded sandbox.
	url, user, token string
	auth             koodrive.Signer
	// apps are the app credentials the sandbox accepts.
	apps map[string]string
	// describe names the credentials for the banner, never showing a secret.
	describe string
}

// devKooDriveSettings reads the KooDrive settings of kooflow dev. With KOODRIVE_BASE_URL
// it talks to that KooDrive with the worker's settings (koodrive.ConfigFromEnv). Otherwise
// it runs the sandbox, by default with §7 app signatures (KOODRIVE_APP_ID, default
// kooflow-dev; KOODRIVE_APP_SECRET, default a secret generated for this run), or in token
// mode when KOODRIVE_AUTH=token or a token variable is set: KOODRIVE_ACCESS_TOKEN (default
// dev-token, issued by the sandbox at start and, like KooDrive's, dead after 20 idle
// minutes) or KOODRIVE_ACCESS_TOKEN_FILE holding a token from POST /sandbox/tokens.
func devKooDriveSettings(getenv func(string) string) (devKooDrive, error) {
	if getenv(koodrive.EnvBaseURL) != "" {
		cfg, err := koodrive.ConfigFromEnv(getenv)
		if err != nil {
			return devKooDrive{}, fmt.Errorf("KOODRIVE_BASE_URL points kooflow dev at a real KooDrive: %w", err)
		}
		return devKooDrive{url: cfg.BaseURL, user: cfg.UserID, auth: cfg.Auth, describe: fmt.Sprint(cfg.Auth)}, nil
	}
	d := devKooDrive{user: envOrFrom(getenv, koodrive.EnvUserID, "dev-koodrive-user"), token: envOrFrom(getenv, koodrive.EnvAccessToken, "dev-token")}
	mode := getenv(koodrive.EnvAuth)
	if mode == "" {
		mode = koodrive.AuthApp
		if getenv(koodrive.EnvAccessToken) != "" || getenv(koodrive.EnvAccessTokenFile) != "" {
			mode = koodrive.AuthToken
		}
	}
	switch mode {
	case koodrive.AuthApp:
		id, secret := envOrFrom(getenv, koodrive.EnvAppID, "kooflow-dev"), getenv(koodrive.EnvAppSecret)
		generated := ""
		if secret == "" {
			buf := make([]byte, 32)
			if _, err := rand.Read(buf); err != nil {
				return devKooDrive{}, err
			}
			secret, generated = hex.EncodeToString(buf), ", secret generated for this run"
		}
		d.apps = map[string]string{id: secret}
		d.auth = koodrive.NewAppSignature(id, secret)
		d.describe = "app signature, KOODRIVE_APP_ID " + id + generated
	case koodrive.AuthToken:
		if file := getenv(koodrive.EnvAccessTokenFile); file != "" {
			d.auth = koodrive.NewTokenFile(file)
		} else {
			d.auth = koodrive.NewStaticToken(d.token)
		}
		d.describe = fmt.Sprint(d.auth) + "; tokens die 20 minutes after their last use, POST /sandbox/tokens issues one"
	default:
		return devKooDrive{}, fmt.Errorf("%s=%q is neither %s nor %s", koodrive.EnvAuth, mode, koodrive.AuthApp, koodrive.AuthToken)
	}
	return d, nil
}

func envOrFrom(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// seedDemo adds the demo subscriptions, so the banner's sample commands work — only into
// an empty registry and only when kooflow dev runs the KooDrive sandbox: in a registry of
// real subscriptions, or with a real KooDrive, they would end up in the reconciliation
// statements KooDrive receives. It reports whether the demo subscriptions are in the
// registry (added now or by an earlier run).
func seedDemo(ctx context.Context, st *store.Store, sandbox bool) (bool, error) {
	errNotEmpty := errors.New("registry is not empty")
	err := st.EachSubscription(ctx, func(store.Subscription) error { return errNotEmpty })
	if err != nil && !errors.Is(err, errNotEmpty) {
		return false, fmt.Errorf("look at the registry before seeding demo subscriptions: %w", err)
	}
	if sandbox && err == nil {
		demo := slices.Clone(demoSubscriptions)
		for i := range demo {
			demo[i].ExpireTime = time.Now().UTC().Truncate(24 * time.Hour)
		}
		origin := store.ImportOrigin{Actor: "kooflow dev", Source: "the demo registry"}
		if _, err := st.ImportSubscriptions(ctx, store.SubscriptionRows(demo), store.ImportOptions{Origin: origin}); err != nil {
			return false, fmt.Errorf("seed the demo subscriptions: %w", err)
		}
	}
	_, err = st.SubscriptionByInstance(ctx, demoSubscriptions[0].InstanceID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// payloadsLine says in the banner how Temporal payloads are protected and how the UI
// decodes them, naming key ids and files, never a key or the codec token.
func payloadsLine(app *devapp.App, dataDir string, getenv func(string) string) string {
	if app.Codec == nil {
		return "NOT encrypted (KOOFLOW_PAYLOAD_ENCRYPTION=off): inputs with carrier user IDs and ICCIDs are stored in clear"
	}
	ring := app.Codec.Keyring()
	from := "dev key kept in " + filepath.Join(dataDir, payloadcodec.DevKeyFile)
	if getenv(payloadcodec.EnvKeys) != "" || getenv(payloadcodec.EnvKeysFile) != "" {
		from = "keys from " + payloadcodec.EnvKeys + " or " + payloadcodec.EnvKeysFile + " (not shown)"
	}
	line := fmt.Sprintf("encrypted (AES-256-GCM, key %s; %s)", ring.EncryptionKeyID(), from)
	if app.CodecURL != "" {
		line += fmt.Sprintf("\n                     the UI decodes them once you sign in at %s/login with the token in %s", app.CodecURL, app.CodecTokenPath)
	}
	return line
}

// banner is what kooflow dev prints once everything runs.
type banner struct {
	temporal, namespace, ui, webhook, metrics, koodrive, dataDir, payloads string
	// console is the console's line: its address and the one-time sign-in link.
	console string
	keys    []bannerKey
	// demo says the demo subscriptions are in the registry; sandbox, that KooDrive is the sandbox.
	demo, sandbox bool
}

// bannerKey is one of the intake's secrets.
type bannerKey struct {
	label, env, value, file string
}

// line shows a key only when kooflow dev generated it (it is then a throw-away dev key,
// kept in the data directory); a key from the environment is named, never shown.
func (k bannerKey) line(getenv func(string) string, dataDir string) string {
	if getenv(k.env) != "" {
		return fmt.Sprintf("  %-17s  from %s (not shown)", k.label, k.env)
	}
	return fmt.Sprintf("  %-17s  %s   (dev key, stored in %s)", k.label, k.value, filepath.Join(dataDir, k.file))
}

func printBanner(out io.Writer, b banner, getenv func(string) string) {
	var keys strings.Builder
	for _, k := range b.keys {
		keys.WriteString(k.line(getenv, b.dataDir) + "\n")
	}
	fmt.Fprintf(out, `
kooflow dev is running. Ctrl-C stops it; workflows resume on the next start.

  Temporal frontend  %s (namespace %s)
  Console            %s
  Temporal UI        %s
  Webhook            %s/koogallery/produce   (health %s/healthz, readiness %s/readyz)
  Metrics            %s/metrics
  KooDrive           %s
  Data directory     %s
  Payloads           %s
%s
`, b.temporal, b.namespace, b.console, b.ui, b.webhook, b.webhook, b.webhook, b.metrics, b.koodrive, b.dataDir, b.payloads, keys.String())
	instance, sim, pkg := "demo-0001", "8986000000000000001", "PKG-DEMO"
	switch {
	case b.demo:
		fmt.Fprintf(out, `Demo subscriptions demo-0001 and demo-0002 (and SIM 8986000000000000001 with package PKG-DEMO) are
in the registry. Send a signed sample expiration:
`)
	case b.sandbox:
		instance, sim, pkg = "<instanceId>", "<gIccid>", "<packageCode>"
		fmt.Fprintf(out, `The registry already held subscriptions, so no demo subscriptions were added. Send a signed
expiration for one of yours:
`)
	default:
		instance, sim, pkg = "<instanceId>", "<gIccid>", "<packageCode>"
		fmt.Fprintf(out, `No demo subscriptions are added while kooflow dev talks to a real KooDrive (they would be in its
reconciliation statements). Import yours (kooflow registry import FILE --data-dir %s), then send a
signed expiration:
`, b.dataDir)
	}
	fmt.Fprintf(out, `
  go run ./cmd/kooflow send koogallery-expire --instance %s --webhook %s --data-dir %s

or a SmartHub "Prepaid Service Package Expired" push:

  go run ./cmd/kooflow send smarthub-expired --iccid %s --package %s --webhook %s --data-dir %s

then watch it in the console (sign in with the link above), in the Temporal UI (%s) or with:

  go run ./cmd/kooflow status --data-dir %s

Operator commands given --data-dir %s find this Temporal frontend by themselves; elsewhere set
TEMPORAL_ADDRESS=%s (or --temporal-address).

`, instance, b.webhook, b.dataDir, sim, pkg, b.webhook, b.dataDir, b.ui, b.dataDir, b.dataDir, b.temporal)
}
