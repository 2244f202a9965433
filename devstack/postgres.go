package devstack

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for creating databases
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/metrics"
	"go.temporal.io/server/common/persistence"
	"go.temporal.io/server/common/persistence/serialization"
	persistencesql "go.temporal.io/server/common/persistence/sql"
	"go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	"go.temporal.io/server/common/resolver"
	"go.temporal.io/server/tools/common/schema"
	sqltool "go.temporal.io/server/tools/sql"
)

const (
	// DefaultPostgresShards is the history shard count of a new cluster on PostgreSQL
	// when Options.HistoryShards is 0 — the Temporal server's own default in its
	// container images.
	DefaultPostgresShards = 4
	// postgresMaxConns bounds each of the server's connection pools. The four services
	// each open one pool per store, so a stack uses at most 8 × postgresMaxConns
	// connections, within PostgreSQL's default of 100.
	postgresMaxConns = 10
	// schemaDir and visibilitySchemaDir name the server module's embedded schemas, as
	// `temporal-sql-tool --schema-name` does.
	schemaDir           = "postgresql/v12/temporal"
	visibilitySchemaDir = "postgresql/v12/visibility"
)

// postgresTarget is where a stack keeps its data on PostgreSQL: one database for the
// default store (executions, shards, namespaces, cluster metadata) and one for
// visibility, on the same server with the same credentials.
type postgresTarget struct {
	// base has the connection settings; DatabaseName is the default store's.
	base       config.SQL
	visibility string
	rawURL     *url.URL
}

// parsePostgresURL reads postgres://user:password@host:port/database?params. The
// database defaults to "temporal"; visibility goes to "<database>_visibility". Query
// parameters (sslmode, ...) are passed to every connection.
func parsePostgresURL(raw string) (postgresTarget, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return postgresTarget{}, fmt.Errorf("Temporal database %q: want a postgres://user:password@host:port/database URL", redact(raw))
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return postgresTarget{}, fmt.Errorf("Temporal database %s: the URL names no host", redact(raw))
	}
	if port == "" {
		port = "5432"
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" {
		db = "temporal"
	}
	attrs := map[string]string{}
	for k, v := range u.Query() {
		attrs[k] = v[len(v)-1]
	}
	password, _ := u.User.Password()
	return postgresTarget{
		base: config.SQL{
			PluginName:        postgresql.PluginNamePGX,
			DatabaseName:      db,
			ConnectAddr:       net.JoinHostPort(host, port),
			ConnectProtocol:   "tcp",
			User:              u.User.Username(),
			Password:          password,
			ConnectAttributes: attrs,
			MaxConns:          postgresMaxConns,
			MaxIdleConns:      postgresMaxConns,
			MaxConnLifetime:   time.Hour,
		},
		visibility: db + "_visibility",
		rawURL:     u,
	}, nil
}

// store returns the connection settings for one of the two databases.
func (p postgresTarget) store(database string) *config.SQL {
	cfg := p.base
	cfg.DatabaseName = database
	cfg.ConnectAttributes = map[string]string{}
	for k, v := range p.base.ConnectAttributes {
		cfg.ConnectAttributes[k] = v
	}
	return &cfg
}

// dsn is the pgx URL of database, for the checks this package makes itself.
func (p postgresTarget) dsn(database string) string {
	u := *p.rawURL
	u.Path = "/" + database
	return u.String()
}

// where names the server and databases without credentials, for messages.
func (p postgresTarget) where() string {
	return fmt.Sprintf("PostgreSQL %s, databases %s and %s", p.base.ConnectAddr, p.base.DatabaseName, p.visibility)
}

