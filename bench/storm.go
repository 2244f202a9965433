package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/devapp"
	"github.com/kooflow/kooflow/devstack/devstacktest"
	"github.com/kooflow/kooflow/koogallery"
	"github.com/kooflow/kooflow/registry"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/wiring"
)

// runStorm measures a month end: a registry of n subscriptions imported from CSV with
// `kooflow registry import` (then imported again unchanged, then with one bad last row),
// m of them expiring through the webhook at concurrency c, timed until every one is
// reserved, then the statement of that month for the whole registry. Beside each figure
// is its floor, measured in the same run on the same machine: the sqlite3 command line's
// .import or psql's \copy, and a plain batched database/sql insert, for the import; the
// minimal two-activity workflow on the same Temporal for the drain; encoding/csv fed by
// the same database cursor for the statement.
func runStorm(args []string) error {
	fs := newFlags("storm")
	n := fs.Int("n", 1_000_000, "registry rows")
	m := fs.Int("m", 20_000, "expirations (at most n)")
	c := fs.Int("c", 128, "concurrent deliveries")
	storeDB := fs.String("store-db", "sqlite", "kooflow's store: sqlite, or a postgres:// server URL (fresh databases are created there and dropped after)")
	skipDrain := fs.Bool("skip-drain", false, "only the import and the statement")
	skipFloor := fs.Bool("skip-floor", false, "drain without the minimal workflow's floor after it")
	skipStatement := fs.Bool("skip-statement", false, "no statement after the drain")
	maxActive := fs.String("max-active", "", "the relay's admission cap (KOOFLOW_MAX_ACTIVE_EXPIRIES): a number, or off; default kooflow's")
	floorInsert := fs.String("floor-insert", "", "internal: load the CSV file argument into this database with batched INSERTs, and exit")
	statementOf := fs.String("statement-of", "", "internal: build the statement of -cycle from this store into the directory argument, and exit")
	cycle := fs.String("cycle", "", "internal: with -statement-of")
	cpuProfile := fs.String("statement-cpuprofile", "", "write a CPU profile of the statement (kooflow's and the floor's) to this file")
	_ = fs.Parse(args)
	if *floorInsert != "" {
		return batchedInsertFloor(*floorInsert, fs.Arg(0))
	}
	if *statementOf != "" {
		if *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		return (&storm{dsn: *statementOf, cycle: *cycle, dir: fs.Arg(0), n: *n}).statement()
	}
	if *m > *n {
		return fmt.Errorf("-m %d is more than -n %d", *m, *n)
	}
	dir, err := os.MkdirTemp("", "kooflow-bench-storm-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s := &storm{dir: dir, n: *n, m: *m, c: *c, skipFloor: *skipFloor}
	if s.maxActive, err = wiring.ParseMaxActive(*maxActive); err != nil {
		return fmt.Errorf("-max-active: %w", err)
	}
	defer s.cleanup()
	if err := s.prepare(*storeDB); err != nil {
		return err
	}
	fmt.Printf("\nstorm on kooflow's store on %s: registry of %d, %d expirations at concurrency %d, cycle %s\n", s.dialect, *n, *m, *c, s.cycle)
	fmt.Printf("CPU: %s; this bench and everything it starts share the machine\n", cpuModel())
	if err := s.imports(); err != nil {
		return err
	}
	if !*skipDrain {
		if err := s.drain(); err != nil {
			return err
		}
	}
	if *skipStatement {
		return nil
	}
	// In a process of its own, so that its heap is the statement's alone.
	fmt.Printf("\nstatement of %s for the registry of %d (from the database to the finished file, in a fresh process; peak live heap sampled every 5 ms)\n", s.cycle, s.n)
	child := measure(nil, os.Args[0], "storm", "-statement-of", s.dsn, "-cycle", s.cycle, "-n", fmt.Sprint(s.n), "-statement-cpuprofile", *cpuProfile, s.dir)
	fmt.Print(strings.TrimPrefix(child.out, firstLine(child.out)+"\n"))
	if child.err != nil {
		return child.err
	}
	fmt.Printf("  the process: %.1f s, peak RSS %.0f MB\n", child.seconds, child.peakMB)
	return nil
}

// storm is one run's data directory, databases and generated registry.
type storm struct {
	dir     string
	n, m, c int
	bin     string
	csv     string
	// cycle is last month; every subscription is active in it and expires at its end.
	cycle    string
	expireAt time.Time
	// dsn is kooflow's store; floorDSN a database for the floors' tables.
	dsn, floorDSN string
	dialect       string
	// maxActive is the relay's admission cap (0: kooflow's default, negative: none);
	// skipFloor leaves out the minimal workflow after the drain.
	maxActive int
	skipFloor bool
	cleanups  []func()
	// afterFirstImports, when set, runs after the import and the re-import, before the
	// refused file.
	afterFirstImports func() error
}

func (s *storm) cleanup() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
}

