package store

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"iter"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	moderncsqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ImportRow is one subscription of a bulk import and the line of the file it came from,
// which every problem report names.
type ImportRow struct {
	Line int
	Subscription
}

// ImportStats counts what an import did.
type ImportStats struct {
	// ImportID numbers the import in the registry's record of imports (0 when it
	// changed nothing): the subscriptions it created and the updates it made name it in
	// their history. Numbers increase; on PostgreSQL they may skip one an import that was
	// refused or rolled back had drawn.
	ImportID int64
	// Inserted counts new subscriptions.
	Inserted int
	// Updated counts existing subscriptions the import changed.
	Updated int
	// Unchanged counts existing subscriptions the import left as they were: no write,
	// no history event.
	Unchanged int
}

// Import phases reported through ImportOptions.Progress.
const (
	PhaseStaging  = "staging"
	PhaseChecking = "checking"
	PhaseApplying = "applying"
	// PhaseIndexing: a first load on PostgreSQL builds the registry's indexes.
	PhaseIndexing = "indexing"
)

// ImportProgress says how far an import is. Done and Total count rows; Total is 0 when
// the caller did not say how many rows to expect.
type ImportProgress struct {
	Phase string
	Done  int
	Total int
}

// ImportOrigin says who ran an import and from what, for the registry's record of it
// (table registry_imports) and the history of every subscription it created or changed.
type ImportOrigin struct {
	// Actor is who ran it: an operating-system user, or the console's signed-in operator.
	Actor string
	// Via is the door it came through: "cli" or "console".
	Via string
	// Source names the file.
	Source string
}

// ImportOptions tune ImportSubscriptions.
type ImportOptions struct {
	// Origin is recorded with the import.
	Origin ImportOrigin
	// Total is the number of rows the source will yield, when known (for progress).
	Total int
	// Confirm, when set, is called after the rows were read and before any commit: an
	// error ends the import with nothing applied, and is returned. (A caller that checks
	// the rows elsewhere, at the same time, says here whether they passed.)
	Confirm func() error
	// Progress, when set, is called as the import advances, one call at a time but not
	// always from the caller's goroutine (pgx's COPY reads rows on its own), and on SQLite
	// while the import's statement runs: it should return quickly.
	Progress func(ImportProgress)
	// ApplyBatch is how many file lines one apply statement covers (default 50,000).
	ApplyBatch int
}

// RowProblem is why one row of an import cannot be applied.
type RowProblem struct {
	Line   int
	Reason string
}

// MaxReportedProblems bounds how many row problems an import error carries; the rest
// are only counted, so a file of a million bad rows cannot exhaust memory.
const MaxReportedProblems = 10_000

// ImportConflictError refuses a whole import: rows that name the same subscription
// twice, or whose identities (instanceId, gIccid+packageCode, orderId) belong to
// different subscriptions. Nothing was applied.
type ImportConflictError struct {
	// Problems are sorted by line, at most MaxReportedProblems of them.
	Problems []RowProblem
	// Total counts every row with a problem.
	Total int
}

// Error implements error.
func (e *ImportConflictError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d row(s) conflict, nothing imported:", e.Total)
	for i, p := range e.Problems {
		if i == 50 {
			fmt.Fprintf(&b, "\n  … and %d more", e.Total-50)
			break
		}
		fmt.Fprintf(&b, "\n  row %d: %s", p.Line, p.Reason)
	}
	return b.String()
}

// stagingTable holds an import's rows while it is checked and applied, and matchTable
// what each row names in the registry (rows naming nothing known may be absent): narrow
// rows written once, instead of rewriting every wide staged row. Both are temporary
// tables private to the import's connection.
const (
	stagingTable = "kooflow_import"
	matchTable   = "kooflow_match"
	// feedTable reads the rows being staged on SQLite (importfeed.go).
	feedTable = "kooflow_feed"
)

// importer carries one import's state.
type importer struct {
	s      *Store
	opts   ImportOptions
	now    string
	staged int
	// minLine and maxLine bound the staged lines, for batching the apply.
	minLine, maxLine int
	// firstLoadRead counts the rows a first load read before a unique index stopped it
	// (0: there was none): the rows repeat an identity, and this import, ranging over
	// them again, must find at least as many.
	firstLoadRead int
	// Which identities occur, so checks that cannot find anything are skipped.
	withInstance, withSIM, withOrder, instanceAndSIM, orderAndOther int
}

// progress reports done of the rows read (or of opts.Total, when it says more).
func (im *importer) progress(phase string, done int) {
	if im.opts.Progress != nil {
		im.opts.Progress(ImportProgress{Phase: phase, Done: done, Total: max(im.opts.Total, im.staged)})
	}
}

// reading reports progress while the rows are still being read: of opts.Total, 0 when
// the caller does not know how many there are.
func (im *importer) reading(phase string) {
	if im.opts.Progress != nil {
		im.opts.Progress(ImportProgress{Phase: phase, Done: im.staged, Total: im.opts.Total})
	}
}

