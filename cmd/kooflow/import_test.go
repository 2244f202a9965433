package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kooflow/kooflow/registry"
)

func TestProgressLineRedrawsOneLineAndClearsIt(t *testing.T) {
	var out strings.Builder
	p := newProgressLine(&out)
	p.show(registry.Progress{Phase: registry.PhaseValidating, Rows: 4096, Fraction: -1})
	p.show(registry.Progress{Phase: "applying", Rows: 10, Total: 40, Fraction: 0.25})
	p.show(registry.Progress{Phase: "applying", Rows: 20, Total: 40, Fraction: 0.5}) // within 200 ms: not drawn
	p.show(registry.Progress{})
	want := "\r\033[Kvalidating       4096 rows" + "\r\033[Kapplying           10/40 rows" + "\r\033[K"
	if out.String() != want {
		t.Fatalf("output %q, want %q", out.String(), want)
	}
	p.done()
	if out.String() != want {
		t.Fatal("done after the line was cleared wrote again")
	}
}

func TestRegistryImportShowsNoProgressWhenNotOnATerminal(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "reg.csv")
	if err := os.WriteFile(file, []byte("instanceId,carrierUserId,packageId\ninst-1,user-1,pkg-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "registry", "import", file, "--data-dir", dir, "--create")
	if err != nil || !strings.Contains(out, "1 inserted, 0 updated, 0 unchanged") || strings.Contains(out, "\r") {
		t.Fatalf("import: %q, %v", out, err)
	}
	out, err = run(t, "registry", "import", file, "--data-dir", dir, "--create")
	if err != nil || !strings.Contains(out, "0 inserted, 0 updated, 1 unchanged") {
		t.Fatalf("import again: %q, %v", out, err)
	}
}
