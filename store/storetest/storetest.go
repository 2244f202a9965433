// Package storetest opens real, isolated kooflow stores for tests: a fresh SQLite file
// always, and a fresh PostgreSQL schema when KOOFLOW_TEST_POSTGRES_DSN is set.
package storetest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/internal/pgtest"
)

// PostgresEnv names the variable holding a PostgreSQL URL for tests.
const PostgresEnv = "KOOFLOW_TEST_POSTGRES_DSN"

// Backend is a database a test can run against.
type Backend struct {
	Name string
	// DSN returns a new, empty database for one test, removed when the test ends.
	DSN func(t testing.TB) string
}

// Backends lists SQLite and, when configured, PostgreSQL.
func Backends() []Backend {
	backends := []Backend{{Name: "sqlite", DSN: SQLiteDSN}}
	if os.Getenv(PostgresEnv) != "" {
		backends = append(backends, Backend{Name: "postgres", DSN: PostgresDSN})
	}
	return backends
}

// SQLiteDSN returns the DSN of a new SQLite file in the test's temporary directory.
func SQLiteDSN(t testing.TB) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "kooflow.db")
}

// PostgresDSN returns a DSN whose search_path is a new schema, dropped after the test.
func PostgresDSN(t testing.TB) string {
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skip(PostgresEnv + " is not set")
	}
	return pgtest.SchemaDSN(t, base, "kooflow_test")
}

// Open opens a store on dsn and closes it when the test ends.
func Open(t testing.TB, dsn string) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("open store %s: %v", strings.SplitN(dsn, "@", 2)[0], err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// OpenSQLite opens a store on a new SQLite file.
func OpenSQLite(t testing.TB) *store.Store { return Open(t, SQLiteDSN(t)) }