// confirm asks opts.Confirm, if set, whether the import may commit.
func (im *importer) confirm() error {
	if im.opts.Confirm == nil {
		return nil
	}
	return im.opts.Confirm()
}

func (im *importer) note(r ImportRow) error {
	if r.Line <= 0 {
		return fmt.Errorf("row line %d: lines start at 1", r.Line)
	}
	if im.staged == 0 || r.Line < im.minLine {
		im.minLine = r.Line
	}
	if r.Line <= im.maxLine {
		return fmt.Errorf("row line %d: lines must increase (previous %d)", r.Line, im.maxLine)
	}
	im.maxLine = r.Line
	im.staged++
	sim := r.GIccid != "" && r.PackageCode != ""
	if r.InstanceID != "" {
		im.withInstance++
	}
	if sim {
		im.withSIM++
	}
	if r.OrderID != "" {
		im.withOrder++
	}
	if r.InstanceID != "" && r.GIccid != "" {
		im.instanceAndSIM++
	}
	if r.OrderID != "" && (r.InstanceID != "" || r.GIccid != "") {
		im.orderAndOther++
	}
	return nil
}

// stageValues are a row's staging columns, in stagingColumns order.
func stageValues(r ImportRow, into []any) []any {
	return registryValues(r, append(into, int64(r.Line)))
}

// registryValues are a row's columns of the registry, in stagingColumns order after line
// (and firstLoadColumns order).
func registryValues(r ImportRow, into []any) []any {
	return append(into, nullable(r.InstanceID), r.OrderID, r.CarrierUserID, r.PackageID, r.CarrierOrderID,
		r.CarrierOrderTime, formatTime(r.ExpireTime), nullable(r.GIccid), nullable(r.PackageCode))
}

// stagingColumnTypes and matchColumnTypes are the temporary tables' columns after line.
const (
	stagingColumnTypes = `instance_id TEXT, order_id TEXT NOT NULL, carrier_user_id TEXT NOT NULL, package_id TEXT NOT NULL,
 carrier_order_id TEXT NOT NULL, carrier_order_time TEXT NOT NULL, expire_time TEXT NOT NULL, g_iccid TEXT, package_code TEXT`
	matchColumnTypes = `target_id BIGINT, sim_owner BIGINT, order_owner BIGINT, changes TEXT NOT NULL`
)

var stagingColumns = []string{"line", "instance_id", "order_id", "carrier_user_id", "package_id", "carrier_order_id",
	"carrier_order_time", "expire_time", "g_iccid", "package_code"}

// UpsertSubscriptions writes rows in one transaction, as ImportSubscriptions does, with
// no origin recorded; each row's line is its 1-based position in rows.
func (s *Store) UpsertSubscriptions(ctx context.Context, rows []Subscription) (ImportStats, error) {
	return s.ImportSubscriptions(ctx, SubscriptionRows(rows), ImportOptions{Total: len(rows)})
}

// SubscriptionRows yields rows for ImportSubscriptions, each row's line its 1-based
// position in rows.
func SubscriptionRows(rows []Subscription) iter.Seq2[ImportRow, error] {
	return func(yield func(ImportRow, error) bool) {
		for i, r := range rows {
			if !yield(ImportRow{Line: i + 1, Subscription: r}, nil) {
				return
			}
		}
	}
}

// ImportSubscriptions upserts a stream of subscriptions, all or nothing, in memory
// independent of how many there are. A row is the subscription named by its instance ID
// when it has one, otherwise by its gIccid and packageCode, otherwise by its orderId;
// rows naming nothing known are inserted ("imported" in the history), rows that change a
// subscription update it ("updated", naming the changed fields), rows equal to the
// registry change nothing. Status and freeze state are kept. The import itself is recorded
// once, with opts.Origin and its counts; a subscription's history names the import that
// created it and each that changed it.
//
// Into an empty registry every row is new: the rows stream straight into it (firstload.go),
// and the registry's unique indexes catch rows repeating an identity. Otherwise, or when
// they did, the rows are staged (SQLite: through a virtual table into a temporary table;
// PostgreSQL: COPY), then checked as sets: two rows naming the same subscription, or a
// row whose gIccid/packageCode or orderId belongs to another subscription than the one
// its identity names, refuse the whole import with an *ImportConflictError listing every
// such row. Only then are the rows applied, in batches of set-based statements inside one
// transaction. Lines must increase from row to row. An error from rows stops the import
// and nothing is applied. rows may be ranged over twice (a first load that met a repeated
// identity is staged again to say which rows).
func (s *Store) ImportSubscriptions(ctx context.Context, rows iter.Seq2[ImportRow, error], opts ImportOptions) (ImportStats, error) {
	if opts.ApplyBatch <= 0 {
		opts.ApplyBatch = 50_000
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return ImportStats{}, fmt.Errorf("import subscriptions: %w", err)
	}
	defer conn.Close()
	if s.dialect == sqlite {
		// The connection is closed afterwards instead of returned to the pool: that
		// deletes its temporary database, staged rows and all, at once, where dropping
		// the staging tables visited every page of them (1 s of a million-row import's
		// 18 s of CPU), and it takes the import's page cache size with it.
		defer conn.Raw(func(any) error { return driver.ErrBadConn })
		for _, db := range []string{"main", "temp"} {
			if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA %s.cache_size = -%d", db, importCacheKiB)); err != nil {
				return ImportStats{}, fmt.Errorf("import subscriptions: set %s cache size: %w", db, err)
			}
		}
	}
	first := &importer{s: s, opts: opts, now: s.stamp()}
	stats, loaded, err := first.loadIntoEmpty(ctx, conn, rows)
	if err == nil && !loaded {
		im := &importer{s: s, opts: opts, now: first.now, firstLoadRead: first.staged}
		if s.dialect == postgres {
			stats, err = im.runPostgres(ctx, conn, rows)
		} else {
			stats, err = im.runSQLite(ctx, conn, rows)
		}
	}
	if err != nil {
		var conflict *ImportConflictError
		if errors.As(err, &conflict) {
			return ImportStats{}, err
		}
		return ImportStats{}, fmt.Errorf("import subscriptions: %w", err)
	}
	return stats, nil
}