// stormInstance names the i-th subscription of the storm's registry.
func stormInstance(i int) string { return fmt.Sprintf("storm-%07d", i) }

func (s *storm) prepare(storeDB string) error {
	now := time.Now().UTC()
	start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0)
	s.cycle = start.Format("2006-01")
	s.expireAt = start.AddDate(0, 1, 0).Add(-8 * time.Hour)
	switch {
	case storeDB == "sqlite":
		s.dsn, s.floorDSN, s.dialect = "sqlite:"+filepath.Join(s.dir, "kooflow.db"), filepath.Join(s.dir, "floor.db"), "SQLite"
	case strings.HasPrefix(storeDB, "postgres"):
		u, err := url.Parse(storeDB)
		if err != nil {
			return fmt.Errorf("-store-db: %w", err)
		}
		prefix := fmt.Sprintf("kooflow_storm_%d", time.Now().UnixNano()%1_000_000_000)
		for _, name := range []string{prefix, prefix + "_floor"} {
			if err := createDatabase(storeDB, name); err != nil {
				return err
			}
		}
		s.cleanups = append(s.cleanups, func() {
			if err := devstacktest.Drop(storeDB, prefix, prefix+"_floor"); err != nil {
				fmt.Fprintln(os.Stderr, "drop the storm's databases:", err)
			}
		})
		u.Path = "/" + prefix
		s.dsn = u.String()
		u.Path = "/" + prefix + "_floor"
		s.floorDSN, s.dialect = u.String(), "PostgreSQL"
	default:
		return fmt.Errorf("-store-db %q: want sqlite or a postgres:// URL", storeDB)
	}
	s.bin = filepath.Join(s.dir, "kooflow")
	if out, err := exec.Command("go", "build", "-o", s.bin, "./cmd/kooflow").CombinedOutput(); err != nil {
		return fmt.Errorf("build kooflow: %v\n%s", err, out)
	}
	s.csv = filepath.Join(s.dir, "registry.csv")
	return s.writeRegistry(s.csv, "")
}

