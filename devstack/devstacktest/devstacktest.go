// Package devstacktest gives tests a Temporal server on PostgreSQL of their own: fresh
// database names on the server of KOOFLOW_TEST_POSTGRES_DSN, dropped when the test ends.
package devstacktest

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// PostgresEnv names the variable holding a PostgreSQL URL for tests (the same one the
// store tests use); its user must be allowed to create databases.
const PostgresEnv = "KOOFLOW_TEST_POSTGRES_DSN"

var seq atomic.Int64

// PostgresURL returns a URL for devstack.Options.DB naming a database that does not
// exist yet; devstack creates it and its visibility database. Both are dropped when the
// test ends. The test is skipped when PostgresEnv is not set.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skip(PostgresEnv + " is not set: Temporal on PostgreSQL is tested where it is (CI sets it)")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresEnv, err)
	}
	name := fmt.Sprintf("kooflow_temporal_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1_000_000_000, seq.Add(1))
	t.Cleanup(func() {
		if err := Drop(base, name, name+"_visibility"); err != nil {
			t.Errorf("drop the test's Temporal databases: %v", err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// Drop removes databases from the PostgreSQL server of adminURL, closing the
// connections a stopped (or crashed) server may have left.
func Drop(adminURL string, databases ...string) error {
	db, err := sql.Open("pgx", adminURL)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, name := range databases {
		if _, err := db.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+strings.ReplaceAll(name, `"`, `""`)+`" WITH (FORCE)`); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
	}
	return nil
}
