package main

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kooflow/kooflow/devapp"
	"github.com/kooflow/kooflow/koodrive/sandbox"
	"github.com/kooflow/kooflow/koogallery"
	"github.com/kooflow/kooflow/payloadcodec"
	"github.com/kooflow/kooflow/store"
)

// tally reports how many subscriptions KooDrive was never told about and how many it was
// told about more than once.
func tally(sb *sandbox.Sandbox, prefix string, n int) (lost, duplicated int) {
	seen := map[string]int{}
	for _, note := range sb.Notifications() {
		seen[note.CarrierUserID]++
	}
	for i := 0; i < n; i++ {
		switch c := seen["user-"+instance(prefix, i)]; {
		case c == 0:
			lost++
		case c > 1:
			duplicated += c - 1
		}
	}
	return lost, duplicated
}

func report(scenario string, n int, fault string, lost, duplicated int) error {
	fmt.Printf("  %-34s load %5d  faults: %-52s lost %d  duplicated %d\n", scenario, n, fault, lost, duplicated)
	if lost > 0 {
		return fmt.Errorf("%s: %d expirations never reached KooDrive", scenario, lost)
	}
	return nil
}

// deliverAll sends every expiration until kooflow answers 000000, as KooGallery retries.
func deliverAll(webhook func() string, prefix string, from, to, c int) error {
	_, errs := run(to-from, c, func(i int) error {
		for attempt := 0; ; attempt++ {
			code, err := expire(webhook(), instance(prefix, from+i))
			if err == nil && code == koogallery.Success {
				return nil
			}
			if attempt > 600 {
				return fmt.Errorf("%s: %v %s", instance(prefix, from+i), err, code)
			}
			time.Sleep(500 * time.Millisecond)
		}
	})
	return firstError(errs)
}