// writeRegistry writes the storm's registry as CSV, and then the line extra if any.
func (s *storm) writeRegistry(path, extra string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, strings.Join(registry.Columns, ","))
	ordered := s.expireAt.AddDate(0, -3, 0).Format(time.RFC3339)
	expire := s.expireAt.Format("20060102150405")
	for i := range s.n {
		id := stormInstance(i)
		fmt.Fprintf(w, "%s,CS-%s,user-%s,pkg-50GB,CO-%s,%s,%s,,\n", id, id, id, id, ordered, expire)
	}
	if extra != "" {
		fmt.Fprintln(w, extra)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// measured is a child process's wall time and peak resident memory.
type measured struct {
	seconds float64
	peakMB  float64
	out     string
	err     error
}

func (m measured) String() string {
	if m.err != nil {
		return "unavailable (" + m.err.Error() + ")"
	}
	return fmt.Sprintf("%7.1f s  %6.0f MB", m.seconds, m.peakMB)
}

// measure runs a command and reports its wall time and peak RSS. The peak is the child's
// VmHWM, read every 10 ms while it runs: getrusage's ru_maxrss of a child started from Go
// counts this process's own memory, which the child shared until its exec.
func measure(stdin io.Reader, name string, args ...string) measured {
	cmd := exec.Command(name, args...)
	cmd.Stdin = stdin
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return measured{err: err}
	}
	var peak float64
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			m := measured{seconds: time.Since(start).Seconds(), peakMB: peak, out: out.String()}
			if err != nil {
				m.err = fmt.Errorf("%s: %v: %s", filepath.Base(name), err, strings.TrimSpace(out.String()))
			}
			return m
		case <-tick.C:
			peak = max(peak, procPeakRSSMB(cmd.Process.Pid))
		}
	}
}

// floorColumns is the floors' table: the file's columns, a unique index on instanceId.
const floorColumns = `instance_id TEXT, order_id TEXT, carrier_user_id TEXT, package_id TEXT, carrier_order_id TEXT,
 carrier_order_time TEXT, expire_time TEXT, g_iccid TEXT, package_code TEXT`

func (s *storm) imports() error {
	fmt.Printf("\nimport of %d rows (%.0f MB CSV): wall time, peak RSS of the importing process\n", s.n, fileMB(s.csv))
	var cli measured
	if s.dialect == "SQLite" {
		cli = s.sqlite3Floor()
	} else {
		cli = s.psqlFloor()
	}
	goFloor := measure(nil, os.Args[0], "storm", "-floor-insert", s.floorArg(), s.csv)
	first := measure(nil, s.bin, "registry", "import", s.csv, "--db", s.dsn, "--create")
	if first.err != nil {
		return first.err
	}
	again := measure(nil, s.bin, "registry", "import", s.csv, "--db", s.dsn)
	if again.err != nil {
		return again.err
	}
	if s.afterFirstImports != nil {
		if err := s.afterFirstImports(); err != nil {
			return err
		}
	}
	bad := filepath.Join(s.dir, "bad-last-row.csv")
	if err := s.writeRegistry(bad, "storm-bad,,user-bad,,,,,,"); err != nil {
		return err
	}
	refused := measure(nil, s.bin, "registry", "import", bad, "--db", s.dsn)
	if refused.err == nil || !strings.Contains(refused.out, "packageId is required") {
		return fmt.Errorf("a file with a bad last row was not refused: %s", refused.out)
	}
	refused.err = nil
	cliName := "sqlite3 .import (table + unique index)"
	if s.dialect != "SQLite" {
		cliName = `psql \copy (table + unique index; psql's RSS)`
	}
	fmt.Printf("  %-52s %s\n", "floor: "+cliName, cli)
	fmt.Printf("  %-52s %s\n", "floor: batched database/sql INSERT, 32 rows a statement", goFloor)
	fmt.Printf("  %-52s %s   %s\n", "kooflow registry import, empty registry", first, lastLine(first.out))
	fmt.Printf("  %-52s %s   %s\n", "kooflow registry import, same file again", again, lastLine(again.out))
	fmt.Printf("  %-52s %s   (refused: %s)\n", "kooflow registry import, one bad row at the end", refused, firstLine(refused.out))
	if cli.err == nil {
		fmt.Printf("  import / %s floor: %.1f×; again / import %.2f\n", strings.Fields(cliName)[0], first.seconds/cli.seconds, again.seconds/first.seconds)
	}
	if goFloor.err == nil {
		fmt.Printf("  import / batched-insert floor: %.1f×\n", first.seconds/goFloor.seconds)
	}
	return nil
}

