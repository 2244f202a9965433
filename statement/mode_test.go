//go:build unix

package statement_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/kooflow/kooflow/statement"
)

// TestFilesAreNotExecutable: the statement and the discrepancy report are written 0644,
// whatever the umask lets through, and a stale executable file in their place (left by an
// older kooflow) is replaced rather than keeping its mode.
func TestFilesAreNotExecutable(t *testing.T) {
	old := syscall.Umask(0) // nothing masked: the mode kooflow asks for is the mode on disk
	t.Cleanup(func() { syscall.Umask(old) })
	dir := filepath.Join(t.TempDir(), "reconciliation", "2026-10")
	statementPath := filepath.Join(dir, "statement-2026-10.xlsx")
	reportPath := filepath.Join(dir, "discrepancies-2026-10.xlsx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{statementPath, reportPath} {
		if err := os.WriteFile(p, []byte("stale"), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	writeStatement(t, statementPath, 2)
	r, err := statement.CreateReport(reportPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Add(statement.Discrepancy{DiffType: "2", CarrierOrderID: "CO-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Close(); err != nil {
		t.Fatal(err)
	}

	for _, p := range []string{statementPath, reportPath} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != statement.FileMode || fi.Mode() != 0o644 {
			t.Errorf("%s has mode %v, want -rw-r--r--", filepath.Base(p), fi.Mode())
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("the directory holds %d files, want the statement and the report: %v", len(entries), entries)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("directory mode %v, %v", fi.Mode(), err)
	}
}
