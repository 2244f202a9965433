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

// SaveRun creates or replaces the run of r.Cycle.
func (s *Store) SaveRun(ctx context.Context, r ReconciliationRun) error {
	counts := ""
	if r.Counts != nil {
		b, _ := json.Marshal(r.Counts)
		counts = string(b)
	}
	now := s.stamp()
	_, err := s.exec(ctx, s.db, `INSERT INTO reconciliation_runs (cycle, workflow_id, state, statement_path, statement_rows, statement_sha256,
 batch_no, report_path, counts, error, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
 ON CONFLICT (cycle) DO UPDATE SET workflow_id = excluded.workflow_id, state = excluded.state, statement_path = excluded.statement_path,
 statement_rows = excluded.statement_rows, statement_sha256 = excluded.statement_sha256, batch_no = excluded.batch_no,
 report_path = excluded.report_path, counts = excluded.counts, error = excluded.error, updated_at = excluded.updated_at`,
		r.Cycle, r.WorkflowID, r.State, r.StatementPath, r.StatementRows, r.StatementSHA256, r.BatchNo, r.ReportPath, counts, r.Error, now, now)
	if err != nil {
		return fmt.Errorf("save reconciliation run %s: %w", r.Cycle, err)
	}
	return nil
}

// Run returns the reconciliation run of cycle.
func (s *Store) Run(ctx context.Context, cycle string) (ReconciliationRun, error) {
	var (
		r                        ReconciliationRun
		counts, created, updated string
	)
	err := s.db.QueryRowContext(ctx, s.rebind(`SELECT cycle, workflow_id, state, statement_path, statement_rows, statement_sha256, batch_no,
 report_path, counts, error, created_at, updated_at FROM reconciliation_runs WHERE cycle = ?`), cycle).Scan(
		&r.Cycle, &r.WorkflowID, &r.State, &r.StatementPath, &r.StatementRows, &r.StatementSHA256, &r.BatchNo, &r.ReportPath, &counts, &r.Error, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("reconciliation run %s: %w", cycle, ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("reconciliation run %s: %w", cycle, err)
	}
	if counts != "" {
		_ = json.Unmarshal([]byte(counts), &r.Counts)
	}
	r.CreatedAt, r.UpdatedAt = parseTime(created), parseTime(updated)
	return r, nil
}

// LastCompletedRun returns the reconciliation run that completed last (by the time it
// reached the completed state), and false when no run ever completed. It reads the store,
// so the answer survives worker restarts and is the same in every process.
func (s *Store) LastCompletedRun(ctx context.Context) (ReconciliationRun, bool, error) {
	var cycle string
	err := s.db.QueryRowContext(ctx, s.rebind("SELECT cycle FROM reconciliation_runs WHERE state = ? ORDER BY updated_at DESC, cycle DESC LIMIT 1"),
		RunCompleted).Scan(&cycle)
	if errors.Is(err, sql.ErrNoRows) {
		return ReconciliationRun{}, false, nil
	}
	if err != nil {
		return ReconciliationRun{}, false, fmt.Errorf("last completed reconciliation: %w", err)
	}
	r, err := s.Run(ctx, cycle)
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

// EachDiscrepancy streams a batch's discrepancies in the order KooDrive listed them.
func (s *Store) EachDiscrepancy(ctx context.Context, batchNo string, fn func(Discrepancy) error) error {
	rows, err := s.db.QueryContext(ctx, s.rebind(`SELECT batch_no, cycle, seq, diff_type, carrier_order_id, kd_order_id, carrier_user_id,
 carrier_order_time, kd_user_id, user_status, raw FROM discrepancies WHERE batch_no = ? ORDER BY seq, record_key`), batchNo)
	if err != nil {
		return fmt.Errorf("read discrepancies of batch %s: %w", batchNo, err)
	}
	defer rows.Close()
	for rows.Next() {
		var d Discrepancy
		if err := rows.Scan(&d.BatchNo, &d.Cycle, &d.Seq, &d.DiffType, &d.CarrierOrderID, &d.KdOrderID, &d.CarrierUserID,
			&d.CarrierOrderTime, &d.KdUserID, &d.UserStatus, &d.Raw); err != nil {
			return err
		}
		if err := fn(d); err != nil {
			return err
		}
	}
	return rows.Err()
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