// preparePostgres creates the two databases if they do not exist, brings their schemas
// to the versions this server needs (setup-schema -v 0.0, then update-schema to the
// latest, as temporal-sql-tool does), and reads the shard count of an existing cluster.
// It returns the shard count the server must run with.
func preparePostgres(ctx context.Context, p postgresTarget, wantShards int32, logger log.Logger) (int32, error) {
	for _, db := range []struct{ name, schemaDir string }{
		{p.base.DatabaseName, schemaDir},
		{p.visibility, visibilitySchemaDir},
	} {
		if err := ensureDatabase(ctx, p, db.name); err != nil {
			return 0, err
		}
		if err := migrateSchema(p.store(db.name), db.schemaDir, logger); err != nil {
			return 0, err
		}
	}
	existing, err := clusterShardCount(ctx, p.store(p.base.DatabaseName), logger)
	if err != nil {
		return 0, err
	}
	switch {
	case existing == 0 && wantShards == 0:
		return DefaultPostgresShards, nil
	case existing == 0:
		return wantShards, nil
	case wantShards == 0 || wantShards == existing:
		return existing, nil
	default:
		return 0, fmt.Errorf("the Temporal cluster in %s was created with %d history shards and cannot run with %d: "+
			"the shard count is fixed when a cluster is created. Start it with %d history shards (kooflow temporal --history-shards %d), "+
			"or give it new, empty databases to create a cluster with %d", p.where(), existing, wantShards, existing, existing, wantShards)
	}
}

// ensureDatabase creates database unless it exists. Creating needs the CREATEDB
// privilege; without it, an administrator must create the database first.
func ensureDatabase(ctx context.Context, p postgresTarget, database string) error {
	err := ping(ctx, p.dsn(database))
	var pgErr *pgconn.PgError
	if err == nil {
		return nil
	}
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name: no such database
		return fmt.Errorf("connect to Temporal database %s on %s: %w", database, p.base.ConnectAddr, err)
	}
	admin, err := sql.Open("pgx", p.dsn("postgres"))
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL %s to create database %s: %w", p.base.ConnectAddr, database, err)
	}
	defer admin.Close()
	// Database names cannot be bound as parameters; quote it as an identifier.
	_, err = admin.ExecContext(ctx, `CREATE DATABASE "`+strings.ReplaceAll(database, `"`, `""`)+`"`)
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: created meanwhile
		return nil
	}
	if err != nil {
		return fmt.Errorf("create Temporal database %s on %s (create it as an administrator, or grant the user CREATEDB): %w",
			database, p.base.ConnectAddr, err)
	}
	return nil
}

func ping(ctx context.Context, dsn string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// migrateSchema runs the server module's own schema tool on one database: the version
// tables and version 0.0 when the database is new (a no-op otherwise), then every
// versioned update above the database's current version. Both steps are idempotent.
func migrateSchema(cfg *config.SQL, schemaName string, logger log.Logger) error {
	conn, err := sqltool.NewConnection(cfg, logger)
	if err != nil {
		return fmt.Errorf("connect to Temporal database %s: %w", cfg.DatabaseName, err)
	}
	defer conn.Close()
	if err := schema.NewSetupSchemaTask(conn, &schema.SetupConfig{InitialVersion: "0.0"}, logger).Run(); err != nil {
		return fmt.Errorf("set up the schema version tables in Temporal database %s: %w", cfg.DatabaseName, err)
	}
	if err := schema.NewUpdateSchemaTask(conn, &schema.UpdateConfig{DBName: cfg.DatabaseName, SchemaName: schemaName}, logger).Run(); err != nil {
		return fmt.Errorf("update the Temporal schema in database %s (%s): %w", cfg.DatabaseName, schemaName, err)
	}
	// The server checks at start that both schemas are compatible with it.
	return nil
}

// clusterShardCount reads the history shard count the cluster in cfg's database was
// created with; 0 when no cluster has been created there yet.
func clusterShardCount(ctx context.Context, cfg *config.SQL, logger log.Logger) (int32, error) {
	serializer := serialization.NewSerializer()
	factory := persistencesql.NewFactory(*cfg, resolver.NewNoopResolver(), clusterName, logger, metrics.NoopMetricsHandler, serializer)
	defer factory.Close()
	store, err := factory.NewClusterMetadataStore()
	if err != nil {
		return 0, fmt.Errorf("open Temporal cluster metadata in database %s: %w", cfg.DatabaseName, err)
	}
	meta, err := persistence.NewClusterMetadataManagerImpl(store, serializer, clusterName, logger).GetCurrentClusterMetadata(ctx)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read Temporal cluster metadata in database %s: %w", cfg.DatabaseName, err)
	}
	return meta.HistoryShardCount, nil
}

// redact drops the password from a database URL for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