// runKillWorker runs `kooflow temporal`, `kooflow webhook` and `kooflow worker` as separate
// processes, kills the worker with SIGKILL during a burst and starts another after 10 s.
func runKillWorker(args []string) error {
	fs := newFlags("kill-worker")
	n := fs.Int("n", 2000, "expirations")
	_ = fs.Parse(args)
	dir, err := os.MkdirTemp("", "kooflow-bench-kill-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "kooflow")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/kooflow").CombinedOutput(); err != nil {
		return fmt.Errorf("build kooflow: %v\n%s", err, out)
	}
	db := "sqlite:" + filepath.Join(dir, "kooflow.db")
	if dsn := os.Getenv("KOOFLOW_BENCH_DB"); dsn != "" {
		db = dsn
	}
	st, err := store.Open(context.Background(), db)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := seed(st, "kill", *n); err != nil {
		return err
	}
	sb := sandbox.New(sandbox.Options{AccessToken: "bench-token", UserID: "bench-user"})
	kd := httptest.NewServer(sb.Handler())
	defer kd.Close()

	temporalAddr, webhookAddr := freeAddr(), freeAddr()
	_, port, _ := net.SplitHostPort(temporalAddr)
	procs := []*exec.Cmd{}
	start := func(log string, env []string, args ...string) *exec.Cmd {
		f, _ := os.Create(filepath.Join(dir, log))
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Start(); err != nil {
			panic(err)
		}
		procs = append(procs, cmd)
		return cmd
	}
	defer func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
			_ = p.Wait()
		}
	}()
	start("temporal.log", nil, "temporal", "--data-dir", filepath.Join(dir, "temporal"), "--temporal-port", port, "--ui-port", "-1")
	payloadKeys, err := payloadcodec.NewKeyEntry("bench")
	if err != nil {
		return err
	}
	// The processes encrypt payloads, as in production.
	common := []string{"TEMPORAL_ADDRESS=" + temporalAddr, "KOOFLOW_DB=" + db, "KOOFLOW_DATA_DIR=" + dir, "KOOFLOW_LOG_LEVEL=warn",
		"KOOFLOW_PAYLOAD_KEYS=" + payloadKeys}
	start("webhook.log", append(common, "KOOGALLERY_KEY="+benchKey, "KOOFLOW_WEBHOOK_ADDR="+webhookAddr, "KOOFLOW_METRICS_ADDR=127.0.0.1:0"), "webhook")
	workerEnv := append(common, "KOODRIVE_BASE_URL="+kd.URL, "KOODRIVE_ACCESS_TOKEN=bench-token", "KOODRIVE_USER_ID=bench-user", "KOOFLOW_METRICS_ADDR=127.0.0.1:0")
	worker := start("worker-1.log", workerEnv, "worker")

	delivered := make(chan error, 1)
	go func() { delivered <- deliverAll(func() string { return "http://" + webhookAddr }, "kill", 0, *n, 32) }()
	if _, err := waitCount(*n/4, 10*time.Minute, reservedCount(st)); err != nil {
		return err
	}
	reservedAtKill, _ := reservedCount(st)()
	_ = worker.Process.Signal(syscall.SIGKILL)
	_ = worker.Wait()
	time.Sleep(10 * time.Second)
	began := time.Now()
	start("worker-2.log", workerEnv, "worker")
	if err := <-delivered; err != nil {
		return err
	}
	if _, err := waitCount(*n, 15*time.Minute, reservedCount(st)); err != nil {
		return err
	}
	lost, dup := tally(sb, "kill", *n)
	fmt.Printf("\nreliability (worker SIGKILL at %d of %d reserved; all reserved %.0f s after the new worker started)\n", reservedAtKill, *n, time.Since(began).Seconds())
	return report("worker SIGKILL, restart after 10 s", *n, "SIGKILL of the worker process mid-burst", lost, dup)
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// runOutage takes KooDrive down during a burst, with the one-hour rule shortened to one
// minute (one simulated minute = one second; same retry logic, backoff capped at a
// sixtieth of the window). 20 minutes down: all reserved. 70 minutes: all stall, and an
// operator's retry of every stalled expiration reserves them.
func runOutage(args []string) error {
	fs := newFlags("outage")
	n := fs.Int("n", 300, "expirations per scenario")
	_ = fs.Parse(args)
	fmt.Println("\nreliability (KooDrive outages; the one-hour rule scaled to 60 s)")
	for _, scenario := range []struct {
		down        time.Duration
		expectStall bool
	}{{20 * time.Second, false}, {70 * time.Second, true}} {
		if err := outage(*n, scenario.down, scenario.expectStall); err != nil {
			return err
		}
	}
	return nil
}

