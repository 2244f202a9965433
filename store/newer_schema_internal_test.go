package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestANewerReleasesDatabaseIsRefused: a database a newer release migrated (a migration
// this release does not have) is refused at Open with what to do, and nothing of it is
// changed — the rollback that migrations cannot undo.
func TestANewerReleasesDatabaseIsRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kooflow.db")
	s, err := Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES (9999, '2027-01-01T00:00:00.000Z')"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	_, err = Open(ctx, "sqlite:"+path)
	if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "migration 9999") || !strings.Contains(err.Error(), "restore the backup") {
		t.Fatalf("opening a newer release's database: %v; want ErrNewerSchema naming 9999 and what to do", err)
	}
}
