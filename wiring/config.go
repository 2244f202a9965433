// Package wiring builds the parts of a kooflow process — store, Temporal client options,
// metrics registry, worker, webhook intake and relay, metrics server, search attributes —
// from one Config, so that `kooflow dev`, `kooflow worker`, `kooflow webhook` and the
// tests run the same wiring. FromEnv fills a Config for the production commands; devapp
// fills one directly.
package wiring

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/metrics"
	"github.com/kooflow/kooflow/payloadcodec"
	"github.com/kooflow/kooflow/smarthub"
)

// Default listen addresses and data directory of the production processes. The
// listeners are on loopback unless configured otherwise: /metrics must not reach the
// public network by accident.
const (
	DefaultWebhookAddr = "127.0.0.1:8080"
	DefaultMetricsAddr = "127.0.0.1:9090"
	DefaultDataDir     = "./kooflow-data"
)

// DefaultWorkerStopTimeout is how long `kooflow worker` lets the activities in flight
// finish after SIGTERM or SIGINT before it stops them (KOOFLOW_WORKER_STOP_TIMEOUT): longer
// than a KooDrive notification may take (its attempt's 20 s start-to-close timeout), so a
// notification in flight is finished, not repeated. A longer activity (a reconciliation
// step) is abandoned and retried by Temporal on another worker.
const DefaultWorkerStopTimeout = 30 * time.Second

// DefaultKooDriveProbe is how often the worker asks KooDrive for the tenant's service
// status when KOOFLOW_KOODRIVE_PROBE_INTERVAL does not say: a refused credential or a
// frozen tenant is on the console's overview within five minutes, for 288 small calls a
// day.
const DefaultKooDriveProbe = 5 * time.Minute

// Config is what a kooflow process is built from. A part reads only the fields it uses.
type Config struct {
	// DB is kooflow's store: sqlite:PATH or a postgres:// URL.
	DB string
	// DataDir holds the worker's reconciliation statements and discrepancy reports, in its
	// reconciliation folder.
	DataDir string
	// Temporal says where and how to connect: address, namespace, TLS, credentials. Open
	// completes it (logger, metrics, converters) in one place.
	Temporal client.Options
	// Codec encrypts every payload and failure message the process's clients and
	// workers send, and decrypts what they receive; nil stores them in clear
	// (KOOFLOW_PAYLOAD_ENCRYPTION=off), which Open logs as a warning.
	Codec *payloadcodec.Codec
	// KooDrive is the worker's KooDrive client configuration; Observe is set by the
	// wiring.
	KooDrive koodrive.Config
	// KooGalleryKey verifies KooGallery calls and signs the answers.
	KooGalleryKey string
	// SmartHubAPIKey authenticates SmartHub pushes (empty: they are refused);
	// SmartHubSignatureMode says what to do with their signatures.
	SmartHubAPIKey        string
	SmartHubSignatureMode smarthub.SignatureMode
	// WebhookAddr and MetricsAddr are listen addresses (":0" picks a port).
	WebhookAddr string
	MetricsAddr string
	// Pprof serves /debug/pprof/ on MetricsAddr (KOOFLOW_PPROF=on): heap, goroutine and
	// CPU profiles for diagnosis. Off by default; keep MetricsAddr on loopback when on.
	Pprof bool
	// RelayOwner names the intake relay in the store's leases.
	RelayOwner string
	// NoRelay leaves the intake queue undelivered, for tests that deliver it themselves.
	NoRelay bool
	// MaxActive is the relay's admission cap (KOOFLOW_MAX_ACTIVE_EXPIRIES): 0 its default
	// (starter.DefaultMaxActive), negative none.
	MaxActive int
	// RecordRetention is how long the delivery log and the audit log keep a row; the
	// intake prunes older rows in the background. 0 means DefaultRecordRetention.
	RecordRetention time.Duration
	// NotifyWindow shortens the one-hour rule for reliability runs; 0 keeps the hour.
	NotifyWindow time.Duration
	// WorkerOptions tune the Temporal worker.
	WorkerOptions sdkworker.Options
	// KooDriveProbe is how often the worker asks KooDrive for the tenant's service status
	// (worker.KooDriveProbe); 0 means DefaultKooDriveProbe, negative never.
	KooDriveProbe time.Duration
	// Logger receives the process's log; nil means slog.Default().
	Logger *slog.Logger
	// Console configures `kooflow console` (console.go).
	Console ConsoleConfig
}

// Role names a production process, for FromEnv.
type Role string

// The production processes: `kooflow worker` and `kooflow webhook`.
const (
	Worker  Role = "worker"
	Webhook Role = "webhook"
)