// importCacheKiB is SQLite's page cache for the import's connection (main and temp
// databases each), gone with the connection after the import. Measured on a million
// rows: 8 MB instead of the default 2 MB saves about 5% of the time for 25 MB more
// resident memory; 32 MB saves another 5% for 95 MB more.
const importCacheKiB = 8 << 10

// runSQLite stages on the import's own connection before taking the write lock, so
// other writers (the webhook) wait only for the checks and the apply.
func (im *importer) runSQLite(ctx context.Context, conn *sql.Conn, rows iter.Seq2[ImportRow, error]) (ImportStats, error) {
	for _, q := range []string{
		"DROP TABLE IF EXISTS temp." + stagingTable,
		"DROP TABLE IF EXISTS temp." + matchTable,
		"DROP TABLE IF EXISTS temp." + feedTable,
		`CREATE TEMP TABLE ` + stagingTable + ` (line INTEGER PRIMARY KEY, ` + stagingColumnTypes + `)`,
		`CREATE TEMP TABLE ` + matchTable + ` (line INTEGER PRIMARY KEY, ` + matchColumnTypes + `)`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return ImportStats{}, fmt.Errorf("create staging tables: %w", err)
		}
	}
	// Staging writes only the temporary database: a plain (deferred) BEGIN takes no
	// lock on the registry, so other writers carry on meanwhile.
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return ImportStats{}, fmt.Errorf("begin staging: %w", err)
	}
	if err := im.stageSQLite(ctx, conn, rows); err != nil {
		conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return ImportStats{}, err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return ImportStats{}, fmt.Errorf("commit staging: %w", err)
	}
	// Before the write lock is taken.
	if err := im.confirm(); err != nil {
		return ImportStats{}, err
	}
	var stats ImportStats
	err := im.writeTx(ctx, conn, func(tx *sql.Tx) (err error) {
		stats, err = im.checkAndApply(ctx, tx)
		return err
	})
	if err == nil || !isUniqueViolation(err) {
		return stats, err
	}
	// The apply met a repeated identity (its statement rolled the transaction back):
	// check everything, in a new transaction, to say which rows.
	if cerr := im.writeTx(ctx, conn, func(tx *sql.Tx) error {
		if err := im.resolve(ctx, tx); err != nil {
			return err
		}
		return im.check(ctx, tx, true)
	}); cerr != nil {
		return ImportStats{}, cerr
	}
	return ImportStats{}, err
}

// writeTx runs fn in a write transaction on conn, committing when it returns nil.
func (im *importer) writeTx(ctx context.Context, conn *sql.Conn, fn func(tx *sql.Tx) error) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin import transaction: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit import: %w", err)
	}
	return nil
}

// stageSQLite streams the rows into the staging table in one statement, reading them
// through an import feed (importfeed.go).
func (im *importer) stageSQLite(ctx context.Context, conn *sql.Conn, rows iter.Seq2[ImportRow, error]) error {
	next, stop := iter.Pull2(rows)
	defer stop()
	src := &copySource{im: im, next: next}
	remove, err := openImportFeed(ctx, conn, src)
	if err != nil {
		return err
	}
	defer remove()
	columns := strings.Join(stagingColumns, ", ")
	_, err = conn.ExecContext(ctx, "INSERT OR ROLLBACK INTO temp."+stagingTable+" ("+columns+") SELECT "+columns+" FROM temp."+feedTable)
	if src.err != nil {
		return src.err
	}
	if err != nil {
		return fmt.Errorf("stage rows up to line %d: %w", im.maxLine, err)
	}
	if _, err := conn.ExecContext(ctx, "DROP TABLE temp."+feedTable); err != nil {
		return fmt.Errorf("close the staged rows' feed: %w", err)
	}
	im.progress(PhaseStaging, im.staged)
	return nil
}

