package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// A first load: into an empty registry every row of an import is new, so there is
// nothing to match, compare or check against the registry, and staging the rows only to
// insert them all would write and read them twice. They stream straight into the
// registry instead (SQLite: INSERT … SELECT from the import feed; PostgreSQL: COPY),
// with the import's record, in one transaction. Rows repeating an identity among
// themselves are what remains to refuse: the registry's unique indexes refuse them (on
// SQLite at the first such row; on PostgreSQL when the indexes are built again after the
// COPY), the transaction rolls back, and the caller imports the rows again through
// staging, whose checks name every such row.

// firstLoadColumns are the registry's columns a first load fills from each row, in
// registryValues order; created_at, updated_at and imported_by follow.
const firstLoadColumns = `instance_id, order_id, carrier_user_id, package_id, carrier_order_id, carrier_order_time,
 expire_time, g_iccid, package_code`

// loadIntoEmpty inserts every row when the registry is empty. loaded is false, with
// nothing written, when it is not, or when rows repeat an identity: the caller then
// imports them through staging.
func (im *importer) loadIntoEmpty(ctx context.Context, conn *sql.Conn, rows iter.Seq2[ImportRow, error]) (stats ImportStats, loaded bool, err error) {
	// Asked first outside a transaction: on SQLite a transaction takes the write lock,
	// which an import into a registry with rows takes only after staging.
	if registered, err := hasSubscriptions(ctx, conn); err != nil || registered {
		return ImportStats{}, false, err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return ImportStats{}, false, fmt.Errorf("begin import transaction: %w", err)
	}
	defer tx.Rollback()
	if err := im.serialize(ctx, tx); err != nil {
		return ImportStats{}, false, err
	}
	if registered, err := hasSubscriptions(ctx, tx); err != nil || registered {
		return ImportStats{}, false, err
	}
	id, err := im.record(ctx, tx, ImportStats{})
	if err != nil {
		return ImportStats{}, false, err
	}
	next, stop := iter.Pull2(rows)
	defer stop()
	src := &copySource{im: im, next: next, phase: PhaseApplying}
	if im.s.dialect == postgres {
		err = im.copyIntoRegistry(ctx, conn, tx, src, id)
	} else {
		err = im.feedIntoRegistry(ctx, tx, src, id)
	}
	switch {
	case src.err != nil:
		return ImportStats{}, false, src.err
	case isUniqueViolation(err):
		return ImportStats{}, false, nil
	case err != nil:
		return ImportStats{}, false, fmt.Errorf("insert subscriptions up to line %d: %w", im.maxLine, err)
	case im.staged == 0:
		return ImportStats{}, true, nil // the rolled-back record with them
	}
	stats = ImportStats{ImportID: id, Inserted: im.staged}
	if _, err := tx.ExecContext(ctx, im.s.rebind("UPDATE registry_imports SET inserted = ? WHERE id = ?"), stats.Inserted, id); err != nil {
		return ImportStats{}, false, fmt.Errorf("count the import's rows: %w", err)
	}
	if err := im.confirm(); err != nil {
		return ImportStats{}, false, err
	}
	if err := tx.Commit(); err != nil {
		return ImportStats{}, false, fmt.Errorf("commit import: %w", err)
	}
	return stats, true, nil
}

// hasSubscriptions reports whether the registry has any row.
func hasSubscriptions(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (bool, error) {
	var registered bool
	if err := q.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM subscriptions)").Scan(&registered); err != nil {
		return false, fmt.Errorf("look at the registry: %w", err)
	}
	return registered, nil
}

// importLockKey names the PostgreSQL advisory lock every import transaction takes first
// (pg_advisory_xact_lock), so imports run one at a time: two first loads of files
// sharing identities in different orders would otherwise wait on each other's
// uncommitted index entries until PostgreSQL aborted one as a deadlock. ("kooflow" in
// ASCII.)
const importLockKey = 0x6b6f6f666c6f77

// serialize waits on PostgreSQL until no other import runs (SQLite's write lock already
// does that).
func (im *importer) serialize(ctx context.Context, tx *sql.Tx) error {
	if im.s.dialect != postgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(importLockKey)); err != nil {
		return fmt.Errorf("wait for other registry imports: %w", err)
	}
	return nil
}

// feedIntoRegistry inserts src's rows on SQLite, through the import feed, in one
// statement. A unique violation rolls the transaction back (OR ROLLBACK: no statement
// journal for a million rows).
func (im *importer) feedIntoRegistry(ctx context.Context, tx *sql.Tx, src *copySource, importID int64) error {
	remove, err := openImportFeed(ctx, tx, src)
	if err != nil {
		return err
	}
	defer remove()
	_, err = tx.ExecContext(ctx, `INSERT OR ROLLBACK INTO subscriptions (`+firstLoadColumns+`, status, frozen_period, created_at, updated_at, imported_by)
 SELECT `+firstLoadColumns+`, 'active', '', ?, ?, ? FROM temp.`+feedTable, im.now, im.now, importID)
	if err == nil {
		im.progress(PhaseApplying, im.staged)
	}
	return err
}

