package store

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// oldStores opens, for each backend the tests have (SQLite, and PostgreSQL with
// KOOFLOW_TEST_POSTGRES_DSN), a new empty database without migrations, and returns
// its DSN for Open.
func oldStores(t *testing.T) map[string]func(t *testing.T) (*Store, string) {
	backends := map[string]func(t *testing.T) (*Store, string){
		"sqlite": func(t *testing.T) (*Store, string) {
			path := filepath.Join(t.TempDir(), "kooflow.db")
			s, err := openSQLite(path)
			if err != nil {
				t.Fatal(err)
			}
			return s, "sqlite:" + path
		},
	}
	base := os.Getenv("KOOFLOW_TEST_POSTGRES_DSN")
	if base == "" {
		return backends
	}
	backends["postgres"] = func(t *testing.T) (*Store, string) {
		dsn := postgresTestDSN(t, "kooflow_upgrade")
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		return &Store{db: db, durable: db, dialect: postgres}, dsn
	}
	return backends
}

// TestUpgradeKeepsTheRunsOfEarlierReleases opens a database as the release before
// migration 9 left it — one reconciliation row per cycle, files named by the cycle only —
// and checks that every row and the paths of its files survive, that a run in flight
// during the upgrade takes its row over, and that a re-run of a cycle an earlier release
// reconciled is a row of its own beside it.
func TestUpgradeKeepsTheRunsOfEarlierReleases(t *testing.T) {
	for name, open := range oldStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			old, dsn := open(t)
			old.now = time.Now
			if err := old.migrateTo(ctx, 8); err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{
				`INSERT INTO reconciliation_runs (cycle, workflow_id, state, statement_path, statement_rows, statement_sha256, batch_no, report_path,
 counts, error, created_at, updated_at) VALUES ('2026-09', 'reconcile/2026-09', 'completed', '/data/reconciliation/2026-09/statement-2026-09.xlsx',
 12, 'abc', 'B-09', '/data/reconciliation/2026-09/discrepancies-2026-09.xlsx', '{"2":4}', '', '2026-10-01T02:00:00.000Z', '2026-10-01T03:00:00.000Z')`,
				`INSERT INTO reconciliation_runs (cycle, workflow_id, state, statement_path, statement_rows, statement_sha256, batch_no, report_path,
 counts, error, created_at, updated_at) VALUES ('2026-10', 'reconcile/2026-10', 'polling', '/data/reconciliation/2026-10/statement-2026-10.xlsx',
 14, 'def', 'B-10', '', '', '', '2026-11-01T02:00:00.000Z', '2026-11-01T02:05:00.000Z')`,
			} {
				if _, err := old.db.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			old.Close()

			s, err := Open(ctx, dsn)
			if err != nil {
				t.Fatalf("the new release does not open the old database: %v", err)
			}
			defer s.Close()
			runs, err := s.Runs(ctx, RunFilter{})
			if err != nil || len(runs) != 2 {
				t.Fatalf("runs after the upgrade = %+v, %v", runs, err)
			}
			sep, oct := runs[1], runs[0]
			if sep.Cycle != "2026-09" || sep.RunID != "" || sep.StatementPath != "/data/reconciliation/2026-09/statement-2026-09.xlsx" ||
				sep.ReportPath != "/data/reconciliation/2026-09/discrepancies-2026-09.xlsx" || sep.BatchNo != "B-09" || sep.Counts["2"] != 4 ||
				sep.StatementRows != 12 || !sep.FinishedAt.Equal(sep.UpdatedAt) || sep.FinishedAt.IsZero() {
				t.Fatalf("the completed run of an earlier release = %+v", sep)
			}
			if oct.Cycle != "2026-10" || oct.State != RunPolling || !oct.FinishedAt.IsZero() {
				t.Fatalf("the run in flight = %+v", oct)
			}

			// The run in flight saves its next step: its row, not a second one.
			if err := s.SaveRun(ctx, ReconciliationRun{Cycle: "2026-10", WorkflowID: "reconcile/2026-10", RunID: "r-inflight", State: RunFetching,
				StatementPath: oct.StatementPath, StatementRows: 14, StatementSHA256: "def", BatchNo: "B-10"}); err != nil {
				t.Fatal(err)
			}
			octRuns, err := s.Runs(ctx, RunFilter{Cycle: "2026-10"})
			if err != nil || len(octRuns) != 1 || octRuns[0].RunID != "r-inflight" || octRuns[0].State != RunFetching || !octRuns[0].CreatedAt.Equal(oct.CreatedAt) {
				t.Fatalf("runs of 2026-10 = %+v, %v", octRuns, err)
			}

			// kooflow reconcile --cycle 2026-09 --force: a run of its own beside the old one.
			if err := s.SaveRun(ctx, ReconciliationRun{Cycle: "2026-09", WorkflowID: "reconcile/2026-09", RunID: "r-force", State: RunBuilding}); err != nil {
				t.Fatal(err)
			}
			sepRuns, err := s.Runs(ctx, RunFilter{Cycle: "2026-09"})
			if err != nil || len(sepRuns) != 2 || sepRuns[0].RunID != "r-force" || sepRuns[1].RunID != "" ||
				sepRuns[1].StatementPath != sep.StatementPath || sepRuns[1].ReportPath != sep.ReportPath || sepRuns[1].State != RunCompleted {
				t.Fatalf("runs of 2026-09 = %+v, %v", sepRuns, err)
			}
		})
	}
}
