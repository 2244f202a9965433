package store

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// FindQueryForTest is FindSubscriptions' query for identifier, with '?' placeholders
// rebound for the store's database, and its arguments.
func (s *Store) FindQueryForTest(identifier string, limit int) (string, []any) {
	query, args := s.findQuery(identifier, limit)
	return s.rebind(query), args
}

// SmartHubEventsQueryForTest is SmartHubEventsWhere's query for f, rebound, and its
// arguments.
func (s *Store) SmartHubEventsQueryForTest(f SmartHubEventFilter) (string, []any) {
	query, args := smartHubEventsQuery(f)
	return s.rebind(query), args
}

// PlanForTest returns the plan PostgreSQL's EXPLAIN of query answered with rows (or
// err), one line a row.
func PlanForTest(t testing.TB, query string, rows *sql.Rows, err error) string {
	return postgresPlanLines(t, query, rows, err)
}

// ConnForTest returns one connection of the store's pool, for session settings.
func (s *Store) ConnForTest(ctx context.Context) (*sql.Conn, error) { return s.db.Conn(ctx) }

// SetNowForTest makes the store stamp what it records (history events, runs) with now's
// times instead of the clock's.
func (s *Store) SetNowForTest(now func() time.Time) { s.now = now }

// RowsForTest counts the rows of table.
func (s *Store) RowsForTest(t testing.TB, table string) int64 {
	t.Helper()
	var n int64
	if err := s.db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// RegistryIndexesForTest lists the definitions of the registry table's indexes, sorted.
func (s *Store) RegistryIndexesForTest(t testing.TB) []string {
	t.Helper()
	query := "SELECT COALESCE(sql, name) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'subscriptions'"
	if s.dialect == postgres {
		query = "SELECT indexdef FROM pg_indexes WHERE tablename = 'subscriptions' AND schemaname = current_schema()"
	}
	rows, err := s.db.Query(query + " ORDER BY 1")
	if err != nil {
		t.Fatalf("list the registry's indexes: %v", err)
	}
	defer rows.Close()
	var defs []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			t.Fatal(err)
		}
		defs = append(defs, d)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return defs
}
