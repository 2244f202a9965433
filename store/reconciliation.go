package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// runColumns are the columns scanRun reads, in order.
const runColumns = `id, cycle, workflow_id, run_id, state, statement_path, statement_rows, statement_sha256, batch_no,
 report_path, counts, error, created_at, updated_at, finished_at`

// SaveRun records where run r stands: the run of r.Cycle with Temporal's run ID r.RunID
// is created at its first save and updated at every later one, so each run of a cycle
// (a --force re-run, a reset) keeps a row of its own with the files it wrote. When it
// first completes or fails, its finishing time is kept.
//
// A run that was in flight when migration 0009 replaced the one row per cycle takes
// that row (the cycle's row without a run ID, same workflow, not finished) over.
func (s *Store) SaveRun(ctx context.Context, r ReconciliationRun) error {
	counts := ""
	if r.Counts != nil {
		b, _ := json.Marshal(r.Counts)
		counts = string(b)
	}
	now := s.stamp()
	finished := ""
	if r.State == RunCompleted || r.State == RunFailed {
		finished = now
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if r.RunID != "" {
			if _, err := s.exec(ctx, tx, `UPDATE reconciliation_runs SET run_id = ? WHERE cycle = ? AND run_id = '' AND workflow_id = ?
 AND state NOT IN ('completed', 'failed') AND NOT EXISTS (SELECT 1 FROM reconciliation_runs r WHERE r.cycle = ? AND r.run_id = ?)`,
				r.RunID, r.Cycle, r.WorkflowID, r.Cycle, r.RunID); err != nil {
				return err
			}
		}
		_, err := s.exec(ctx, tx, `INSERT INTO reconciliation_runs (cycle, workflow_id, run_id, state, statement_path, statement_rows,
 statement_sha256, batch_no, report_path, counts, error, created_at, updated_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
 ON CONFLICT (cycle, run_id) DO UPDATE SET workflow_id = excluded.workflow_id, state = excluded.state, statement_path = excluded.statement_path,
 statement_rows = excluded.statement_rows, statement_sha256 = excluded.statement_sha256, batch_no = excluded.batch_no,
 report_path = excluded.report_path, counts = excluded.counts, error = excluded.error, updated_at = excluded.updated_at,
 finished_at = CASE WHEN reconciliation_runs.finished_at <> '' THEN reconciliation_runs.finished_at ELSE excluded.finished_at END`,
			r.Cycle, r.WorkflowID, r.RunID, r.State, r.StatementPath, r.StatementRows, r.StatementSHA256, r.BatchNo, r.ReportPath, counts, r.Error,
			now, now, finished)
		return err
	})
	if err != nil {
		return fmt.Errorf("save reconciliation run %s (run %s): %w", r.Cycle, orNoRunID(r.RunID), err)
	}
	return nil
}

func orNoRunID(runID string) string {
	if runID == "" {
		return "without run ID"
	}
	return runID
}

func scanRun(row interface{ Scan(...any) error }) (ReconciliationRun, error) {
	var (
		r                                  ReconciliationRun
		counts, created, updated, finished string
	)
	if err := row.Scan(&r.ID, &r.Cycle, &r.WorkflowID, &r.RunID, &r.State, &r.StatementPath, &r.StatementRows, &r.StatementSHA256, &r.BatchNo,
		&r.ReportPath, &counts, &r.Error, &created, &updated, &finished); err != nil {
		return r, err
	}
	if counts != "" {
		_ = json.Unmarshal([]byte(counts), &r.Counts)
	}
	r.CreatedAt, r.UpdatedAt, r.FinishedAt = parseTime(created), parseTime(updated), parseTime(finished)
	return r, nil
}

// Run returns the latest run of cycle's reconciliation (the one started last); Runs
// lists them all.
func (s *Store) Run(ctx context.Context, cycle string) (ReconciliationRun, error) {
	r, err := scanRun(s.db.QueryRowContext(ctx, s.rebind("SELECT "+runColumns+" FROM reconciliation_runs WHERE cycle = ? ORDER BY id DESC LIMIT 1"), cycle))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("reconciliation run %s: %w", cycle, ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("reconciliation run %s: %w", cycle, err)
	}
	return r, nil
}