// runPostgres stages with COPY inside the import's transaction.
func (im *importer) runPostgres(ctx context.Context, conn *sql.Conn, rows iter.Seq2[ImportRow, error]) (ImportStats, error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return ImportStats{}, fmt.Errorf("begin import transaction: %w", err)
	}
	defer tx.Rollback()
	if err := im.serialize(ctx, tx); err != nil {
		return ImportStats{}, err
	}
	// Joins of a million staged rows with the registry hash in memory rather than in
	// batches on disk.
	for _, q := range []string{
		"SET LOCAL work_mem = '64MB'",
		// The import's few big statements run once: compiling them (JIT, on by default
		// for costly plans) took 1.5 s of a million-row re-import and saved nothing.
		"SET LOCAL jit = off",
		`CREATE TEMP TABLE ` + stagingTable + ` (line BIGINT NOT NULL, ` + stagingColumnTypes + `) ON COMMIT DROP`,
		`CREATE TEMP TABLE ` + matchTable + ` (line BIGINT PRIMARY KEY, ` + matchColumnTypes + `) ON COMMIT DROP`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return ImportStats{}, fmt.Errorf("create staging tables: %w", err)
		}
	}
	next, stop := iter.Pull2(rows)
	defer stop()
	src := &copySource{im: im, next: next}
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("COPY needs a pgx connection, got %T", dc)
		}
		_, err := c.Conn().CopyFrom(ctx, pgx.Identifier{stagingTable}, stagingColumns, src)
		return err
	})
	if src.err != nil {
		return ImportStats{}, src.err
	}
	if err != nil {
		return ImportStats{}, fmt.Errorf("stage rows (COPY) up to line %d: %w", im.maxLine, err)
	}
	im.progress(PhaseStaging, im.staged)
	for _, q := range []string{"ALTER TABLE " + stagingTable + " ADD PRIMARY KEY (line)", "ANALYZE " + stagingTable} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return ImportStats{}, fmt.Errorf("prepare staged rows: %w", err)
		}
	}
	stats, err := im.checkAndApply(ctx, tx)
	if err != nil {
		return ImportStats{}, err
	}
	if err := im.confirm(); err != nil {
		return ImportStats{}, err
	}
	if err := tx.Commit(); err != nil {
		return ImportStats{}, fmt.Errorf("commit import: %w", err)
	}
	return stats, nil
}

// copySource feeds pgx's CopyFrom, or SQLite's import feed, from the pulled row
// iterator, noting each row and reporting progress every 10,000.
type copySource struct {
	im   *importer
	next func() (ImportRow, error, bool)
	// values renders a row (stageValues unless set), and phase names the work the rows
	// are read for (PhaseStaging unless set).
	values func(ImportRow, []any) []any
	phase  string
	vals   []any
	err    error
	// read is set once an import feed has started reading the rows, which stream once.
	read bool
}

// Next pulls and notes the next row, and renders its values; false at the end or on an
// error (Err). The rows' source (the file's parser, the progress callback) runs inside
// SQLite's statement or on pgx's COPY goroutine: a panic in it becomes the import's
// error instead of unwinding through SQLite or ending the process.
func (c *copySource) Next() (more bool) {
	defer func() {
		if p := recover(); p != nil {
			c.err, more = fmt.Errorf("reading the import's rows panicked: %v", p), false
		}
	}()
	r, err, ok := c.next()
	if !ok {
		return false
	}
	if err == nil {
		err = c.im.note(r)
	}
	if err != nil {
		c.err = err
		return false
	}
	if c.values != nil {
		c.vals = c.values(r, c.vals[:0])
	} else {
		c.vals = stageValues(r, c.vals[:0])
	}
	if c.im.staged%10_000 == 0 {
		c.im.reading(cmp.Or(c.phase, PhaseStaging))
	}
	return true
}

// Values are the current row's values.
func (c *copySource) Values() ([]any, error) { return c.vals, nil }

// Err is why Next returned false early: the source's error or a row out of order.
func (c *copySource) Err() error { return c.err }