func (s *storm) floorArg() string {
	if s.dialect == "SQLite" {
		return "sqlite:" + filepath.Join(s.dir, "floor-go.db")
	}
	return s.floorDSN
}

func (s *storm) sqlite3Floor() measured {
	cli, err := exec.LookPath("sqlite3")
	if err != nil {
		return measured{err: errors.New("the sqlite3 command line is not installed (apt-get install sqlite3)")}
	}
	script := fmt.Sprintf("CREATE TABLE registry (%s);\nCREATE UNIQUE INDEX registry_instance ON registry (instance_id);\n.mode csv\n.import --skip 1 %s registry\n",
		floorColumns, s.csv)
	return measure(strings.NewReader(script), cli, s.floorDSN)
}

func (s *storm) psqlFloor() measured {
	psql, err := exec.LookPath("psql")
	if err != nil {
		return measured{err: errors.New("psql is not installed")}
	}
	if m := measure(nil, psql, "-q", "-v", "ON_ERROR_STOP=1", s.floorDSN, "-c",
		"CREATE TABLE registry_copy ("+floorColumns+"); CREATE UNIQUE INDEX ON registry_copy (instance_id)"); m.err != nil {
		return m
	}
	return measure(nil, psql, "-q", "-v", "ON_ERROR_STOP=1", s.floorDSN, "-c",
		fmt.Sprintf(`\copy registry_copy FROM '%s' WITH (FORMAT csv, HEADER true)`, s.csv))
}