// FromEnv fills a Config for the process r from env, a list of KEY=VALUE as os.Environ
// returns it: TEMPORAL_* (the SDK's standard client configuration; default
// 127.0.0.1:7233, namespace default), KOOFLOW_DB, KOOFLOW_DATA_DIR, KOOFLOW_METRICS_ADDR,
// KOOFLOW_PPROF (on or off, default off);
// for the worker the KooDrive settings (koodrive.ConfigFromEnv, which reads the app secret
// from KOODRIVE_APP_SECRET or the file KOODRIVE_APP_SECRET_FILE names) and
// KOOFLOW_WORKER_STOP_TIMEOUT (default DefaultWorkerStopTimeout); for the webhook
// KOOGALLERY_KEY, SMARTHUB_API_KEY, SMARTHUB_SIGNATURE_MODE, KOOFLOW_WEBHOOK_ADDR and
// KOOFLOW_RECORD_RETENTION; for the console its listener, public URL, session key and
// OIDC sign-in (consoleFromEnv); for
// every process the payload keys (payloadcodec.FromEnv: KOOFLOW_PAYLOAD_KEYS or
// KOOFLOW_PAYLOAD_KEYS_FILE, or KOOFLOW_PAYLOAD_ENCRYPTION=off). It
// names every missing or malformed variable at once. The Logger is left to the caller.
func FromEnv(env []string, r Role) (Config, error) {
	vars := newEnvMap(env)
	cfg := Config{
		DB:          vars.get("KOOFLOW_DB"),
		DataDir:     vars.or("KOOFLOW_DATA_DIR", DefaultDataDir),
		MetricsAddr: vars.or("KOOFLOW_METRICS_ADDR", DefaultMetricsAddr),
	}
	required := []string{"KOOFLOW_DB"}
	var problems []error
	pprof, err := vars.onOff(metrics.PprofEnv)
	problems = append(problems, err)
	cfg.Pprof = pprof
	switch r {
	case Worker:
		kd, err := koodrive.ConfigFromEnv(vars.get)
		problems = append(problems, err)
		cfg.KooDrive = kd
		cfg.WorkerOptions.WorkerStopTimeout, err = vars.duration("KOOFLOW_WORKER_STOP_TIMEOUT", DefaultWorkerStopTimeout)
		problems = append(problems, err)
		if vars.get("KOOFLOW_KOODRIVE_PROBE_INTERVAL") == "off" {
			cfg.KooDriveProbe = -1
		} else if cfg.KooDriveProbe, err = vars.duration("KOOFLOW_KOODRIVE_PROBE_INTERVAL", DefaultKooDriveProbe); err != nil {
			problems = append(problems, fmt.Errorf("%w, or off", err))
		}
	case Webhook:
		required = append(required, "KOOGALLERY_KEY")
		cfg.KooGalleryKey = vars.get("KOOGALLERY_KEY")
		cfg.SmartHubAPIKey = vars.get("SMARTHUB_API_KEY")
		cfg.WebhookAddr = vars.or("KOOFLOW_WEBHOOK_ADDR", DefaultWebhookAddr)
		host, _ := os.Hostname()
		cfg.RelayOwner = fmt.Sprintf("webhook@%s:%d", host, os.Getpid())
		mode, err := smarthub.ParseSignatureMode(vars.get("SMARTHUB_SIGNATURE_MODE"))
		problems = append(problems, err)
		cfg.SmartHubSignatureMode = mode
		retention, err := ParseRetention(vars.get("KOOFLOW_RECORD_RETENTION"))
		problems = append(problems, err)
		cfg.RecordRetention = retention
		cfg.MaxActive, err = ParseMaxActive(vars.get(MaxActiveEnv))
		problems = append(problems, err)
	case Console:
		cc, errs := consoleFromEnv(vars)
		problems = append(problems, errs...)
		cfg.Console = cc
	default:
		return Config{}, fmt.Errorf("wiring: unknown process %q", r)
	}
	var missing []string
	for _, name := range required {
		if vars.get(name) == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		problems = append([]error{fmt.Errorf("missing required environment variable(s): %s", strings.Join(missing, ", "))}, problems...)
	}
	temporal, err := envconfig.LoadClientOptions(envconfig.LoadClientOptionsRequest{EnvLookup: vars})
	if err != nil {
		problems = append(problems, fmt.Errorf("read Temporal client configuration (TEMPORAL_*): %w", err))
	}
	cfg.Temporal = TemporalDefaults(temporal)
	codec, err := payloadcodec.FromEnv(vars.get)
	problems = append(problems, err)
	cfg.Codec = codec
	if err := errors.Join(problems...); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// MaxActiveEnv sets the relay's admission cap.
const MaxActiveEnv = "KOOFLOW_MAX_ACTIVE_EXPIRIES"

// ParseMaxActive reads KOOFLOW_MAX_ACTIVE_EXPIRIES: a whole number of expiries at least
// 1, or off for no cap (-1); empty is 0, the relay's default.
func ParseMaxActive(v string) (int, error) {
	switch v {
	case "":
		return 0, nil
	case "off":
		return -1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s %q: want a whole number of expiries such as 500, or off", MaxActiveEnv, v)
	}
	return n, nil
}

// TemporalDefaults returns opts with the local dev server's address (127.0.0.1:7233) and
// namespace (default) where they name none.
func TemporalDefaults(opts client.Options) client.Options {
	if opts.HostPort == "" {
		opts.HostPort = "127.0.0.1:7233"
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	return opts
}

// envMap is an environment as a map; it is also the SDK's envconfig.EnvLookup.
type envMap map[string]string

func newEnvMap(env []string) envMap {
	m := envMap{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func (m envMap) get(name string) string { return m[name] }

func (m envMap) or(name, def string) string {
	if v := m[name]; v != "" {
		return v
	}
	return def
}

// onOff reads a switch set to on or off; unset is off.
func (m envMap) onOff(name string) (bool, error) {
	switch v := m[name]; v {
	case "", "off":
		return false, nil
	case "on":
		return true, nil
	default:
		return false, fmt.Errorf("%s %q: want on or off", name, v)
	}
}

// duration reads a positive duration such as 30s or 2m, or def when name is unset.
func (m envMap) duration(name string, def time.Duration) (time.Duration, error) {
	v := m[name]
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return def, fmt.Errorf("%s %q: want a positive duration such as 30s or 2m", name, v)
	}
	return d, nil
}

// Environ lists the environment as KEY=VALUE, for envconfig.
func (m envMap) Environ() []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

// LookupEnv looks one variable up, for envconfig.
func (m envMap) LookupEnv(name string) (string, bool) {
	v, ok := m[name]
	return v, ok
}