// RunByID returns the reconciliation run with this row ID (ReconciliationRun.ID), or
// ErrNotFound.
func (s *Store) RunByID(ctx context.Context, id int64) (ReconciliationRun, error) {
	r, err := scanRun(s.db.QueryRowContext(ctx, s.rebind("SELECT "+runColumns+" FROM reconciliation_runs WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("reconciliation run %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("reconciliation run %d: %w", id, err)
	}
	return r, nil
}

// LatestRun returns the latest run of the latest billing cycle that has one (cycles
// compare as yyyy-MM), or ErrNotFound when no cycle was ever reconciled.
func (s *Store) LatestRun(ctx context.Context) (ReconciliationRun, error) {
	r, err := scanRun(s.db.QueryRowContext(ctx, "SELECT "+runColumns+" FROM reconciliation_runs ORDER BY cycle DESC, id DESC LIMIT 1"))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("latest reconciliation run: %w", ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("latest reconciliation run: %w", err)
	}
	return r, nil
}

// RunFilter selects reconciliation runs.
type RunFilter struct {
	// Cycle is only this billing cycle's runs; empty is every cycle's.
	Cycle string
	// Limit is at most this many runs, newest first; zero means 100.
	Limit int
}

// Runs lists reconciliation runs, newest first (by when they started), each with its
// state, batch, counts per diffType and the paths of its statement and report.
func (s *Store) Runs(ctx context.Context, f RunFilter) ([]ReconciliationRun, error) {
	query, args := runsQuery(f)
	rows, err := s.db.QueryContext(ctx, s.rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list reconciliation runs: %w", err)
	}
	defer rows.Close()
	var runs []ReconciliationRun
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list reconciliation runs: %w", err)
		}
		runs = append(runs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list reconciliation runs: %w", err)
	}
	return runs, nil
}

// runsQuery is Runs' SQL for f and its arguments.
func runsQuery(f RunFilter) (string, []any) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	query, args := "SELECT "+runColumns+" FROM reconciliation_runs", []any{}
	if f.Cycle != "" {
		query, args = query+" WHERE cycle = ?", append(args, f.Cycle)
	}
	return query + " ORDER BY created_at DESC, id DESC LIMIT ?", append(args, f.Limit)
}

// lastCompletedRunSQL is LastCompletedRun's SQL; its argument is RunCompleted.
const lastCompletedRunSQL = "SELECT " + runColumns + " FROM reconciliation_runs WHERE state = ? ORDER BY updated_at DESC, cycle DESC, id DESC LIMIT 1"

// LastCompletedRun returns the reconciliation run that completed last (by the time it
// reached the completed state), and false when no run ever completed. It reads the store,
// so the answer survives worker restarts and is the same in every process.
func (s *Store) LastCompletedRun(ctx context.Context) (ReconciliationRun, bool, error) {
	r, err := scanRun(s.db.QueryRowContext(ctx, s.rebind(lastCompletedRunSQL), RunCompleted))
	if errors.Is(err, sql.ErrNoRows) {
		return ReconciliationRun{}, false, nil
	}
	if err != nil {
		return ReconciliationRun{}, false, fmt.Errorf("last completed reconciliation: %w", err)
	}
	return r, true, nil
}

// BatchFor returns the batch number KooDrive gave a statement with this content, if any.
func (s *Store) BatchFor(ctx context.Context, cycle, sha string) (string, error) {
	var batch string
	err := s.db.QueryRowContext(ctx, s.rebind("SELECT batch_no FROM reconciliation_batches WHERE cycle = ? AND statement_sha256 = ?"), cycle, sha).Scan(&batch)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("look up batch for cycle %s: %w", cycle, err)
	}
	return batch, nil
}

// RecordBatch remembers the batch number of an uploaded statement.
func (s *Store) RecordBatch(ctx context.Context, cycle, sha, batchNo string) error {
	_, err := s.exec(ctx, s.db, `INSERT INTO reconciliation_batches (cycle, statement_sha256, batch_no, uploaded_at) VALUES (?, ?, ?, ?)
 ON CONFLICT (cycle, statement_sha256) DO NOTHING`, cycle, sha, batchNo, s.stamp())
	if err != nil {
		return fmt.Errorf("record batch %s of cycle %s: %w", batchNo, cycle, err)
	}
	return nil
}

// RecordKey identifies a discrepancy within its batch by its raw content, so fetching a
// page again stores nothing twice.
func RecordKey(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:16])
}

