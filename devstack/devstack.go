// Package devstack runs a complete Temporal service inside the kooflow process: the
// frontend, history, matching and worker services with kooflow's namespace and search
// attributes, plus the Temporal UI. It keeps its data in a SQLite file in the data
// directory (so workflows survive a restart) for `kooflow dev` and the integration
// tests, or on PostgreSQL with several history shards — the server module's own
// PostgreSQL plugin and schema tooling — for `kooflow temporal --db` on a small
// installation and the production-topology tests. A larger installation points kooflow
// at a real Temporal cluster instead.
package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Options configure an embedded stack.
type Options struct {
	// DataDir holds the Temporal database (temporal.db) and its log (temporal.log).
	DataDir string
	// Host is the address every service binds to; default 127.0.0.1.
	Host string
	// FrontendPort is the gRPC port clients dial; 0 picks a free one.
	FrontendPort int
	// UIPort serves the Temporal UI; 0 picks a free one, -1 disables the UI.
	UIPort int
	// Namespace is created on first start; default "default".
	Namespace string
	// SearchAttributes are registered on the namespace.
	SearchAttributes map[string]enumspb.IndexedValueType
	// LogLevel of the Temporal server's own log file; default "warn".
	LogLevel string
	// DB is where the server keeps its data: empty for a SQLite file in DataDir, or a
	// postgres://user:password@host:port/database URL. On PostgreSQL the server uses
	// the database (default "temporal") for its default store and
	// "<database>_visibility" for visibility, creates both if they do not exist (that
	// needs the CREATEDB privilege) and brings their schemas up to date.
	DB string
	// HistoryShards is the number of history shards, fixed when a cluster is created.
	// 0 means 1 on SQLite, and on PostgreSQL DefaultPostgresShards for a new cluster or
	// the existing cluster's own count. Start refuses a count that differs from the
	// existing cluster's.
	HistoryShards int32
	// UICodec points the embedded UI at a codec server so it shows decoded payloads;
	// the zero value configures none. Ignored when the UI is disabled.
	UICodec UICodec
	// UIWriteActions lets the UI cancel, terminate, reset, signal and start workflows.
	// Off by default: an expiry ended there is ended outside kooflow's rules (kooflow
	// finds and shows it, deploy/RUNBOOK.md says what each action does), so operators
	// act through kooflow, and the UI is for looking. The UI server refuses the writes
	// too, not only hides their buttons.
	UIWriteActions bool
	// Memory bounds what the server keeps in memory per workflow (memory.go); the zero
	// value keeps the measured defaults.
	Memory MemoryBounds
}

// Stack is a running embedded Temporal service.
type Stack struct {
	server      temporal.Server
	ui          *uiServer
	hostPort    string
	uiURL       string
	opts        Options
	persistence string
}

// Start creates the databases and schemas if needed (bringing an existing PostgreSQL
// schema up to date), the namespace, and starts the services. It returns once the
// frontend answers health checks.
func Start(ctx context.Context, opts Options) (*Stack, error) {
	if opts.DataDir == "" {
		return nil, errors.New("devstack: DataDir is required")
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "warn"
	}
	if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", opts.DataDir, err)
	}
	if opts.FrontendPort == 0 {
		port, err := freePort(opts.Host)
		if err != nil {
			return nil, err
		}
		opts.FrontendPort = port
	}
	if err := checkPortFree(opts.Host, opts.FrontendPort, "Temporal frontend (--temporal-port)"); err != nil {
		return nil, err
	}

	logger := log.NewZapLogger(log.BuildZapLogger(log.Config{
		Level:      opts.LogLevel,
		OutputFile: filepath.Join(opts.DataDir, "temporal.log"),
	}))
	var (
		store   persistenceConfig
		err     error
		dynamic = dynamicconfig.StaticClient{}
	)
	if opts.DB == "" {
		store, err = prepareSQLite(opts)
		// New search attributes are visible at once, as in Temporal's own dev server.
		// Not on PostgreSQL, where the server's own comment applies: never in production.
		dynamic[dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key()] = true
	} else {
		store, err = preparePostgresStore(ctx, opts, logger)
	}
	if err != nil {
		return nil, err
	}
	opts.Memory.apply(dynamic)
	cfg, err := serverConfig(opts, store)
	if err != nil {
		return nil, err
	}
	authorizer, err := authorization.GetAuthorizerFromConfig(&cfg.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&cfg.Global.Authorization, logger)
	if err != nil {
		return nil, fmt.Errorf("claim mapper: %w", err)
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dynamic),
	)
	if err != nil {
		return nil, fmt.Errorf("create Temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start Temporal server (log: %s): %w", filepath.Join(opts.DataDir, "temporal.log"), err)
	}
	s := &Stack{server: srv, hostPort: net.JoinHostPort(opts.Host, strconv.Itoa(opts.FrontendPort)), opts: opts, persistence: store.describe}
	if err := s.waitHealthy(ctx); err != nil {
		_ = srv.Stop()
		return nil, err
	}
	if opts.UIPort >= 0 {
		if opts.UIPort == 0 {
			if opts.UIPort, err = freePort(opts.Host); err != nil {
				_ = srv.Stop()
				return nil, err
			}
		}
		ui, err := startUI(opts.Host, opts.UIPort, s.hostPort, opts.Namespace, opts.UICodec, opts.UIWriteActions)
		if err != nil {
			_ = srv.Stop()
			return nil, err
		}
		s.ui = ui
		s.uiURL = "http://" + net.JoinHostPort(opts.Host, strconv.Itoa(opts.UIPort))
	}
	return s, nil
}

