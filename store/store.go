// Package store keeps kooflow's own records — the subscription registry, its history, the
// inbound delivery log and one row per accepted expiry — in SQLite (the embedded default,
// pure Go) or PostgreSQL, behind one database/sql implementation.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

type dialect int

const (
	sqlite dialect = iota
	postgres
)

// Store is the kooflow database. It is safe for concurrent use.
type Store struct {
	db *sql.DB
	// durable commits what kooflow answers "done" for (intake intents, registry changes
	// KooGallery asked for): on SQLite a separate single-connection pool with
	// synchronous=FULL, so the commit is fsynced before the answer; on PostgreSQL a normal
	// commit already is, and durable is db.
	durable *sql.DB
	// commits, on SQLite, runs the durable transactions as group commits.
	commits *groupCommitter
	dialect dialect
	now     func() time.Time
}

// Open connects to dsn — "sqlite:PATH" or a "postgres://" URL — and applies any
// migrations that have not run yet.
func Open(ctx context.Context, dsn string) (*Store, error) {
	var (
		s   *Store
		err error
	)
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		s, err = openSQLite(strings.TrimPrefix(dsn, "sqlite:"))
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		var db *sql.DB
		if db, err = sql.Open("pgx", dsn); err == nil {
			db.SetMaxOpenConns(PostgresMaxConns)
			db.SetMaxIdleConns(PostgresMaxConns)
			db.SetConnMaxIdleTime(postgresMaxIdleTime)
		}
		s = &Store{db: db, durable: db, dialect: postgres}
	default:
		return nil, fmt.Errorf("database %q: want sqlite:PATH or a postgres:// URL", redactDSN(dsn))
	}
	if err != nil {
		return nil, err
	}
	s.now = time.Now
	if err := s.db.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("connect to database %s: %w", redactDSN(dsn), err)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("migrate database %s: %w", redactDSN(dsn), err)
	}
	return s, nil
}

// PostgresMaxConns bounds one kooflow process's connections to PostgreSQL, and as many
// are kept open between requests. database/sql keeps only two idle connections unless
// told otherwise: in a month-end storm of 128 concurrent KooGallery deliveries nearly
// every request opened a new connection (a new PostgreSQL backend process) and closed
// it again, and on a busy server some connects outlasted the webhook's 4 s budget, so
// KooGallery was answered 000005 (bench storm at 20,000 expirations). With the pool
// bounded and kept, a request beyond it waits in Go for a connection for the
// milliseconds a statement takes. Twenty for the worker and twenty for the webhook leave
// room under PostgreSQL's default max_connections of 100 for the operator commands and
// for Temporal, should it share the server.
const PostgresMaxConns = 20

// postgresMaxIdleTime closes connections unused for this long, so a quiet month gives
// its backends back to PostgreSQL.
const postgresMaxIdleTime = 5 * time.Minute

// PoolStats reports the store's connection pool (connections open and in use, how often
// and how long requests waited for one).
func (s *Store) PoolStats() sql.DBStats { return s.db.Stats() }

func openSQLite(path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: path is empty")
	}
	pinSQLiteAllocatorPages()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create directory for %s: %w", path, err)
	}
	// WAL lets the CLI read and write the file while `kooflow dev` runs; immediate
	// transactions and a busy timeout make concurrent writers wait instead of failing.
	// Bookkeeping commits use synchronous=NORMAL (durable at the next checkpoint; a lost
	// one is redone idempotently). What the intake answers for uses synchronous=FULL: the
	// WAL is fsynced at commit, and with it every frame committed before.
	base := "file:" + path + "?_txlock=immediate&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)"
	db, err := sql.Open("sqlite", base+"&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	durable, err := sql.Open("sqlite", base+"&_pragma=synchronous(FULL)")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// One connection: concurrent intake commits queue in Go instead of sleeping in
	// SQLite's busy handler, which keeps the answer latency even under a burst.
	durable.SetMaxOpenConns(1)
	return &Store{db: db, durable: durable, commits: newGroupCommitter(durable), dialect: sqlite}, nil
}

// redactDSN hides the password of a database URL so it can be logged.
func redactDSN(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	scheme := strings.Index(dsn, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return dsn
	}
	creds := dsn[scheme+3 : at]
	if user, _, ok := strings.Cut(creds, ":"); ok {
		return dsn[:scheme+3] + user + ":***" + dsn[at:]
	}
	return dsn
}

// Close releases the database.
func (s *Store) Close() error {
	if s.commits != nil {
		s.commits.close()
	}
	err := s.db.Close()
	if s.durable != nil && s.durable != s.db {
		err = errors.Join(err, s.durable.Close())
	}
	return err
}

// Ping reports whether the database answers; used by readiness checks.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Dialect names the backing database, "sqlite" or "postgres".
func (s *Store) Dialect() string {
	if s.dialect == postgres {
		return "postgres"
	}
	return "sqlite"
}