// batchedInsertFloor loads path into a fresh table of dsn with plain multi-row INSERTs
// in one transaction: what a simple database/sql loader costs on this driver.
func batchedInsertFloor(dsn, path string) error {
	driver, source := "pgx", dsn
	if rest, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		driver, source = "sqlite", "file:"+rest+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range []string{"CREATE TABLE registry_insert (" + floorColumns + ")", "CREATE UNIQUE INDEX registry_insert_instance ON registry_insert (instance_id)"} {
		if _, err := db.Exec(q); err != nil {
			return err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReaderSize(f, 1<<20))
	r.ReuseRecord = true
	if _, err := r.Read(); err != nil {
		return err
	}
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	const batch = 32
	insert := func(rows int) string {
		var b strings.Builder
		b.WriteString("INSERT INTO registry_insert VALUES ")
		for i := range rows * 9 {
			switch {
			case i%9 == 0 && i > 0:
				b.WriteString("), (")
			case i%9 == 0:
				b.WriteString("(")
			default:
				b.WriteString(", ")
			}
			if driver == "pgx" {
				fmt.Fprintf(&b, "$%d", i+1)
			} else {
				b.WriteString("?")
			}
		}
		b.WriteString(")")
		return b.String()
	}
	stmt, err := tx.Prepare(insert(batch))
	if err != nil {
		return err
	}
	args := make([]any, 0, 9*batch)
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		for _, v := range rec {
			args = append(args, v)
		}
		if len(args) == cap(args) {
			if _, err := stmt.Exec(args...); err != nil {
				return err
			}
			args = args[:0]
		}
	}
	if len(args) > 0 {
		if _, err := tx.Exec(insert(len(args)/9), args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// drain runs the expirations through an in-process kooflow (embedded Temporal on
// SQLite) on the imported store, then the minimal workflow on the same server.
func (s *storm) drain() error {
	app, err := startApp(filepath.Join(s.dir, "app"), func(o *devapp.Options) { o.DB = s.dsn; o.MaxActive = s.maxActive })
	if err != nil {
		return err
	}
	defer app.Stop()
	admission := "no admission cap"
	if n := app.Relay.Cap(); n > 0 {
		admission = "admission cap " + strconv.Itoa(n)
	}
	fmt.Printf("\nstorm: %d expirations through the webhook at concurrency %d (kooflow dev in this process, Temporal on %s, %s)\n",
		s.m, s.c, app.Stack.Persistence(), admission)
	var notSuccess atomic.Int64
	cpu0, start := cpuSeconds(), time.Now()
	progress := watchDrain(app.Store, start)
	// Any answer but 000000 is counted and delivered again half a second later, as
	// KooGallery does, so the drain still covers every expiration.
	lat, errs := run(s.m, s.c, func(i int) error {
		for {
			code, err := expire(app.WebhookURL, stormInstance(i))
			if err != nil {
				return err
			}
			if code == koogallery.Success {
				return nil
			}
			if notSuccess.Add(1) > int64(10*s.m) {
				return fmt.Errorf("%s: result %s, again and again", stormInstance(i), code)
			}
			time.Sleep(500 * time.Millisecond)
		}
	})
	if err := firstError(errs); err != nil {
		return err
	}
	intake := time.Since(start)
	if _, err := waitCount(s.m, 2*time.Hour, reservedCount(app.Store)); err != nil {
		return err
	}
	drained, cpu := time.Since(start), cpuSeconds()-cpu0
	watched := progress()
	if got := len(app.Sandbox.Notifications()); got != s.m {
		return fmt.Errorf("KooDrive received %d notifications for %d expirations", got, s.m)
	}
	fmt.Printf("  intake            %6.1f s, %5.0f deliveries/s, p50 %s, p99 %s, answers other than 000000: %d\n",
		intake.Seconds(), float64(s.m)/intake.Seconds(), ms(percentile(lat, 50)), ms(percentile(lat, 99)), notSuccess.Load())
	fmt.Printf("  all reserved      %6.1f s, %5.1f workflows/s, process CPU %.0f s, peak RSS %.0f MB\n",
		drained.Seconds(), float64(s.m)/drained.Seconds(), cpu, peakRSSMB())
	fmt.Printf("  first 1,000 reserved %s after the first delivery; at most %d expirations active in Temporal at once (sampled every second)\n",
		watched.firstThousand, watched.peakActive)
	if s.skipFloor {
		return nil
	}

	w := sdkworker.New(app.Client, "bench-minimal", sdkworker.Options{})
	w.RegisterWorkflowWithOptions(minimalWorkflow, workflow.RegisterOptions{Name: "BenchMinimal"})
	w.RegisterActivityWithOptions(func(context.Context) error { return nil }, activity.RegisterOptions{Name: "BenchNoop"})
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()
	cpu0, start = cpuSeconds(), time.Now()
	_, errs = run(s.m, s.c, func(i int) error {
		r, err := app.Client.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
			ID: fmt.Sprintf("storm-minimal-%d", i), TaskQueue: "bench-minimal"}, "BenchMinimal")
		if err != nil {
			return err
		}
		return r.Get(context.Background(), nil)
	})
	if err := firstError(errs); err != nil {
		return err
	}
	minimal := time.Since(start)
	fmt.Printf("  floor: minimal    %6.1f s, %5.1f workflows/s, process CPU %.0f s (two no-op activities, same server)\n",
		minimal.Seconds(), float64(s.m)/minimal.Seconds(), cpuSeconds()-cpu0)
	fmt.Printf("  drain / minimal throughput: %.2f\n", minimal.Seconds()/drained.Seconds())
	return nil
}

// drainProgress is what watchDrain saw.
type drainProgress struct {
	// firstThousand is when the 1,000th expiration was reserved, from the first delivery
	// ("not reached" until then).
	firstThousand string
	peakActive    int
}

// watchDrain samples the store every second from start: the expirations Temporal works
// on (store.ActiveExpirations) and the reserved count. The returned func stops it and
// reports.
func watchDrain(st *store.Store, start time.Time) func() drainProgress {
	var mu sync.Mutex
	p := drainProgress{firstThousand: "not reached"}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		thousand := false
		for {
			active, err := st.ActiveExpirations(context.Background())
			reserved, err2 := reservedCount(st)()
			mu.Lock()
			if err == nil {
				p.peakActive = max(p.peakActive, active)
			}
			if err2 == nil && !thousand && reserved >= 1000 {
				thousand, p.firstThousand = true, fmt.Sprintf("%.1f s", time.Since(start).Seconds())
			}
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() drainProgress {
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return p
	}
}

// statement builds the cycle's statement for the whole registry with the real activity,
// and writes the same rows from the same cursor with encoding/csv as the floor.
func (s *storm) statement() error {
	st, err := store.Open(context.Background(), s.dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	var info contract.StatementInfo
	var buildErr error
	xlsxTime, xlsxHeap := timedHeap(func() {
		var suite testsuite.WorkflowTestSuite
		// The test environment's own logger would print every heartbeat into the report.
		suite.SetLogger(sdklog.NewStructuredLogger(quiet()))
		env := suite.NewTestActivityEnvironment()
		a := &activities.Reconciliation{Store: st, Dir: filepath.Join(s.dir, "reconciliation"), Logger: quiet()}
		env.RegisterActivity(a)
		v, err := env.ExecuteActivity(a.BuildStatement, s.cycle)
		if err == nil {
			err = v.Get(&info)
		}
		buildErr = err
	})
	if buildErr != nil {
		return buildErr
	}
	start, end, err := contract.CycleBounds(s.cycle)
	if err != nil {
		return err
	}
	var csvRows int
	csvTime, csvHeap := timedHeap(func() {
		csvRows, buildErr = csvStatement(st, start, end, filepath.Join(s.dir, "statement.csv"))
	})
	if buildErr != nil {
		return buildErr
	}
	if csvRows != info.Rows {
		return fmt.Errorf("the CSV floor wrote %d rows, the statement %d", csvRows, info.Rows)
	}
	fmt.Printf("  kooflow statement (xlsx)  %7.1f s  %8.0f rows/s  peak heap %4.0f MB  %.0f MB file\n",
		xlsxTime.Seconds(), float64(info.Rows)/xlsxTime.Seconds(), xlsxHeap, fileMB(info.Path))
	fmt.Printf("  floor: encoding/csv       %7.1f s  %8.0f rows/s  peak heap %4.0f MB\n",
		csvTime.Seconds(), float64(csvRows)/csvTime.Seconds(), csvHeap)
	fmt.Printf("  statement / csv floor: %.1f×\n", xlsxTime.Seconds()/csvTime.Seconds())
	return nil
}

// csvStatement writes every statement candidate of the cycle with encoding/csv.
func csvStatement(st *store.Store, start, end time.Time, path string) (int, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<16)
	w := csv.NewWriter(bw)
	rows := 0
	err = st.EachStatementCandidate(context.Background(), start, end, func(c store.StatementCandidate) error {
		rows++
		return w.Write([]string{c.CarrierOrderID, c.CarrierUserID, c.CarrierOrderTime, c.PackageID, c.Status, c.ExpireTime.UTC().Format(time.RFC3339)})
	})
	w.Flush()
	if err == nil {
		err = errors.Join(w.Error(), bw.Flush())
	}
	return rows, err
}

// timedHeap runs fn and returns its duration and the highest live heap (MB) sampled
// every 5 ms while it ran.
func timedHeap(fn func()) (time.Duration, float64) {
	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	start := time.Now()
	fn()
	took := time.Since(start)
	close(stop)
	wg.Wait()
	return took, float64(peak.Load()) / (1 << 20)
}

func fileMB(path string) float64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return float64(fi.Size()) / (1 << 20)
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if name, ok := strings.CutPrefix(line, "model name"); ok {
			return fmt.Sprintf("%d × %s", runtime.NumCPU(), strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":")))
		}
	}
	return fmt.Sprintf("%d cores", runtime.NumCPU())
}

func firstLine(s string) string { l, _, _ := strings.Cut(strings.TrimSpace(s), "\n"); return l }

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