// HostPort is the frontend address for Temporal clients.
func (s *Stack) HostPort() string { return s.hostPort }

// UIURL is the Temporal UI's address, empty when the UI is disabled.
func (s *Stack) UIURL() string { return s.uiURL }

// Namespace is the namespace the stack created.
func (s *Stack) Namespace() string { return s.opts.Namespace }

// Persistence names where the server keeps its data and its history shard count,
// without credentials, e.g. "PostgreSQL 127.0.0.1:5432, databases temporal and
// temporal_visibility, 4 history shards".
func (s *Stack) Persistence() string { return s.persistence }

// Stop shuts the UI and the services down; the database stays for the next Start.
func (s *Stack) Stop() error {
	if s.ui != nil {
		s.ui.stop()
	}
	return s.server.Stop()
}

func (s *Stack) waitHealthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var lastErr error
	for {
		c, err := client.Dial(client.Options{HostPort: s.hostPort, Namespace: s.opts.Namespace, Logger: quietLogger{}})
		if err == nil {
			_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
			if err == nil {
				_, err = c.WorkflowService().DescribeNamespace(ctx, describeNamespace(s.opts.Namespace))
			}
			c.Close()
			if err == nil {
				return nil
			}
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("Temporal frontend at %s did not become healthy: %w", s.hostPort, lastErr)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// servicePorts are the ports of the four services. They are kept in the data directory
// and reused on the next start: the cluster's membership is persisted in the database,
// and a restarted service that comes back on its old address is recognised at once,
// where one on new ports waits about a minute for the stale members to expire.
type servicePorts struct {
	GRPC       map[string]int `json:"grpc"`
	Membership map[string]int `json:"membership"`
}

var serviceNames = []string{"frontend", "history", "matching", "worker"}

func loadPorts(opts Options) (servicePorts, error) {
	path := filepath.Join(opts.DataDir, "temporal-ports.json")
	var saved servicePorts
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &saved)
	}
	ports := servicePorts{GRPC: map[string]int{}, Membership: map[string]int{}}
	taken := map[int]bool{opts.FrontendPort: true}
	pick := func(prev, max int) (int, error) {
		if prev > 0 && prev <= max && !taken[prev] && checkPortFree(opts.Host, prev, "") == nil {
			taken[prev] = true
			return prev, nil
		}
		for {
			p, err := freePortBelow(opts.Host, max)
			if err != nil {
				return 0, err
			}
			if !taken[p] {
				taken[p] = true
				return p, nil
			}
		}
	}
	// The PostgreSQL schema keeps membership ports in a SMALLINT column.
	membershipMax := 65535
	if opts.DB != "" {
		membershipMax = math.MaxInt16
	}
	for _, name := range serviceNames {
		if name == "frontend" {
			ports.GRPC[name] = opts.FrontendPort
		} else {
			p, err := pick(saved.GRPC[name], 65535)
			if err != nil {
				return ports, err
			}
			ports.GRPC[name] = p
		}
		p, err := pick(saved.Membership[name], membershipMax)
		if err != nil {
			return ports, err
		}
		ports.Membership[name] = p
	}
	b, _ := json.MarshalIndent(ports, "", "  ")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return ports, fmt.Errorf("save Temporal service ports: %w", err)
	}
	return ports, nil
}

// clusterName names the stack's single cluster.
const clusterName = "active"

// persistenceConfig is where the server keeps its data, ready for serverConfig.
type persistenceConfig struct {
	defaultStore, visibilityStore string
	stores                        map[string]config.DataStore
	shards                        int32
	describe                      string
}

// prepareSQLite creates temporal.db in the data directory on first start and the
// namespace with kooflow's search attributes.
func prepareSQLite(opts Options) (persistenceConfig, error) {
	if opts.HistoryShards > 1 {
		return persistenceConfig{}, fmt.Errorf("%d history shards need Temporal on PostgreSQL; SQLite runs one", opts.HistoryShards)
	}
	sqlCfg := &config.SQL{
		PluginName:        sqliteplugin.PluginName,
		DatabaseName:      filepath.Join(opts.DataDir, "temporal.db"),
		ConnectAttributes: map[string]string{"mode": "rwc", "_journal_mode": "wal", "_synchronous": "normal"},
	}
	dbPath := sqlCfg.DatabaseName
	if _, err := os.Stat(dbPath); errors.Is(err, os.ErrNotExist) {
		if err := sqliteschema.SetupSchema(sqlCfg); err != nil {
			return persistenceConfig{}, fmt.Errorf("create Temporal schema in %s: %w", dbPath, err)
		}
	}
	if err := createNamespace(opts, sqlCfg, 24*time.Hour); err != nil {
		return persistenceConfig{}, err
	}
	return persistenceConfig{
		defaultStore: sqliteplugin.PluginName, visibilityStore: sqliteplugin.PluginName,
		stores: map[string]config.DataStore{sqliteplugin.PluginName: {SQL: sqlCfg}},
		shards: 1, describe: "SQLite " + dbPath + ", 1 history shard",
	}, nil
}

