package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"

	"github.com/kooflow/kooflow/payloadcodec"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/wiring"
)

// envOr returns the environment variable name, or def when it is unset or empty.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// storeFlags locate the kooflow database for operator commands.
type storeFlags struct {
	dataDir string
	db      string
	// create lets open make a new SQLite database in the data directory: registry
	// import --create, the first command of a fresh installation. Every other command,
	// and an import without --create, refuses a missing database.
	create bool
	// offersCreate is set on the commands that have --create, so the error names it.
	offersCreate bool
}

// registerCreate adds --create to cmd.
func (f *storeFlags) registerCreate(cmd *cobra.Command) {
	f.offersCreate = true
	cmd.Flags().BoolVar(&f.create, "create", false, "make a new kooflow database in --data-dir if there is none (the first import of a new installation)")
}

func (f *storeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.dataDir, "data-dir", envOr("KOOFLOW_DATA_DIR", "./kooflow-data"), "data directory of kooflow dev (env KOOFLOW_DATA_DIR)")
	cmd.Flags().StringVar(&f.db, "db", os.Getenv("KOOFLOW_DB"), "database: sqlite:PATH or a postgres:// URL (env KOOFLOW_DB; default sqlite in --data-dir)")
}

func (f *storeFlags) dsn() string {
	if f.db != "" {
		return f.db
	}
	return "sqlite:" + filepath.Join(f.dataDir, "kooflow.db")
}

// open opens the database. Without --db/KOOFLOW_DB it is kooflow.db in the data
// directory, which must exist unless create is set: an operator command pointed at the
// wrong directory fails instead of answering from a new, empty database.
func (f *storeFlags) open(ctx context.Context) (*store.Store, error) {
	if path, named := f.sqlitePath(); path != "" && !f.create {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			hint := ""
			if f.offersCreate {
				hint = "; for a new installation, add --create"
			}
			where := "is --data-dir right (the data directory of kooflow dev, env KOOFLOW_DATA_DIR), or set --db/KOOFLOW_DB"
			if named {
				where = "is --db/KOOFLOW_DB right (sqlite:PATH of the running kooflow's database, or its postgres:// URL)"
			}
			return nil, fmt.Errorf("no kooflow database at %s; %s%s", path, where, hint)
		} else if err != nil {
			return nil, fmt.Errorf("look for the kooflow database: %w", err)
		}
	}
	return store.Open(ctx, f.dsn())
}

// sqlitePath is the SQLite file the flags name — from --db/KOOFLOW_DB (named) or the data
// directory's kooflow.db — or "" for PostgreSQL, whose database is never created here.
func (f *storeFlags) sqlitePath() (path string, named bool) {
	if f.db == "" {
		return filepath.Join(f.dataDir, "kooflow.db"), false
	}
	if p, ok := strings.CutPrefix(f.db, "sqlite:"); ok {
		return p, true
	}
	return "", true
}

// temporalFlags locate the Temporal frontend for operator commands: --temporal-address,
// else TEMPORAL_ADDRESS (and the SDK's other TEMPORAL_* settings), else the frontend port
// kooflow dev recorded in its data directory, else 127.0.0.1:7233; and the namespace:
// --namespace, else TEMPORAL_NAMESPACE, else default.
type temporalFlags struct {
	address   string
	namespace string
	dataDir   *string
	own       string
}

// register adds --temporal-address and --namespace to cmd; dataDir is the command's --data-dir, or nil to
// give the command a --data-dir of its own.
func (f *temporalFlags) register(cmd *cobra.Command, dataDir *string) {
	cmd.Flags().StringVar(&f.address, "temporal-address", "", "Temporal frontend host:port (default: TEMPORAL_ADDRESS, else the port kooflow dev recorded in --data-dir, else 127.0.0.1:7233)")
	cmd.Flags().StringVar(&f.namespace, "namespace", "", "Temporal namespace (default: TEMPORAL_NAMESPACE, else default)")
	if dataDir == nil {
		cmd.Flags().StringVar(&f.own, "data-dir", envOr("KOOFLOW_DATA_DIR", "./kooflow-data"), "data directory of kooflow dev, read for its Temporal port (env KOOFLOW_DATA_DIR)")
		dataDir = &f.own
	}
	f.dataDir = dataDir
}

// dial connects to the Temporal frontend these flags name.
func (f *temporalFlags) dial(ctx context.Context) (client.Client, error) {
	opts, err := temporalOptionsFor(slog.Default(), f.address, f.namespace, *f.dataDir)
	if err != nil {
		return nil, err
	}
	return dialWith(ctx, opts)
}

// recordedTemporalAddress returns the frontend address kooflow dev recorded in dataDir
// (temporal-ports.json, written by devstack), or "" when there is none.
func recordedTemporalAddress(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "temporal-ports.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the dev stack's Temporal ports: %w", err)
	}
	var ports struct {
		GRPC map[string]int `json:"grpc"`
	}
	if err := json.Unmarshal(b, &ports); err != nil {
		return "", fmt.Errorf("read the dev stack's Temporal ports %s: %w", path, err)
	}
	if p := ports.GRPC["frontend"]; p > 0 {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
	}
	return "", nil
}