// copyIntoRegistry COPYs src's rows into the registry on PostgreSQL, inside the import's
// transaction tx (open on conn), with the registry's secondary indexes dropped during the
// COPY and built again after it (deferIndexes): into an empty table PostgreSQL builds an
// index by sorting faster than it maintains it row by row (measured on a million rows:
// COPY and five index builds 5.1 s, the same rows into the indexed table 6.0–9.2 s). The
// unique ones, built again, refuse rows repeating an identity as the load would have.
//
// Dropping an index locks the registry (ACCESS EXCLUSIVE) from then until the commit:
// every statement on it waits for the first load, which has nothing to show before then.
// When the lock is not granted within deferLockTimeout (a long query holds the registry),
// or the indexes cannot be dropped, the rows are COPYed into the indexed table instead.
func (im *importer) copyIntoRegistry(ctx context.Context, conn *sql.Conn, tx *sql.Tx, src *copySource, importID int64) error {
	rebuild, err := deferIndexes(ctx, tx)
	if err != nil {
		return err
	}
	src.values = func(r ImportRow, into []any) []any {
		return append(registryValues(r, into), im.now, im.now, importID)
	}
	columns := strings.Fields(strings.ReplaceAll(firstLoadColumns, ",", " "))
	columns = append(columns, "created_at", "updated_at", "imported_by")
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("COPY needs a pgx connection, got %T", dc)
		}
		_, err := c.Conn().CopyFrom(ctx, pgx.Identifier{"subscriptions"}, columns, src)
		return err
	})
	if err != nil {
		return err
	}
	im.progress(PhaseApplying, im.staged)
	if len(rebuild) > 0 {
		im.progress(PhaseIndexing, im.staged)
	}
	for _, q := range rebuild {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("build the registry's index again (%s): %w", q, err)
		}
	}
	return nil
}

// deferLockTimeout bounds how long a first load waits for the registry's exclusive lock
// before it loads into the indexed table instead: while it waits, every other statement
// on the registry queues behind it.
const deferLockTimeout = "1s"

// deferIndexes drops, inside tx, the registry's unique constraints and its indexes other
// than the primary key (which the history's and the expirations' foreign keys need), and
// returns the statements that build them again, read from the database's own catalog so
// they are exactly what the migrations made. It leaves alone what it could not rebuild as
// it was: a constraint a foreign key references, an index not valid or not ready (a
// CREATE INDEX CONCURRENTLY failed or under way: then nothing is dropped), the replica
// identity's or the clustering index. When the lock or a drop fails, it rolls back to
// where it began and returns no statements: the load keeps the indexes.
func deferIndexes(ctx context.Context, tx *sql.Tx) (rebuild []string, err error) {
	type object struct{ name, definition string }
	read := func(query string) ([]object, error) {
		rows, err := tx.QueryContext(ctx, query)
		if err != nil {
			return nil, fmt.Errorf("read the registry's indexes: %w", err)
		}
		defer rows.Close()
		var objects []object
		for rows.Next() {
			var o object
			if err := rows.Scan(&o.name, &o.definition); err != nil {
				return nil, fmt.Errorf("read the registry's indexes: %w", err)
			}
			objects = append(objects, o)
		}
		return objects, rows.Err()
	}
	var unsettled bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_index
 WHERE indrelid = 'subscriptions'::regclass AND NOT (indisvalid AND indisready AND indislive))`).Scan(&unsettled); err != nil {
		return nil, fmt.Errorf("read the registry's indexes: %w", err)
	}
	if unsettled {
		return nil, nil
	}
	const rebuildable = `NOT i.indisreplident AND NOT i.indisclustered`
	constraints, err := read(`SELECT c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_index i ON i.indexrelid = c.conindid
 WHERE c.conrelid = 'subscriptions'::regclass AND c.contype = 'u' AND ` + rebuildable + `
  AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = c.conindid) ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	indexes, err := read(`SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
 WHERE i.indrelid = 'subscriptions'::regclass AND NOT i.indisprimary AND ` + rebuildable + `
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	if len(constraints)+len(indexes) == 0 {
		return nil, nil
	}
	drop := []string{"SAVEPOINT kooflow_defer_indexes", "SET LOCAL lock_timeout = '" + deferLockTimeout + "'",
		"LOCK TABLE subscriptions IN ACCESS EXCLUSIVE MODE"}
	for _, c := range constraints {
		name := pgx.Identifier{c.name}.Sanitize()
		drop = append(drop, "ALTER TABLE subscriptions DROP CONSTRAINT "+name)
		rebuild = append(rebuild, "ALTER TABLE subscriptions ADD CONSTRAINT "+name+" "+c.definition)
	}
	for _, i := range indexes {
		drop = append(drop, "DROP INDEX "+i.name) // regclass text: quoted and qualified as needed
		rebuild = append(rebuild, i.definition)
	}
	for _, q := range append(drop, "RESET lock_timeout", "RELEASE SAVEPOINT kooflow_defer_indexes") {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			// Not granted in time, or not ours to drop: load into the indexed table.
			if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT kooflow_defer_indexes"); rerr != nil {
				return nil, fmt.Errorf("drop the registry's indexes for the load (%s): %w", q, errors.Join(err, rerr))
			}
			return nil, nil
		}
	}
	return rebuild, nil
}