// checkAndApply resolves every staged row against the registry, refuses the import if
// any row conflicts, and applies the rest. It runs inside the import's transaction.
func (im *importer) checkAndApply(ctx context.Context, tx *sql.Tx) (ImportStats, error) {
	if im.staged < im.firstLoadRead {
		return ImportStats{}, fmt.Errorf("the rows could not be read a second time (%d rows, %d the first time): "+
			"a first load that meets a repeated identity ranges over them again", im.staged, im.firstLoadRead)
	}
	if im.staged == 0 {
		return ImportStats{}, nil
	}
	im.progress(PhaseChecking, 0)
	registered, err := hasSubscriptions(ctx, tx)
	if err != nil {
		return ImportStats{}, err
	}
	if !registered && im.firstLoadRead > 0 {
		// A first load met a repeated identity: find the rows now, before inserting
		// them all a second time only to meet it again.
		if err := im.check(ctx, tx, true); err != nil {
			return ImportStats{}, err
		}
	}
	stats := ImportStats{Inserted: im.staged}
	// Into an empty registry every row is new: nothing to match or compare.
	if registered {
		if err := im.resolve(ctx, tx); err != nil {
			return ImportStats{}, err
		}
		// The cheap checks first: identities held by other subscriptions, and rows that
		// resolve to the same existing subscription. Repeated identities among new rows
		// need every staged row sorted; the registry's unique indexes find them during
		// the apply instead, and then the full checks say which rows.
		if err := im.check(ctx, tx, false); err != nil {
			var conflict *ImportConflictError
			if !errors.As(err, &conflict) {
				return ImportStats{}, err
			}
			if full := im.check(ctx, tx, true); full != nil {
				return ImportStats{}, full
			}
			return ImportStats{}, err
		}
		err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(CASE WHEN changes <> '' THEN 1 ELSE 0 END), 0),
 COALESCE(SUM(CASE WHEN changes = '' THEN 1 ELSE 0 END), 0) FROM `+matchTable+` WHERE target_id IS NOT NULL`).Scan(&stats.Updated, &stats.Unchanged)
		if err != nil {
			return ImportStats{}, fmt.Errorf("count staged rows: %w", err)
		}
		stats.Inserted = im.staged - stats.Updated - stats.Unchanged
	}
	if im.s.dialect == sqlite {
		// A unique violation rolls the whole transaction back (see orRollback); the
		// caller checks everything in a new one.
		if err := im.apply(ctx, tx, &stats); err != nil {
			return ImportStats{}, err
		}
		return stats, nil
	}
	if _, err := tx.ExecContext(ctx, "SAVEPOINT kooflow_apply"); err != nil {
		return ImportStats{}, fmt.Errorf("savepoint before the apply: %w", err)
	}
	if err := im.apply(ctx, tx, &stats); err != nil {
		if !isUniqueViolation(err) {
			return ImportStats{}, err
		}
		if _, rbErr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT kooflow_apply"); rbErr != nil {
			return ImportStats{}, err
		}
		if !registered {
			if rerr := im.resolve(ctx, tx); rerr != nil {
				return ImportStats{}, rerr
			}
		}
		if cerr := im.check(ctx, tx, true); cerr != nil {
			return ImportStats{}, cerr
		}
		return ImportStats{}, concurrentHint(err)
	}
	return stats, nil
}

// isUniqueViolation reports whether err is a unique constraint failing.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var liteErr *moderncsqlite.Error
	if errors.As(err, &liteErr) {
		return liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// changesExpr lists, as ", field, field", what applying staged row r changes in
// subscription t; empty when nothing would change. It mirrors the update in apply.
func (s *Store) changesExpr() string {
	differ := "IS NOT"
	if s.dialect == postgres {
		differ = "IS DISTINCT FROM"
	}
	field := func(name, stored, staged string) string {
		return fmt.Sprintf("(CASE WHEN %s %s %s THEN ', %s' ELSE '' END)", staged, differ, stored, name)
	}
	return strings.Join([]string{
		field("instanceId", "t.instance_id", "COALESCE(r.instance_id, t.instance_id)"),
		field("orderId", "t.order_id", "r.order_id"),
		field("carrierUserId", "t.carrier_user_id", "r.carrier_user_id"),
		field("packageId", "t.package_id", "r.package_id"),
		field("carrierOrderId", "t.carrier_order_id", "r.carrier_order_id"),
		field("carrierOrderTime", "t.carrier_order_time", "r.carrier_order_time"),
		field("expireTime", "t.expire_time", "r.expire_time"),
		field("gIccid", "t.g_iccid", "COALESCE(r.g_iccid, t.g_iccid)"),
		field("packageCode", "t.package_code", "COALESCE(r.package_code, t.package_code)"),
	}, " || ")
}

// simOwner and orderOwner are, for staged row r and the subscription t its identity
// names (if any), the subscriptions holding r's SIM and r's orderId: t itself when it
// holds them, else an index lookup.
const (
	simOwner = `CASE WHEN r.g_iccid IS NULL OR r.package_code IS NULL THEN NULL
     WHEN t.g_iccid = r.g_iccid AND t.package_code = r.package_code THEN t.id
     ELSE (SELECT s.id FROM subscriptions s WHERE s.g_iccid = r.g_iccid AND s.package_code = r.package_code) END`
	orderOwner = `CASE WHEN r.order_id = '' THEN NULL WHEN t.order_id = r.order_id THEN t.id
     ELSE (SELECT s.id FROM subscriptions s WHERE s.order_id = r.order_id AND s.order_id <> '') END`
)

// resolve finds, for every staged row, the subscription its identity names (target_id),
// the subscriptions holding its SIM and its orderId, and what applying it would change,
// into the match table.
func (im *importer) resolve(ctx context.Context, tx *sql.Tx) error {
	s := im.s
	if s.dialect == postgres {
		// One statement, one join per kind of identity: each staged row is joined with
		// the subscription its identity names, and the SIM's and the order's owners are
		// looked up by index only when that subscription does not hold them itself. (Four
		// joins of the whole registry, one per identity and one for the target, cost a
		// re-import of a million rows three hash tables of a million rows and a sort.)
		var branches []string
		branch := func(where, join string) {
			branches = append(branches, `SELECT r.line AS line, t.id AS target_id, `+simOwner+` AS sim_owner, `+orderOwner+` AS order_owner,
   CASE WHEN t.id IS NULL THEN '' ELSE `+s.changesExpr()+` END AS changes
  FROM `+stagingTable+` r LEFT JOIN subscriptions t ON `+join+` WHERE `+where)
		}
		if im.withInstance > 0 {
			branch("r.instance_id IS NOT NULL", "t.instance_id = r.instance_id")
		}
		if im.withInstance < im.staged {
			branch("r.instance_id IS NULL AND r.g_iccid IS NOT NULL", "t.g_iccid = r.g_iccid AND t.package_code = r.package_code")
			branch("r.instance_id IS NULL AND r.g_iccid IS NULL", "t.order_id = r.order_id AND t.order_id <> ''")
		}
		for _, q := range []string{`INSERT INTO ` + matchTable + ` (line, target_id, sim_owner, order_owner, changes)
 SELECT line, target_id, sim_owner, order_owner, changes FROM (` + strings.Join(branches, "\n UNION ALL ") + `) x
 WHERE target_id IS NOT NULL OR sim_owner IS NOT NULL OR order_owner IS NOT NULL`, "ANALYZE " + matchTable} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("match staged rows with the registry: %w", err)
			}
		}
		return nil
	}
	// SQLite: per staged row, one index lookup for the subscription its identity names
	// and one fetch of it by id; the SIM's and the order's owners are looked up only
	// when that subscription does not hold them itself. A batch of lines at a time,
	// for progress.
	resolve := `INSERT OR ROLLBACK INTO ` + matchTable + ` (line, target_id, sim_owner, order_owner, changes)
 SELECT line, target_id, sim_owner, order_owner, changes FROM (SELECT r.line AS line, t.id AS target_id,
   ` + simOwner + ` AS sim_owner, ` + orderOwner + ` AS order_owner,
   CASE WHEN t.id IS NULL THEN '' ELSE ` + s.changesExpr() + ` END AS changes
  FROM ` + stagingTable + ` r LEFT JOIN subscriptions t ON t.id = CASE
   WHEN r.instance_id IS NOT NULL THEN (SELECT id FROM subscriptions s WHERE s.instance_id = r.instance_id)
   WHEN r.g_iccid IS NOT NULL THEN (SELECT id FROM subscriptions s WHERE s.g_iccid = r.g_iccid AND s.package_code = r.package_code)
   ELSE (SELECT id FROM subscriptions s WHERE s.order_id = r.order_id AND s.order_id <> '') END
  WHERE r.line BETWEEN ? AND ?)
 WHERE target_id IS NOT NULL OR sim_owner IS NOT NULL OR order_owner IS NOT NULL`
	return im.batches(func(lo, hi int) error {
		if _, err := tx.ExecContext(ctx, resolve, lo, hi); err != nil {
			return fmt.Errorf("match staged lines %d-%d with the registry: %w", lo, hi, err)
		}
		return nil
	}, PhaseChecking)
}

// batches calls fn for consecutive line ranges covering the staged rows, reporting
// progress for phase after each.
func (im *importer) batches(fn func(lo, hi int) error, phase string) error {
	span := im.maxLine - im.minLine + 1
	for lo := im.minLine; lo <= im.maxLine; lo += im.opts.ApplyBatch {
		hi := min(lo+im.opts.ApplyBatch-1, im.maxLine)
		if err := fn(lo, hi); err != nil {
			return err
		}
		im.progress(phase, int(int64(im.staged)*int64(hi-im.minLine+1)/int64(span)))
	}
	return nil
}

// check refuses the import when rows name the same subscription twice or carry an
// identity that belongs to another subscription. Unless full, rows repeating an
// identity that is new to the registry are not looked for.
func (im *importer) check(ctx context.Context, tx *sql.Tx, full bool) error {
	problems := map[int][]string{}
	add := func(line int, reason string) {
		problems[line] = append(problems[line], reason)
	}
	// Rows of the file that name the same identity.
	dupIn := func(table, label, cols, where string, onlyNew bool) error {
		rows, err := tx.QueryContext(ctx, `SELECT line, first, label FROM (SELECT line, `+label+` AS label,
 MIN(line) OVER (PARTITION BY `+cols+`) AS first FROM `+table+` WHERE `+where+`) d WHERE line > first ORDER BY line`)
		if err != nil {
			return fmt.Errorf("look for repeated identities: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var line, first int
			var what string
			if err := rows.Scan(&line, &first, &what); err != nil {
				return err
			}
			if _, seen := problems[line]; onlyNew && seen {
				continue
			}
			add(line, fmt.Sprintf("%s is already on row %d", what, first))
		}
		return rows.Err()
	}
	dup := func(label, cols, where string, onlyNew bool) error {
		return dupIn(stagingTable, label, cols, where, onlyNew)
	}
	if full && im.withInstance > 1 {
		if err := dup("'instanceId ' || instance_id", "instance_id", "instance_id IS NOT NULL", false); err != nil {
			return err
		}
	}
	if full && im.withSIM > 1 {
		if err := dup("'gIccid ' || g_iccid || ' packageCode ' || package_code", "g_iccid, package_code", "g_iccid IS NOT NULL AND package_code IS NOT NULL", false); err != nil {
			return err
		}
	}
	if full && im.withOrder > 1 {
		if err := dup("'orderId ' || order_id", "order_id", "order_id <> ''", false); err != nil {
			return err
		}
	}
	// Rows that resolve to one existing subscription (in a full check, those with
	// different identities: the same identity is reported above). When the targets
	// increase from line to line, as in a file exported from the registry, none repeats
	// and the sort of every matched row that finds repeats is skipped.
	increasing, err := im.targetsIncrease(ctx, tx)
	if err != nil {
		return err
	}
	if !increasing {
		if err := dupIn(matchTable, "'subscription ' || target_id || ', by another of its identities,'", "target_id", "target_id IS NOT NULL", full); err != nil {
			return err
		}
	}
	describe := func(id int64, instance, iccid, code, order string) string {
		var parts []string
		if instance != "" {
			parts = append(parts, "instanceId "+instance)
		}
		if iccid != "" {
			parts = append(parts, "gIccid "+iccid+" packageCode "+code)
		}
		if order != "" {
			parts = append(parts, "orderId "+order)
		}
		if len(parts) == 0 {
			return fmt.Sprintf("subscription %d", id)
		}
		return fmt.Sprintf("subscription %d (%s)", id, strings.Join(parts, ", "))
	}
	// A SIM or order already held by another subscription than the row's own. (CROSS
	// JOIN makes SQLite read the narrow match table and look the few conflicting rows up,
	// instead of reading every wide staged row; PostgreSQL plans it as any join.)
	conflict := func(what, owner string, reason func(line int, target sql.NullInt64, r, o [4]string, oid int64) string) error {
		rows, err := tx.QueryContext(ctx, `SELECT r.line, m.target_id, COALESCE(r.instance_id, ''), COALESCE(r.g_iccid, ''), COALESCE(r.package_code, ''), r.order_id,
 o.id, COALESCE(o.instance_id, ''), COALESCE(o.g_iccid, ''), COALESCE(o.package_code, ''), o.order_id
 FROM `+matchTable+` m CROSS JOIN `+stagingTable+` r CROSS JOIN subscriptions o
 WHERE (m.target_id IS NULL OR m.target_id <> m.`+owner+`) AND r.line = m.line AND o.id = m.`+owner+` ORDER BY m.line`)
		if err != nil {
			return fmt.Errorf("look for %s conflicts: %w", what, err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				line   int
				target sql.NullInt64
				r, o   [4]string
				oid    int64
			)
			if err := rows.Scan(&line, &target, &r[0], &r[1], &r[2], &r[3], &oid, &o[0], &o[1], &o[2], &o[3]); err != nil {
				return err
			}
			add(line, reason(line, target, r, o, oid))
		}
		return rows.Err()
	}
	own := func(target sql.NullInt64, r [4]string) string {
		switch {
		case !target.Valid && r[0] != "":
			return "instanceId " + r[0] + " is new to the registry"
		case !target.Valid:
			return "the row is new to the registry"
		case r[0] != "":
			return fmt.Sprintf("instanceId %s is subscription %d", r[0], target.Int64)
		default:
			return fmt.Sprintf("gIccid %s packageCode %s is subscription %d", r[1], r[2], target.Int64)
		}
	}
	if im.instanceAndSIM > 0 {
		err := conflict("SIM", "sim_owner", func(_ int, target sql.NullInt64, r, o [4]string, oid int64) string {
			return fmt.Sprintf("identity conflict: %s, but gIccid %s packageCode %s belongs to %s", own(target, r), r[1], r[2],
				describe(oid, o[0], o[1], o[2], o[3]))
		})
		if err != nil {
			return err
		}
	}
	if im.orderAndOther > 0 {
		err := conflict("orderId", "order_owner", func(_ int, target sql.NullInt64, r, o [4]string, oid int64) string {
			return fmt.Sprintf("identity conflict: %s, but orderId %s belongs to %s", own(target, r), r[3],
				describe(oid, o[0], o[1], o[2], o[3]))
		})
		if err != nil {
			return err
		}
	}
	if len(problems) == 0 {
		return nil
	}
	lines := make([]int, 0, len(problems))
	for line := range problems {
		lines = append(lines, line)
	}
	sort.Ints(lines)
	e := &ImportConflictError{Total: len(lines)}
	for _, line := range lines[:min(len(lines), MaxReportedProblems)] {
		e.Problems = append(e.Problems, RowProblem{Line: line, Reason: strings.Join(problems[line], "; ")})
	}
	return e
}

// targetsIncrease reports whether the existing subscriptions the staged rows resolve to
// increase strictly in line order, which rules out two rows naming the same one. On
// SQLite the match table is read once in line order (its rowid order: no sort; a window
// function over it cost as much as the sort it would spare); on PostgreSQL the test is
// not made (false).
func (im *importer) targetsIncrease(ctx context.Context, tx *sql.Tx) (bool, error) {
	if im.s.dialect != sqlite {
		return false, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT target_id FROM `+matchTable+` WHERE target_id IS NOT NULL ORDER BY line`)
	if err != nil {
		return false, fmt.Errorf("look for repeated targets: %w", err)
	}
	defer rows.Close()
	last := int64(-1)
	for rows.Next() {
		var target int64
		if err := rows.Scan(&target); err != nil {
			return false, fmt.Errorf("look for repeated targets: %w", err)
		}
		if target <= last {
			return false, nil
		}
		last = target
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("look for repeated targets: %w", err)
	}
	return true, nil
}