func outage(n int, down time.Duration, expectStall bool) error {
	dir, err := os.MkdirTemp("", "kooflow-bench-outage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	app, err := startApp(dir, func(o *devapp.Options) { o.NotifyWindow = time.Minute })
	if err != nil {
		return err
	}
	defer app.Stop()
	prefix := fmt.Sprintf("out%d", int(down.Seconds()))
	if err := seed(app.Store, prefix, n); err != nil {
		return err
	}
	// The outage lasts `down` after the last delivery was accepted, so every expiration's
	// window lies inside it however slowly the burst was started.
	var outageEnds atomic.Int64
	outageEnds.Store(time.Now().Add(24 * time.Hour).UnixNano())
	app.Sandbox.FailWhile(func() bool { return time.Now().UnixNano() < outageEnds.Load() }, 503)
	if err := deliverAll(func() string { return app.WebhookURL }, prefix, 0, n, 32); err != nil {
		return err
	}
	outageEnds.Store(time.Now().Add(down).UnixNano())
	ctx := context.Background()
	fault := fmt.Sprintf("KooDrive 503 for %d simulated minutes", int(down.Seconds()))
	if !expectStall {
		if _, err := waitCount(n, 5*time.Minute, reservedCount(app.Store)); err != nil {
			return err
		}
		stalled, _ := app.Store.Expirations(ctx, store.ExpirationFilter{State: store.StateStalled, Limit: 1})
		if len(stalled) > 0 {
			return fmt.Errorf("an expiration stalled during a %s outage", down)
		}
		lost, dup := tally(app.Sandbox, prefix, n)
		return report("20-minute outage", n, fault, lost, dup)
	}
	// Every expiration ends its first hour either stalled (its whole hour fell in the
	// outage) or reserved (it was started late enough for KooDrive to recover in time).
	var stalledN int
	settled := func() (int, error) {
		counts, err := app.Store.CountExpirationsByState(ctx)
		stalledN = counts[store.StateStalled]
		return counts[store.StateStalled] + counts[store.StateReserved], err
	}
	if _, err := waitCount(n, 5*time.Minute, settled); err != nil {
		return fmt.Errorf("waiting for every expiration to stall or be reserved: %w", err)
	}
	if stalledN == 0 {
		return fmt.Errorf("no expiration stalled during a %s outage of a %s window", down, time.Minute)
	}
	// The operator fixes the cause: wait for the outage to end, then retry every stall.
	time.Sleep(time.Until(time.Unix(0, outageEnds.Load())))
	var retried atomic.Int64
	for {
		stalled, err := app.Store.Expirations(ctx, store.ExpirationFilter{State: store.StateStalled, Limit: n})
		if err != nil {
			return err
		}
		if len(stalled) == 0 {
			break
		}
		for _, e := range stalled {
			if err := app.Starter.Retry(ctx, e.WorkflowID); err == nil {
				retried.Add(1)
			}
		}
		time.Sleep(time.Second)
	}
	if _, err := waitCount(n, 5*time.Minute, reservedCount(app.Store)); err != nil {
		return err
	}
	lost, dup := tally(app.Sandbox, prefix, n)
	return report("70-minute outage, then retry --all-stalled", n, fault+fmt.Sprintf(" (%d stalled, %d retried)", stalledN, retried.Load()), lost, dup)
}

// runRestart stops and starts the whole embedded stack on the same data directory in the
// middle of a burst; KooDrive (the sandbox) outlives the restart to count what it saw.
func runRestart(args []string) error {
	fs := newFlags("restart")
	n := fs.Int("n", 1000, "expirations")
	_ = fs.Parse(args)
	dir, err := os.MkdirTemp("", "kooflow-bench-restart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sb := sandbox.New(sandbox.Options{AccessToken: "bench-token", UserID: "bench-user"})
	kd := httptest.NewServer(sb.Handler())
	defer kd.Close()
	external := func(o *devapp.Options) { o.KooDriveURL = kd.URL }
	app, err := startApp(dir, external)
	if err != nil {
		return err
	}
	if err := seed(app.Store, "restart", *n); err != nil {
		app.Stop()
		return err
	}
	if err := deliverAll(func() string { return app.WebhookURL }, "restart", 0, *n/2, 32); err != nil {
		app.Stop()
		return err
	}
	if _, err := waitCount(*n/4, 5*time.Minute, reservedCount(app.Store)); err != nil {
		app.Stop()
		return err
	}
	atStop, _ := reservedCount(app.Store)()
	app.Stop()
	app, err = startApp(dir, external)
	if err != nil {
		return err
	}
	defer app.Stop()
	if err := deliverAll(func() string { return app.WebhookURL }, "restart", *n/2, *n, 32); err != nil {
		return err
	}
	if _, err := waitCount(*n, 10*time.Minute, reservedCount(app.Store)); err != nil {
		return err
	}
	lost, dup := tally(sb, "restart", *n)
	fmt.Printf("\nreliability (embedded Temporal stopped at %d of %d reserved, started again on the same data directory)\n", atStop, *n)
	return report("embedded Temporal restart mid-burst", *n, "stop and start of kooflow's dev stack", lost, dup)
}
