package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/kooflow/kooflow/registry"
	"github.com/kooflow/kooflow/store"
)

// runImport measures the registry import alone (issue #26): a generated n-row CSV loaded
// by the database's own command-line loader (the floor) and by `kooflow registry import`
// in a child process, into an empty store, then the same file again (every row
// unchanged), then the file with one bad last row, which must be refused with nothing
// changed. With -cpuprofile, one more import of the file into a fresh store, and one of
// the same file again, run in this process under the CPU profiler.
func runImport(args []string) error {
	fs := newFlags("import")
	n := fs.Int("n", 1_000_000, "registry rows")
	storeDB := fs.String("store-db", "sqlite", "kooflow's store: sqlite, or a postgres:// server URL (fresh databases are created there and dropped after)")
	cpuProfile := fs.String("cpuprofile", "", "also import the file into a fresh store in this process, and again, writing CPU profiles of them here and here.again")
	_ = fs.Parse(args)
	dir, err := os.MkdirTemp("", "kooflow-bench-import-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s := &storm{dir: dir, n: *n}
	defer s.cleanup()
	if err := s.prepare(*storeDB); err != nil {
		return err
	}
	fmt.Printf("\nregistry import on kooflow's store on %s: %d rows\n", s.dialect, *n)
	fmt.Printf("CPU: %s; load average at the start: %s\n", cpuModel(), loadAverage())
	if err := s.importsChecked(); err != nil {
		return err
	}
	if *cpuProfile != "" {
		return s.profileImport(*cpuProfile)
	}
	return nil
}

// importsChecked runs the import's measurements and checks that the refused file changed
// nothing: the counts of subscriptions, history events and import records are the same
// before and after.
func (s *storm) importsChecked() error {
	var before [3]int64
	s.afterFirstImports = func() error {
		var err error
		before, err = s.registryCounts()
		return err
	}
	if err := s.imports(); err != nil {
		return err
	}
	after, err := s.registryCounts()
	if err != nil {
		return err
	}
	if after != before {
		return fmt.Errorf("the refused import changed the registry: %d subscriptions, %d events, %d import records before, %d, %d, %d after",
			before[0], before[1], before[2], after[0], after[1], after[2])
	}
	fmt.Printf("  refused import changed nothing: %d subscriptions, %d history events, %d import records before and after\n", after[0], after[1], after[2])
	return nil
}

// registryCounts counts the store's subscriptions, history events and import records.
func (s *storm) registryCounts() ([3]int64, error) {
	driver, source := "pgx", s.dsn
	if rest, ok := strings.CutPrefix(s.dsn, "sqlite:"); ok {
		driver, source = "sqlite", "file:"+rest
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		return [3]int64{}, fmt.Errorf("open the store to count its rows: %w", err)
	}
	defer db.Close()
	var c [3]int64
	if err := db.QueryRow("SELECT (SELECT COUNT(*) FROM subscriptions), (SELECT COUNT(*) FROM subscription_events), (SELECT COUNT(*) FROM registry_imports)").Scan(&c[0], &c[1], &c[2]); err != nil {
		return c, fmt.Errorf("count the registry: %w", err)
	}
	return c, nil
}

// profileImport imports the CSV into a fresh store in this process under the CPU
// profiler, then again (every row unchanged) into a second profile, path + ".again".
func (s *storm) profileImport(path string) error {
	dsn := s.dsn
	if s.dialect == "SQLite" {
		dsn = "sqlite:" + filepath.Join(s.dir, "profiled.db")
	} else {
		dsn = s.floorDSN
	}
	ctx := context.Background()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return fmt.Errorf("open the profiled store: %w", err)
	}
	defer st.Close()
	for _, run := range []struct{ what, path string }{{"import", path}, {"import of the same file again", path + ".again"}} {
		if err := profiled(run.path, func() error {
			start := time.Now()
			stats, err := registry.Import(ctx, st, s.csv, registry.Options{})
			if err != nil {
				return fmt.Errorf("profiled %s: %w", run.what, err)
			}
			fmt.Printf("  profiled %s in this process: %.1f s, %d inserted, %d unchanged; CPU profile in %s\n",
				run.what, time.Since(start).Seconds(), stats.Inserted, stats.Unchanged, run.path)
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// profiled runs fn under the CPU profiler, writing the profile to path.
func profiled(path string, fn func() error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	defer pprof.StopCPUProfile()
	return fn()
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