// apply records the import when it changes the registry (its row in registry_imports,
// whose id stats gets; an import of unchanged rows writes nothing) and writes the checked
// rows, a batch of lines at a time: updates of changed subscriptions,
// each with an "updated" history event naming the import, and inserts of new ones, which
// name it in imported_by (their "imported" history comes from there: no event row each).
func (im *importer) apply(ctx context.Context, tx *sql.Tx, stats *ImportStats) error {
	if stats.Inserted+stats.Updated == 0 {
		return nil
	}
	s := im.s
	id, err := im.record(ctx, tx, *stats)
	if err != nil {
		return err
	}
	stats.ImportID = id
	update := s.rebind(`UPDATE` + s.orRollback() + ` subscriptions SET instance_id = COALESCE(r.instance_id, subscriptions.instance_id), order_id = r.order_id,
 carrier_user_id = r.carrier_user_id, package_id = r.package_id, carrier_order_id = r.carrier_order_id,
 carrier_order_time = r.carrier_order_time, expire_time = r.expire_time,
 g_iccid = COALESCE(r.g_iccid, subscriptions.g_iccid), package_code = COALESCE(r.package_code, subscriptions.package_code), updated_at = ?
 FROM ` + matchTable + ` m JOIN ` + stagingTable + ` r ON r.line = m.line
 WHERE subscriptions.id = m.target_id AND m.changes <> '' AND m.line BETWEEN ? AND ?`)
	updated := s.rebind(`INSERT` + s.orRollback() + ` INTO subscription_events (subscription_id, at, event, detail, import_id)
 SELECT target_id, ?, 'updated', 'changed ' || substr(changes, 3), ? FROM ` + matchTable + `
 WHERE target_id IS NOT NULL AND changes <> '' AND line BETWEEN ? AND ? ORDER BY line`)
	// The staged rows that name no existing subscription.
	insert := s.rebind(`INSERT` + s.orRollback() + ` INTO subscriptions (instance_id, order_id, carrier_user_id, package_id, carrier_order_id,
 carrier_order_time, expire_time, g_iccid, package_code, status, frozen_period, created_at, updated_at, imported_by)
 SELECT r.instance_id, r.order_id, r.carrier_user_id, r.package_id, r.carrier_order_id, r.carrier_order_time,
 r.expire_time, r.g_iccid, r.package_code, 'active', '', ?, ?, ?
 FROM ` + stagingTable + ` r LEFT JOIN ` + matchTable + ` m ON m.line = r.line
 WHERE m.target_id IS NULL AND r.line BETWEEN ? AND ? ORDER BY r.line`)
	return im.batches(func(lo, hi int) error {
		if stats.Updated > 0 {
			if _, err := tx.ExecContext(ctx, update, im.now, lo, hi); err != nil {
				return fmt.Errorf("update subscriptions of lines %d-%d: %w", lo, hi, concurrentHint(err))
			}
			if _, err := tx.ExecContext(ctx, updated, im.now, id, lo, hi); err != nil {
				return fmt.Errorf("record updated events of lines %d-%d: %w", lo, hi, err)
			}
		}
		if stats.Inserted > 0 {
			if _, err := tx.ExecContext(ctx, insert, im.now, im.now, id, lo, hi); err != nil {
				return fmt.Errorf("insert subscriptions of lines %d-%d: %w", lo, hi, concurrentHint(err))
			}
		}
		return nil
	}, PhaseApplying)
}

// record writes the import's row in registry_imports, with its origin and stats, and
// returns its id.
func (im *importer) record(ctx context.Context, tx *sql.Tx, stats ImportStats) (int64, error) {
	o := im.opts.Origin
	id, err := im.s.insertID(ctx, tx, `INSERT INTO registry_imports (at, actor, via, source, inserted, updated, unchanged)
 VALUES (?, ?, ?, ?, ?, ?, ?)`, im.now, storable(o.Actor), storable(o.Via), storable(o.Source), stats.Inserted, stats.Updated, stats.Unchanged)
	if err != nil {
		return 0, fmt.Errorf("record the import: %w", err)
	}
	return id, nil
}

// concurrentHint explains a unique violation the checks could not foresee: on
// PostgreSQL another writer changed the registry while the import ran.
func concurrentHint(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("%w (the registry changed while the import ran; run it again)", err)
	}
	return err
}

// orRollback makes a SQLite statement roll the whole transaction back on a constraint
// failure instead of only itself: SQLite then keeps no statement journal, which costs
// more than the write itself for statements of thousands of rows.
func (s *Store) orRollback() string {
	if s.dialect == postgres {
		return ""
	}
	return " OR ROLLBACK"
}
