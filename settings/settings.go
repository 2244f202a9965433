// Package settings is the one table of every environment variable kooflow reads: its
// name, the processes that read it, its default, where it is required, whether it is a
// secret, and what it means. docs/configuration.md is written from it (`kooflow docs
// config`), and a test fails when kooflow's code reads a variable the table does not
// have, so a new setting cannot be added without its documentation.
package settings

// Setting is one environment variable kooflow reads.
type Setting struct {
	Name string
	// Processes are the kooflow processes and commands that read it.
	Processes string
	// Default is its value when unset: the literal value the code uses (tests hold the
	// flags' and the wiring's defaults to it) or, when it depends, words; empty when it
	// has none.
	Default string
	// Required names the processes that refuse to start without it; empty: none.
	Required string
	// Secret marks a credential: never logged, never shown, best given as a file.
	Secret bool
	// Meaning says what it does.
	Meaning string
	// Group is the heading the documentation lists it under.
	Group string
}

// Groups are the documentation's headings, in order.
var Groups = []string{
	"Stores and Temporal",
	"Listen addresses and the dev stack",
	"Payload encryption and the codec server",
	"The console",
	"KooGallery and SmartHub",
	"KooDrive",
	"Reconciliation, records and logs",
	"Tests",
}

// All is every setting, by group.
var All = []Setting{
	{Group: "Stores and Temporal", Name: "KOOFLOW_DB", Processes: "all", Default: "dev and operator commands: `sqlite:<data-dir>/kooflow.db`",
		Required: "worker, webhook, console", Meaning: "kooflow's store: `sqlite:PATH` or `postgres://…`"},
	{Group: "Stores and Temporal", Name: "KOOFLOW_DATA_DIR", Processes: "dev, temporal, operator commands", Default: "./kooflow-data",
		Meaning: "the data directory: the dev store, Temporal's SQLite files, dev keys, the reconciliation files"},
	{Group: "Stores and Temporal", Name: "TEMPORAL_ADDRESS", Processes: "worker, webhook, console, operator commands", Default: "127.0.0.1:7233",
		Meaning: "Temporal's frontend (the SDK's envconfig; operator commands without it use the port `kooflow dev` recorded in `--data-dir`; `--temporal-address` overrides)"},
	{Group: "Stores and Temporal", Name: "TEMPORAL_NAMESPACE", Processes: "worker, webhook, console, operator commands", Default: "default",
		Meaning: "Temporal namespace (`--namespace` overrides)"},
	{Group: "Stores and Temporal", Name: "TEMPORAL_API_KEY", Processes: "worker, webhook, console, operator commands", Secret: true,
		Meaning: "API key for a Temporal Cloud or secured frontend (the SDK's envconfig)"},
	{Group: "Stores and Temporal", Name: "TEMPORAL_TLS*", Processes: "worker, webhook, console, operator commands",
		Meaning: "TLS to Temporal: the SDK's `TEMPORAL_TLS_*` variables (certificates, server name)"},
	{Group: "Stores and Temporal", Name: "TEMPORAL_PROFILE", Processes: "worker, webhook, console, operator commands",
		Meaning: "the profile of the SDK's configuration file to use"},
	{Group: "Stores and Temporal", Name: "TEMPORAL_CONFIG_FILE", Processes: "worker, webhook, console, operator commands",
		Meaning: "the SDK's configuration file (TOML) of Temporal connections"},
	{Group: "Stores and Temporal", Name: "KOOFLOW_TEMPORAL_DB", Processes: "temporal", Default: "SQLite in the data directory",
		Meaning: "Temporal's own persistence for `kooflow temporal`: a `postgres://` URL"},
	{Group: "Stores and Temporal", Name: "KOOFLOW_TEMPORAL_HISTORY_SHARDS", Processes: "temporal", Default: "SQLite: 1; a new PostgreSQL cluster: 4; an existing one: its count",
		Meaning: "Temporal's history shards; fixed when the cluster is created"},
	{Group: "Stores and Temporal", Name: "KOOFLOW_MAX_ACTIVE_EXPIRIES", Processes: "dev, webhook", Default: "500",
		Meaning: "admission cap: the most expiries Temporal works on at once (started and not yet reserved or stalled); at the cap the intake's relay starts nothing new, so a month end's storm waits in kooflow's queue and starts oldest first at the pace Temporal finishes them; `off` for no cap. Measured in BENCHMARKS.md (Admission control)"},

	{Group: "Listen addresses and the dev stack", Name: "KOOFLOW_WEBHOOK_ADDR", Processes: "dev, webhook", Default: "127.0.0.1:8080",
		Meaning: "the intake's listen address (`:8080` for every interface)"},
	{Group: "Listen addresses and the dev stack", Name: "KOOFLOW_METRICS_ADDR", Processes: "dev, worker, webhook", Default: "127.0.0.1:9090",
		Meaning: "listen address of `/metrics`, `/healthz` and `/readyz`"},
	{Group: "Listen addresses and the dev stack", Name: "KOOFLOW_TEMPORAL_PORT", Processes: "dev, temporal", Default: "7233",
		Meaning: "the embedded Temporal frontend's gRPC port"},
	{Group: "Listen addresses and the dev stack", Name: "KOOFLOW_UI_PORT", Processes: "dev, temporal", Default: "8233",
		Meaning: "the embedded Temporal UI's port; -1 runs no UI"},
	{Group: "Listen addresses and the dev stack", Name: "KOOFLOW_SANDBOX_ADDR", Processes: "dev", Default: "127.0.0.1:0",
		Meaning: "the KooDrive sandbox's listen address (port 0: a free port, on the banner)"},
	{Group: "Listen addresses and the dev stack", Name: "KOOFLOW_TEMPORAL_METRICS_ADDR", Processes: "temporal",
		Meaning: "`kooflow temporal --metrics-addr`: serves `/metrics` (the process's memory and Go runtime) and `/healthz` there, e.g. `127.0.0.1:9091`; none when unset"},
	{Group: "Listen addresses and the dev stack", Name: "KOOFLOW_TEMPORAL_HISTORY_CACHE", Processes: "temporal, dev", Default: "2000",
		Meaning: "workflows the embedded Temporal server keeps in its history cache (`history.hostLevelCacheMaxSize`; Temporal's own default is 128,000): its memory, ~45 KB of heap per workflow, is bounded by it; measured in `devstack/memory.go`"},
	{Group: "Listen addresses and the dev stack", Name: "KOOFLOW_PPROF", Processes: "dev, worker, webhook, temporal", Default: "off",
		Meaning: "`on` serves Go's profiles (`/debug/pprof/`) on the metrics address, for diagnosis; a profile shows the process's memory and command line: only with the metrics address on loopback"},
	{Group: "Listen addresses and the dev stack", Name: "KOOFLOW_UI_WRITE_ACTIONS", Processes: "dev, temporal", Default: "off",
		Meaning: "`on` lets the embedded Temporal UI cancel, terminate, reset and signal workflows (the UI is for looking; act through kooflow)"},
	{Group: "Listen addresses and the dev stack", Name: "KOOFLOW_WORKER_STOP_TIMEOUT", Processes: "worker", Default: "30s",
		Meaning: "how long SIGTERM lets activities in flight finish; keep compose's `stop_grace_period` above it"},

	{Group: "Payload encryption and the codec server", Name: "KOOFLOW_PAYLOAD_KEYS", Processes: "worker, webhook, console, codec-server, operator commands, dev",
		Required: "console", Secret: true, Default: "dev: its own key in `<data-dir>/payload-keys`",
		Meaning: "payload keys, `id:base64key[,id:base64key…]`, the first encrypting; set it or `KOOFLOW_PAYLOAD_KEYS_FILE`"},
	{Group: "Payload encryption and the codec server", Name: "KOOFLOW_PAYLOAD_KEYS_FILE", Processes: "worker, webhook, console, codec-server, operator commands, dev",
		Meaning: "a file of payload keys, one `id:base64key` a line, readable by its owner only; set it or `KOOFLOW_PAYLOAD_KEYS`, not both"},
	{Group: "Payload encryption and the codec server", Name: "KOOFLOW_PAYLOAD_ENCRYPTION", Processes: "worker, webhook, dev", Default: "on",
		Meaning: "`off` runs without keys, payloads in clear (a warning at start); refused together with keys"},
	{Group: "Payload encryption and the codec server", Name: "KOOFLOW_CODEC_TOKEN", Processes: "codec-server", Required: "codec-server", Secret: true,
		Meaning: "the codec server's token, at least 32 characters; set it or `KOOFLOW_CODEC_TOKEN_FILE`"},
	{Group: "Payload encryption and the codec server", Name: "KOOFLOW_CODEC_TOKEN_FILE", Processes: "codec-server",
		Meaning: "a file holding the codec server's token"},
	{Group: "Payload encryption and the codec server", Name: "KOOFLOW_CODEC_ADDR", Processes: "codec-server", Default: "127.0.0.1:8089",
		Meaning: "the codec server's listen address"},
	{Group: "Payload encryption and the codec server", Name: "KOOFLOW_CODEC_UI_ORIGINS", Processes: "codec-server", Default: "http://127.0.0.1:8233",
		Meaning: "the Temporal UI origins the codec server allows (CORS), comma-separated"},

	{Group: "The console", Name: "KOOFLOW_CONSOLE_ADDR", Processes: "console, dev", Default: "127.0.0.1:8280",
		Meaning: "the console's listen address (`dev`: `-` for none)"},
	{Group: "The console", Name: "KOOFLOW_CONSOLE_URL", Processes: "console", Required: "console",
		Meaning: "the console's public URL, `https://…` (http only on 127.0.0.1/localhost); the OIDC redirect URI is it + `/signin/oidc/callback`, and the cookies are `Secure` unless it is http"},
	{Group: "The console", Name: "KOOFLOW_CONSOLE_SESSION_KEY", Processes: "console", Required: "console", Secret: true,
		Meaning: "signs the sessions: at least 32 bytes; set it or `KOOFLOW_CONSOLE_SESSION_KEY_FILE`"},
	{Group: "The console", Name: "KOOFLOW_CONSOLE_SESSION_KEY_FILE", Processes: "console",
		Meaning: "a file holding the session key, readable by its owner only"},
	{Group: "The console", Name: "KOOFLOW_CONSOLE_OIDC_ISSUER", Processes: "console", Required: "console",
		Meaning: "the identity provider's issuer URL (https)"},
	{Group: "The console", Name: "KOOFLOW_CONSOLE_OIDC_CLIENT_ID", Processes: "console", Required: "console",
		Meaning: "the console's client ID at the provider"},
	{Group: "The console", Name: "KOOFLOW_CONSOLE_OIDC_CLIENT_SECRET", Processes: "console", Required: "console", Secret: true,
		Meaning: "the console's client secret; set it or `KOOFLOW_CONSOLE_OIDC_CLIENT_SECRET_FILE`"},
	{Group: "The console", Name: "KOOFLOW_CONSOLE_OIDC_CLIENT_SECRET_FILE", Processes: "console",
		Meaning: "a file holding the client secret, readable by its owner only"},
	{Group: "The console", Name: "KOOFLOW_CONSOLE_OIDC_ROLES", Processes: "console", Required: "console",
		Meaning: "claim values to roles, e.g. `viewer=kooflow-viewers,operator=kooflow-operators,admin=kooflow-admins`; an unmapped user is refused"},
	{Group: "The console", Name: "KOOFLOW_CONSOLE_OIDC_ROLE_CLAIM", Processes: "console", Default: "groups",
		Meaning: "the ID-token claim holding the groups or roles (a dotted path reaches into objects)"},
	{Group: "The console", Name: "KOOFLOW_CONSOLE_OIDC_NAME_CLAIM", Processes: "console", Default: "preferred_username, else email, else sub",
		Meaning: "the claim naming the operator in the audit log"},
	{Group: "The console", Name: "KOOFLOW_CONSOLE_OIDC_SCOPES", Processes: "console", Default: "profile,email",
		Meaning: "scopes asked for besides `openid`"},
	{Group: "The console", Name: "KOOFLOW_CONSOLE_OIDC_PROVIDER_NAME", Processes: "console", Default: "the issuer's host",
		Meaning: "the name on the sign-in button"},
	{Group: "The console", Name: "KOOFLOW_TEMPORAL_UI_URL", Processes: "console",
		Meaning: "the Temporal UI as operators' browsers reach it, for the links from an expiration (none when unset)"},

	{Group: "KooGallery and SmartHub", Name: "KOOGALLERY_KEY", Processes: "webhook, dev, send", Required: "webhook", Secret: true, Default: "dev: generated",
		Meaning: "the seller Key from KooGallery's Seller Console"},
	{Group: "KooGallery and SmartHub", Name: "SMARTHUB_API_KEY", Processes: "webhook, dev, send", Secret: true, Default: "dev: generated",
		Meaning: "the key SmartHub sends as `X-API-Key`; pushes are refused without it"},
	{Group: "KooGallery and SmartHub", Name: "SMARTHUB_SIGNATURE_MODE", Processes: "webhook, dev", Default: "log",
		Meaning: "`off`, `log` or `enforce` SmartHub's body signature"},

	{Group: "KooDrive", Name: "KOOFLOW_KOODRIVE_PROBE_INTERVAL", Processes: "worker", Default: "5m",
		Meaning: "how often the worker asks KooDrive for the tenant's service status, so the console shows refused credentials or a frozen tenant even when no expiry is due; `off` never"},
	{Group: "KooDrive", Name: "KOODRIVE_BASE_URL", Processes: "worker, dev", Required: "worker", Default: "dev: the sandbox",
		Meaning: "KooDrive's OSE API"},
	{Group: "KooDrive", Name: "KOODRIVE_USER_ID", Processes: "worker, dev", Required: "worker",
		Meaning: "the KooDrive user sent as `X-User-Id`"},
	{Group: "KooDrive", Name: "KOODRIVE_AUTH", Processes: "worker, dev", Default: "app when KOODRIVE_APP_ID is set, else token",
		Meaning: "`app` (the app signature, recommended) or `token` (see [Connecting to KooDrive](connections.md#connecting-to-koodrive))"},
	{Group: "KooDrive", Name: "KOODRIVE_APP_ID", Processes: "worker, dev", Required: "worker with app",
		Meaning: "the app ID of the app signature"},
	{Group: "KooDrive", Name: "KOODRIVE_APP_SECRET", Processes: "worker, dev", Required: "worker with app", Secret: true,
		Meaning: "the app secret of the app signature; set it or `KOODRIVE_APP_SECRET_FILE`"},
	{Group: "KooDrive", Name: "KOODRIVE_APP_SECRET_FILE", Processes: "worker, dev",
		Meaning: "a file holding the app secret (compose mounts it as a secret); set it or `KOODRIVE_APP_SECRET`, not both"},
	{Group: "KooDrive", Name: "KOODRIVE_ACCESS_TOKEN_FILE", Processes: "worker, dev",
		Meaning: "with token: a file holding an access token another process renews; re-read when it changes and after a 401"},
	{Group: "KooDrive", Name: "KOODRIVE_ACCESS_TOKEN", Processes: "worker, dev", Secret: true,
		Meaning: "with token: a fixed access token (dies after 20 idle minutes); set it or `KOODRIVE_ACCESS_TOKEN_FILE`, not both"},

	{Group: "Reconciliation, records and logs", Name: "KOOFLOW_SCHEDULE_CRON", Processes: "dev, schedule apply", Default: "0 2 1 * *",
		Meaning: "when the monthly reconciliation runs (cron)"},
	{Group: "Reconciliation, records and logs", Name: "KOOFLOW_SCHEDULE_TIMEZONE", Processes: "dev, schedule apply", Default: "UTC",
		Meaning: "the IANA time zone of the schedule and of the billing month"},
	{Group: "Reconciliation, records and logs", Name: "KOOFLOW_RECORD_RETENTION", Processes: "webhook", Default: "400d",
		Meaning: "how long the delivery log and the audit log keep a row: days (`400d`) or a duration (`9600h`), at least a day"},
	{Group: "Reconciliation, records and logs", Name: "KOOFLOW_LOG_LEVEL", Processes: "all", Default: "info",
		Meaning: "`debug` for more logs"},

	{Group: "Tests", Name: "KOOFLOW_TEST_POSTGRES_DSN", Processes: "tests",
		Meaning: "also run the store and end-to-end tests on this PostgreSQL"},
	{Group: "Tests", Name: "KOOFLOW_CHROMIUM", Processes: "tests", Default: "chromium, chromium-browser or google-chrome on the PATH",
		Meaning: "the Chromium binary the console's browser tests drive"},
	{Group: "Tests", Name: "KOOFLOW_SCREENSHOTS", Processes: "tests",
		Meaning: "a directory the browser tests write full-page screenshots of the console into"},
	{Group: "Tests", Name: "KOOFLOW_RECORD_HISTORIES", Processes: "tests",
		Meaning: "a directory the end-to-end tests write finished workflows' histories into, for the replay tests (`workflows/testdata/histories`)"},
	{Group: "Tests", Name: "KOOFLOW_BENCH_REGISTRY_ROWS", Processes: "tests (benchmarks)", Default: "1000000",
		Meaning: "the registry size of the store benchmarks"},
	{Group: "Tests", Name: "KOOFLOW_BENCH_DB", Processes: "bench (reliability runs)", Default: "SQLite in a temporary directory",
		Meaning: "a `postgres://` URL the reliability runs keep kooflow's store in"},
	{Group: "Tests", Name: "KOOFLOW_HOLD_LOCK", Processes: "tests",
		Meaning: "internal: makes the test binary hold a data directory's lock (the lock test)"},
}

// Lookup returns the setting named name.
func Lookup(name string) (Setting, bool) {
	for _, s := range All {
		if s.Name == name {
			return s, true
		}
	}
	return Setting{}, false
}