// temporalOptionsFor reads the SDK's standard TEMPORAL_* configuration (address,
// namespace, TLS, API key, profile file) for operator commands, with an explicit address
// (overriding TEMPORAL_ADDRESS), an explicit namespace (overriding TEMPORAL_NAMESPACE)
// and a data directory whose recorded dev-stack port is used
// when neither names an address; else the local dev server. Payloads are decoded with
// payloadcodec.ForOperator.
func temporalOptionsFor(logger *slog.Logger, address, namespace, dataDir string) (client.Options, error) {
	opts, err := envconfig.LoadDefaultClientOptions()
	if err != nil {
		return client.Options{}, fmt.Errorf("read Temporal client configuration (TEMPORAL_*): %w", err)
	}
	if address != "" {
		opts.HostPort = address
	}
	if namespace != "" {
		opts.Namespace = namespace
	}
	if opts.HostPort == "" && dataDir != "" {
		if opts.HostPort, err = recordedTemporalAddress(dataDir); err != nil {
			return client.Options{}, err
		}
	}
	// The processes encrypt payloads; the command decodes what they answer with the same
	// keys (the environment's, or the dev stack's key file in dataDir).
	codec, err := operatorCodec(os.Getenv, dataDir)
	if err != nil {
		return client.Options{}, err
	}
	return wiring.ClientOptions(wiring.Config{Temporal: wiring.TemporalDefaults(opts), Codec: codec, Logger: logger}, nil), nil
}

// devDataFiles are the files kooflow dev keeps in its data directory that tell an
// operator command it was pointed at one: the database, the Temporal ports, the payload
// key file.
var devDataFiles = []string{"kooflow.db", "temporal-ports.json", payloadcodec.DevKeyFile}

// operatorCodec is payloadcodec.ForOperator for an operator command, which must never
// guess: without payload keys in the environment (KOOFLOW_PAYLOAD_KEYS or _FILE, or an
// explicit KOOFLOW_PAYLOAD_ENCRYPTION), the keys are dataDir's, and a dataDir with no
// kooflow data at all is reported as the wrong directory — not as a missing key, whose
// cure (a new key) would leave every payload the processes wrote unreadable. Only in a
// data directory of kooflow dev is a missing key file reported as such, and never with
// the advice to create one.
func operatorCodec(getenv func(string) string, dataDir string) (*payloadcodec.Codec, error) {
	for _, name := range []string{payloadcodec.EnvKeys, payloadcodec.EnvKeysFile, payloadcodec.EnvEncryption} {
		if v := strings.TrimSpace(getenv(name)); v != "" && !(name == payloadcodec.EnvEncryption && strings.EqualFold(v, "on")) {
			return payloadcodec.ForOperator(getenv, dataDir)
		}
	}
	where := dataDir
	if abs, err := filepath.Abs(dataDir); err == nil && abs != dataDir {
		where = fmt.Sprintf("%s (%s)", dataDir, abs)
	}
	var found []string
	for _, name := range devDataFiles {
		_, err := os.Stat(filepath.Join(dataDir, name))
		switch {
		case err == nil:
			found = append(found, name)
		case !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("look for kooflow dev's data in --data-dir %s: %w", where, err)
		}
	}
	switch {
	case len(found) == 0:
		return nil, fmt.Errorf("--data-dir %s holds no kooflow data (no %s): point --data-dir (env KOOFLOW_DATA_DIR) at kooflow dev's data directory, "+
			"or, for an installation without one, set %s or %s to the payload keys its worker uses and TEMPORAL_ADDRESS to its Temporal frontend",
			where, strings.Join(devDataFiles[:len(devDataFiles)-1], ", ")+" or "+devDataFiles[len(devDataFiles)-1], payloadcodec.EnvKeys, payloadcodec.EnvKeysFile)
	case !slices.Contains(found, payloadcodec.DevKeyFile):
		return nil, fmt.Errorf("no payload key: --data-dir %s is kooflow dev's data directory (it has %s) but holds no %s, and neither %s nor %s is set: "+
			"set one of them to the keys the worker and webhook encrypt with (a key made now could not read what they wrote), "+
			"or %s=off if they run without encryption",
			where, strings.Join(found, ", "), payloadcodec.DevKeyFile, payloadcodec.EnvKeys, payloadcodec.EnvKeysFile, payloadcodec.EnvEncryption)
	}
	return payloadcodec.ForOperator(getenv, dataDir)
}

func dialWith(ctx context.Context, opts client.Options) (client.Client, error) {
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s; is kooflow dev running with this --data-dir? else set --temporal-address / --namespace or TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE): %w", opts.HostPort, opts.Namespace, err)
	}
	return c, nil
}

// devKey returns KOOGALLERY_KEY, or the dev key stored in dataDir, creating it if asked.
func devKey(dataDir string, create bool) (string, error) {
	return devSecret("KOOGALLERY_KEY", dataDir, "koogallery.key", create)
}

// devSmartHubKey returns SMARTHUB_API_KEY, or the dev key stored in dataDir.
func devSmartHubKey(dataDir string, create bool) (string, error) {
	return devSecret("SMARTHUB_API_KEY", dataDir, "smarthub.key", create)
}

// devSecret returns the environment variable env, or a random dev secret kept in
// dataDir/file (mode 0600), created on first use when create is set.
func devSecret(env, dataDir, file string, create bool) (string, error) {
	if k := os.Getenv(env); k != "" {
		return k, nil
	}
	path := filepath.Join(dataDir, file)
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read dev secret %s: %w", path, err)
	}
	if !create {
		return "", fmt.Errorf("%s is not set and %s does not exist (start `kooflow dev` first or set %s)", env, path, env)
	}
	buf := make([]byte, 16)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	key := "dev-" + hex.EncodeToString(buf)
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write dev secret %s: %w", path, err)
	}
	return key, nil
}