// rebind turns the '?' placeholders used throughout this package into $n for PostgreSQL.
func (s *Store) rebind(query string) string {
	if s.dialect != postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (s *Store) exec(ctx context.Context, q execer, query string, args ...any) (sql.Result, error) {
	return q.ExecContext(ctx, s.rebind(query), args...)
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// insertID runs an INSERT and returns the new row's id on either database.
func (s *Store) insertID(ctx context.Context, q execer, query string, args ...any) (int64, error) {
	if s.dialect == postgres {
		var id int64
		err := q.QueryRowContext(ctx, s.rebind(query+" RETURNING id"), args...).Scan(&id)
		return id, err
	}
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

const timeLayout = "2006-01-02T15:04:05.000Z"

// formatTime renders t in the sortable UTC text form every table uses (timeLayout). It
// writes the digits itself: time.Format, which interprets the layout on every call, was
// half a second of a million-row import.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.Format(timeLayout)
	}
	hour, minute, second := t.Clock()
	var b [len(timeLayout)]byte
	putDigits(b[0:4], year)
	b[4] = '-'
	putDigits(b[5:7], int(month))
	b[7] = '-'
	putDigits(b[8:10], day)
	b[10] = 'T'
	putDigits(b[11:13], hour)
	b[13] = ':'
	putDigits(b[14:16], minute)
	b[16] = ':'
	putDigits(b[17:19], second)
	b[19] = '.'
	putDigits(b[20:23], t.Nanosecond()/int(time.Millisecond))
	b[23] = 'Z'
	return string(b[:])
}

// putDigits writes v's last len(into) decimal digits into into, zero-padded.
func putDigits(into []byte, v int) {
	for i := len(into) - 1; i >= 0; i-- {
		into[i] = byte('0' + v%10)
		v /= 10
	}
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func (s *Store) stamp() string { return formatTime(s.now()) }

func (s *Store) migrate(ctx context.Context) error { return s.migrateTo(ctx, math.MaxInt) }

// ErrNewerSchema is returned by Open for a database a newer kooflow release migrated:
// this release does not know its tables, and must not write to them.
var ErrNewerSchema = errors.New("the database was migrated by a newer kooflow release")

// refuseNewerSchema fails when a migration this release does not have was applied — a
// rollback to an older release on the newer release's database, which migrations (only
// forward) cannot undo.
func refuseNewerSchema(applied map[int]bool, newestKnown int) error {
	newest := 0
	for v := range applied {
		newest = max(newest, v)
	}
	if newest > newestKnown {
		return fmt.Errorf("%w (its migration %04d; this release knows up to %04d): run that release, or restore the backup taken before the upgrade to roll back",
			ErrNewerSchema, newest, newestKnown)
	}
	return nil
}

// migrateTo applies the migrations not applied yet up to version last (tests open the
// database a previous release left with it).
func (s *Store) migrateTo(ctx context.Context, last int) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if s.dialect == postgres {
		// Several processes may start at once against one database.
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(7151)"); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"); err != nil {
		return err
	}
	applied := map[int]bool{}
	rows, err := tx.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return err
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[v] = true
	}
	rows.Close()

	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	versions := make([]int, len(names))
	for i, name := range names {
		if versions[i], err = strconv.Atoi(strings.SplitN(filepath.Base(name), "_", 2)[0]); err != nil {
			return fmt.Errorf("migration %s: name must start with a number", name)
		}
	}
	if err := refuseNewerSchema(applied, versions[len(versions)-1]); err != nil {
		return err
	}
	for i, name := range names {
		version := versions[i]
		if applied[version] || version > last {
			continue
		}
		body, err := migrationFiles.ReadFile(name)
		if err != nil {
			return err
		}
		idType := "INTEGER PRIMARY KEY AUTOINCREMENT"
		if s.dialect == postgres {
			idType = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
		}
		for _, stmt := range strings.Split(strings.ReplaceAll(string(body), "{{ID}}", idType), ";") {
			if strings.TrimSpace(stripComments(stmt)) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migration %s: %w", name, err)
			}
		}
		if _, err := s.exec(ctx, tx, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", version, s.stamp()); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func stripComments(stmt string) string {
	var b strings.Builder
	for _, line := range strings.Split(stmt, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// inTx runs fn in a transaction, committing when it returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return txOn(ctx, s.db, fn)
}

// durableTx is inTx for what kooflow answers "done" for: the commit is on disk when it
// returns (see Store.durable).
//
// fn gets the context its statements run under: on SQLite, where durable transactions
// share group commits (see groupCommitter), it is ctx without its cancellation. fn may
// run more than once (a group that failed is run again member by member), so it must set
// whatever it reports afresh on each run.
func (s *Store) durableTx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if s.commits != nil {
		return s.commits.do(ctx, fn)
	}
	return txOn(ctx, s.durable, func(tx *sql.Tx) error { return fn(ctx, tx) })
}

func txOn(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}