// preparePostgresStore creates or updates the databases and schemas on PostgreSQL
// (see preparePostgres), then the namespace with kooflow's search attributes. The
// namespace keeps closed workflows for 30 days, as in the compose stack.
func preparePostgresStore(ctx context.Context, opts Options, logger log.Logger) (persistenceConfig, error) {
	target, err := parsePostgresURL(opts.DB)
	if err != nil {
		return persistenceConfig{}, err
	}
	shards, err := preparePostgres(ctx, target, opts.HistoryShards, logger)
	if err != nil {
		return persistenceConfig{}, err
	}
	if err := createNamespace(opts, target.store(target.base.DatabaseName), 30*24*time.Hour); err != nil {
		return persistenceConfig{}, err
	}
	return persistenceConfig{
		defaultStore: "default", visibilityStore: "visibility",
		stores: map[string]config.DataStore{
			"default":    {SQL: target.store(target.base.DatabaseName)},
			"visibility": {SQL: target.store(target.visibility)},
		},
		shards:   shards,
		describe: fmt.Sprintf("%s, %s", target.where(), shardCount(shards)),
	}, nil
}

func shardCount(n int32) string {
	if n == 1 {
		return "1 history shard"
	}
	return fmt.Sprintf("%d history shards", n)
}

// createNamespace registers the namespace with its search attributes directly in the
// database, before the server starts, so both are usable as soon as the frontend
// answers (no wait for the server's namespace cache). The server module offers this
// for SQL stores (the function lives in its SQLite package but works on any SQL
// plugin); an existing namespace is left as it is.
func createNamespace(opts Options, sqlCfg *config.SQL, retention time.Duration) error {
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, opts.Namespace, false, opts.SearchAttributes)
	if err != nil {
		return fmt.Errorf("namespace %s: %w", opts.Namespace, err)
	}
	ns.Detail.Config.Retention = durationpb.New(retention)
	if err := sqliteschema.CreateNamespaces(sqlCfg, ns); err != nil {
		return fmt.Errorf("create namespace %s: %w", opts.Namespace, err)
	}
	return nil
}

// serverConfig describes a single-process cluster: the four services on loopback
// ports, and store for both persistence and visibility.
func serverConfig(opts Options, store persistenceConfig) (*config.Config, error) {
	ports, err := loadPorts(opts)
	if err != nil {
		return nil, err
	}
	services := map[string]config.Service{}
	for _, name := range serviceNames {
		services[name] = config.Service{RPC: config.RPC{GRPCPort: ports.GRPC[name], MembershipPort: ports.Membership[name], BindOnIP: opts.Host}}
	}
	frontend := net.JoinHostPort(opts.Host, strconv.Itoa(opts.FrontendPort))
	return &config.Config{
		Global: config.Global{
			Membership: config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: opts.Host},
		},
		Persistence: config.Persistence{
			DefaultStore:     store.defaultStore,
			VisibilityStore:  store.visibilityStore,
			NumHistoryShards: store.shards,
			DataStores:       store.stores,
		},
		ClusterMetadata: &cluster.Config{
			EnableGlobalNamespace:    false,
			FailoverVersionIncrement: 10,
			MasterClusterName:        clusterName,
			CurrentClusterName:       clusterName,
			ClusterInformation: map[string]cluster.ClusterInformation{
				clusterName: {Enabled: true, InitialFailoverVersion: 1, RPCAddress: frontend},
			},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services:            services,
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{Archival: config.ArchivalNamespaceDefaults{
			History:    config.HistoryArchivalNamespaceDefaults{State: "disabled"},
			Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
		}},
		// The server's internal workers reach the frontend through this address.
		PublicClient: config.PublicClient{HostPort: frontend},
	}, nil
}

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freePortBelow finds a free port no higher than max. The kernel hands out ephemeral
// ports (usually 32768 and up); below that range it probes random ports.
func freePortBelow(host string, max int) (int, error) {
	if max >= 65535 {
		return freePort(host)
	}
	const low = 10000
	for range 500 {
		p := low + rand.IntN(max-low+1)
		if l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p))); err == nil {
			l.Close()
			return p, nil
		}
	}
	return 0, fmt.Errorf("find a free port between %d and %d on %s", low, max, host)
}

func checkPortFree(host string, port int, what string) error {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("%s port %d on %s is not free (is another kooflow dev running? choose another port): %w", what, port, host, err)
	}
	return l.Close()
}