// SaveDiscrepancies stores one page of discrepancies in a transaction; records already
// stored are skipped.
func (s *Store) SaveDiscrepancies(ctx context.Context, ds []Discrepancy) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, s.rebind(`INSERT INTO discrepancies (batch_no, record_key, cycle, seq, diff_type, carrier_order_id, kd_order_id,
 carrier_user_id, carrier_order_time, kd_user_id, user_status, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
 ON CONFLICT (batch_no, record_key) DO NOTHING`))
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, d := range ds {
			if _, err := stmt.ExecContext(ctx, d.BatchNo, RecordKey(d.Raw), d.Cycle, d.Seq, d.DiffType, d.CarrierOrderID, d.KdOrderID,
				d.CarrierUserID, d.CarrierOrderTime, d.KdUserID, d.UserStatus, d.Raw); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save %d discrepancies: %w", len(ds), err)
	}
	return nil
}

// discrepancyQuery reads a batch's discrepancies, each with its package from the
// registry (EachDiscrepancy). The registry is searched by carrier order with the partial
// index subscriptions_carrier_order, which its condition on a non-empty carrier order
// selects.
const discrepancyQuery = `SELECT d.batch_no, d.cycle, d.seq, d.diff_type, d.carrier_order_id, d.kd_order_id,
 d.carrier_user_id, d.carrier_order_time, d.kd_user_id, d.user_status, d.raw,
 COALESCE((SELECT s.package_id FROM subscriptions s WHERE s.carrier_order_id = d.carrier_order_id AND s.carrier_order_id <> ''
  ORDER BY CASE WHEN s.carrier_user_id = d.carrier_user_id THEN 0 ELSE 1 END, s.id DESC LIMIT 1), '')
 FROM discrepancies d WHERE d.batch_no = ? ORDER BY d.seq, d.record_key`

// EachDiscrepancy streams a batch's discrepancies in the order KooDrive listed them.
//
// Each comes with the package the registry has for its carrierOrderId (PackageID), which
// KooDrive's DiffBill does not carry (spec koodrive-carrier.md §4): the subscription with
// that carrier order, the one of the same carrier user first and then the newest, should
// several share it. A discrepancy whose order the registry does not know (typically a
// diffType 1, a subscription only KooDrive has) has none.
func (s *Store) EachDiscrepancy(ctx context.Context, batchNo string, fn func(Discrepancy) error) error {
	rows, err := s.db.QueryContext(ctx, s.rebind(discrepancyQuery), batchNo)
	if err != nil {
		return fmt.Errorf("read discrepancies of batch %s: %w", batchNo, err)
	}
	defer rows.Close()
	for rows.Next() {
		var d Discrepancy
		if err := rows.Scan(&d.BatchNo, &d.Cycle, &d.Seq, &d.DiffType, &d.CarrierOrderID, &d.KdOrderID, &d.CarrierUserID,
			&d.CarrierOrderTime, &d.KdUserID, &d.UserStatus, &d.Raw, &d.PackageID); err != nil {
			return fmt.Errorf("read discrepancies of batch %s: %w", batchNo, err)
		}
		if err := fn(d); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read discrepancies of batch %s: %w", batchNo, err)
	}
	return nil
}

// CountDiscrepancies counts a batch's stored discrepancies per diffType.
func (s *Store) CountDiscrepancies(ctx context.Context, batchNo string) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind("SELECT diff_type, COUNT(*) FROM discrepancies WHERE batch_no = ? GROUP BY diff_type"), batchNo)
	if err != nil {
		return nil, fmt.Errorf("count discrepancies of batch %s: %w", batchNo, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var t string
		var n int
		if err := rows.Scan(&t, &n); err != nil {
			return nil, err
		}
		out[t] = n
	}
	return out, rows.Err()
}

// EachSubscription streams every subscription in registry order.
func (s *Store) EachSubscription(ctx context.Context, fn func(Subscription) error) error {
	rows, err := s.db.QueryContext(ctx, "SELECT "+subscriptionColumns+" FROM subscriptions ORDER BY id")
	if err != nil {
		return fmt.Errorf("read subscriptions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		sub, err := scanSubscription(rows)
		if err != nil {
			return err
		}
		if err := fn(sub); err != nil {
			return err
		}
	}
	return rows.Err()
}
