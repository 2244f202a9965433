package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/devapp"
	"github.com/kooflow/kooflow/devstack/devstacktest"
	"github.com/kooflow/kooflow/koodrive/sandbox"
	"github.com/kooflow/kooflow/koogallery"
	"github.com/kooflow/kooflow/payloadcodec"
	"github.com/kooflow/kooflow/store"
)

// runBurst delivers n expirations as fast as intake allows and times them to reserved,
// then runs n minimal workflows (two no-op activities) on the same server for comparison.
// By default everything runs in this process (kooflow dev: Temporal on SQLite, one
// shard); --temporal-db runs the production processes instead — `kooflow temporal` on
// SQLite or PostgreSQL, `kooflow webhook`, `kooflow worker` — on this machine.
//
// --payload-encryption lists the modes to run, each on a fresh kooflow in turn: "on,off"
// measures what the payload codec costs per expiration in one run, under the same load.
func runBurst(args []string) error {
	fs := newFlags("burst")
	n := fs.Int("n", 10000, "expirations")
	c := fs.Int("c", 64, "concurrent deliveries")
	pollers := fs.Int("pollers", 0, "workflow and activity task pollers (0: SDK default; in-process only)")
	temporalDB := fs.String("temporal-db", "", "run kooflow temporal, webhook and worker as processes with Temporal on `sqlite` or on a postgres:// server "+
		"(fresh databases kooflow_bench_* are created there and dropped after); empty runs everything in this process")
	shards := fs.Int("history-shards", 4, "history shards of Temporal on PostgreSQL")
	storeDB := fs.String("store-db", "", "with --temporal-db: kooflow's store on a fresh database on this postgres:// server (dropped after); empty: a SQLite file")
	encryption := fs.String("payload-encryption", "on", "comma-separated `modes` (on, off), each run in turn on a fresh kooflow: on,off compares the payload codec's cost in one run")
	_ = fs.Parse(args)
	if *pollers > 0 && *temporalDB != "" {
		return errors.New("-pollers tunes the in-process worker only")
	}
	modes, err := parseEncryptionModes(*encryption)
	if err != nil {
		return err
	}
	var results []burstResult
	for _, encrypt := range modes {
		r, err := burstOnce(*n, *c, *pollers, *temporalDB, *shards, *storeDB, encrypt)
		if err != nil {
			return fmt.Errorf("burst with payload encryption %s: %w", onOff(encrypt), err)
		}
		results = append(results, r)
	}
	if len(results) > 1 {
		printEncryptionComparison(results)
	}
	return nil
}

// parseEncryptionModes reads --payload-encryption: a list of on and off, true for on.
func parseEncryptionModes(list string) ([]bool, error) {
	var modes []bool
	for _, m := range strings.Split(list, ",") {
		switch strings.TrimSpace(m) {
		case "on":
			modes = append(modes, true)
		case "off":
			modes = append(modes, false)
		default:
			return nil, fmt.Errorf("--payload-encryption %q: want a comma-separated list of on and off", list)
		}
	}
	return modes, nil
}

func onOff(encrypt bool) string {
	if encrypt {
		return "on"
	}
	return "off"
}

// burstOnce runs one burst and its floor on a fresh kooflow, with payload encryption on
// or off.
func burstOnce(n, c, pollers int, temporalDB string, shards int, storeDB string, encrypt bool) (burstResult, error) {
	dir, err := os.MkdirTemp("", "kooflow-bench-burst-")
	if err != nil {
		return burstResult{}, err
	}
	defer os.RemoveAll(dir)
	var target *burstTarget
	if temporalDB == "" {
		target, err = inProcessTarget(dir, pollers, encrypt)
	} else {
		target, err = processTarget(dir, temporalDB, shards, storeDB, encrypt)
	}
	if err != nil {
		return burstResult{}, err
	}
	defer target.stop()
	return target.burst(n, c, pollers)
}

// burstResult is what one burst measured.
type burstResult struct {
	encrypted bool
	n         int
	// total is the time until every expiration was reserved, minimal the floor's time.
	total, minimal time.Duration
	// cpu and minimalCPU are the CPU seconds of the installation during each.
	cpu, minimalCPU float64
}

func (r burstResult) rate() float64        { return float64(r.n) / r.total.Seconds() }
func (r burstResult) minimalRate() float64 { return float64(r.n) / r.minimal.Seconds() }

// printEncryptionComparison sums up the bursts of a --payload-encryption run: each mode's
// completions/s and CPU per expiration, and encryption on against off. With several
// bursts of a mode, their totals are pooled.
func printEncryptionComparison(results []burstResult) {
	type pooled struct {
		n               int
		total, minimal  time.Duration
		cpu, minimalCPU float64
		runs            int
	}
	by := map[bool]*pooled{true: {}, false: {}}
	fmt.Printf("\npayload encryption, %d bursts in this run (the floor, the minimal workflow, is unencrypted in every mode: it gauges the machine's load)\n", len(results))
	fmt.Printf("  %-10s %12s %14s %16s %16s\n", "encryption", "expirations/s", "minimal wf/s", "CPU ms/expiration", "kooflow/minimal")
	for _, r := range results {
		fmt.Printf("  %-10s %12.1f %14.1f %16.1f %16.2f\n", onOff(r.encrypted), r.rate(), r.minimalRate(),
			1000*r.cpu/float64(r.n), r.minimal.Seconds()/r.total.Seconds())
		p := by[r.encrypted]
		p.n += r.n
		p.total += r.total
		p.minimal += r.minimal
		p.cpu += r.cpu
		p.minimalCPU += r.minimalCPU
		p.runs++
	}
	on, off := by[true], by[false]
	if on.runs == 0 || off.runs == 0 {
		return
	}
	onRate, offRate := float64(on.n)/on.total.Seconds(), float64(off.n)/off.total.Seconds()
	onRel := on.minimal.Seconds() / on.total.Seconds()
	offRel := off.minimal.Seconds() / off.total.Seconds()
	fmt.Printf("  encrypted / clear throughput ratio: %.2f (%.1f vs %.1f expirations/s)\n", onRate/offRate, onRate, offRate)
	fmt.Printf("  encrypted / clear, each against its floor: %.2f (kooflow/minimal %.2f vs %.2f)\n", onRel/offRel, onRel, offRel)
	fmt.Printf("  CPU per expiration: %.1f ms encrypted vs %.1f ms clear (%+.1f ms)\n",
		1000*on.cpu/float64(on.n), 1000*off.cpu/float64(off.n), 1000*(on.cpu/float64(on.n)-off.cpu/float64(off.n)))
}

// burstTarget is a running kooflow for the burst, with its own KooDrive sandbox.
type burstTarget struct {
	describe string
	// encrypted says whether kooflow encrypts its Temporal payloads.
	encrypted  bool
	webhookURL string
	store      *store.Store
	client     client.Client
	sandbox    *sandbox.Sandbox
	// cpu is the CPU time used so far by each part of the installation, in seconds.
	cpu func() map[string]float64
	// memory describes peak resident memory.
	memory func() string
	stop   func()
}

func (t *burstTarget) burst(n, c, pollers int) (burstResult, error) {
	res := burstResult{encrypted: t.encrypted, n: n}
	if err := seed(t.store, "burst", n); err != nil {
		return res, err
	}
	fmt.Printf("\nburst on %s; payload encryption %s\n%d expirations, %d concurrent deliveries, pollers %d (0 = SDK default)\n",
		t.describe, onOff(t.encrypted), n, c, pollers)
	cpu0, start := t.cpu(), time.Now()
	// 000005 asks KooGallery to deliver again later, and it does: so does the burst,
	// after half a second, counting how often. Any other answer fails the burst.
	var retried atomic.Int64
	_, errs := run(n, c, func(i int) error {
		for {
			code, err := expire(t.webhookURL, instance("burst", i))
			switch {
			case err != nil:
				return err
			case code == koogallery.Success:
				return nil
			case code != koogallery.InternalError || time.Since(start) > 30*time.Minute:
				return fmt.Errorf("%s: result %s", instance("burst", i), code)
			}
			retried.Add(1)
			time.Sleep(500 * time.Millisecond)
		}
	})
	if err := firstError(errs); err != nil {
		return res, err
	}
	intake := time.Since(start)
	if _, err := waitCount(n, 30*time.Minute, reservedCount(t.store)); err != nil {
		return res, err
	}
	total := time.Since(start)
	cpu := cpuSince(cpu0, t.cpu())
	if got := len(t.sandbox.Notifications()); got != n {
		return res, fmt.Errorf("KooDrive received %d notifications for %d expirations", got, n)
	}
	if err := t.checkEncryption(instance("burst", 0)); err != nil {
		return res, err
	}
	res.total, res.cpu = total, sum(cpu)
	fmt.Printf("  intake done after   %6.1f s (%.0f deliveries/s; %d answers 000005, delivered again)\n",
		intake.Seconds(), float64(n)/intake.Seconds(), retried.Load())
	fmt.Printf("  all reserved after  %6.1f s (%.0f workflows/s), CPU %s (%.0f%% of one core), %s\n",
		total.Seconds(), float64(n)/total.Seconds(), formatCPU(cpu), 100*sum(cpu)/total.Seconds(), t.memory())

	w := sdkworker.New(t.client, "bench-minimal", sdkworker.Options{})
	w.RegisterWorkflowWithOptions(minimalWorkflow, workflow.RegisterOptions{Name: "BenchMinimal"})
	w.RegisterActivityWithOptions(func(context.Context) error { return nil }, activity.RegisterOptions{Name: "BenchNoop"})
	if err := w.Start(); err != nil {
		return res, err
	}
	defer w.Stop()
	cpu0, start = t.cpu(), time.Now()
	_, errs = run(n, c, func(i int) error {
		run, err := t.client.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
			ID: fmt.Sprintf("bench-minimal-%d", i), TaskQueue: "bench-minimal"}, "BenchMinimal")
		if err != nil {
			return err
		}
		return run.Get(context.Background(), nil)
	})
	if err := firstError(errs); err != nil {
		return res, err
	}
	minimal := time.Since(start)
	minimalCPU := cpuSince(cpu0, t.cpu())
	res.minimal, res.minimalCPU = minimal, sum(minimalCPU)
	fmt.Printf("  minimal workflow    %6.1f s (%.0f workflows/s), CPU %s (%.0f%% of one core)\n",
		minimal.Seconds(), float64(n)/minimal.Seconds(), formatCPU(minimalCPU), 100*sum(minimalCPU)/minimal.Seconds())
	fmt.Printf("  kooflow / minimal throughput ratio: %.2f\n", minimal.Seconds()/total.Seconds())
	return res, nil
}

// checkEncryption reads the input of instanceID's expiration workflow from its history
// without the codec (the bench's client has none) and fails unless it is encrypted
// exactly when the burst says so: the comparison must measure what it names.
func (t *burstTarget) checkEncryption(instanceID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	found, err := t.store.Expirations(ctx, store.ExpirationFilter{Subject: instanceID, Limit: 1})
	if err != nil {
		return fmt.Errorf("find the workflow of %s: %w", instanceID, err)
	}
	if len(found) == 0 {
		return fmt.Errorf("no expiration of %s in the store", instanceID)
	}
	workflowID := found[0].WorkflowID
	it := t.client.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return fmt.Errorf("workflow %s has no history", workflowID)
	}
	first, err := it.Next()
	if err != nil {
		return fmt.Errorf("history of %s: %w", workflowID, err)
	}
	payloads := first.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()
	if len(payloads) == 0 {
		return fmt.Errorf("workflow %s started without input", workflowID)
	}
	encoding := string(payloads[0].GetMetadata()[converter.MetadataEncoding])
	if encrypted := encoding == payloadcodec.MetadataEncoding; encrypted != t.encrypted {
		return fmt.Errorf("workflow %s: input encoding %q, but payload encryption is %s", workflowID, encoding, onOff(t.encrypted))
	}
	return nil
}

// minimalWorkflow is the floor: two no-op activities and nothing else.
func minimalWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	if err := workflow.ExecuteActivity(ctx, "BenchNoop").Get(ctx, nil); err != nil {
		return err
	}
	return workflow.ExecuteActivity(ctx, "BenchNoop").Get(ctx, nil)
}

// inProcessTarget runs a whole kooflow dev in this process, with payload encryption under
// a fresh key or none.
func inProcessTarget(dir string, pollers int, encrypt bool) (*burstTarget, error) {
	var codec *payloadcodec.Codec
	if encrypt {
		entry, err := payloadcodec.NewKeyEntry("bench")
		if err != nil {
			return nil, err
		}
		ring, err := payloadcodec.ParseKeys(entry)
		if err != nil {
			return nil, err
		}
		codec = payloadcodec.NewCodec(ring)
	}
	app, err := startApp(dir, func(o *devapp.Options) {
		o.PayloadCodec, o.PlainPayloads = codec, !encrypt
		if pollers > 0 {
			o.WorkerOptions = sdkworker.Options{MaxConcurrentWorkflowTaskPollers: pollers, MaxConcurrentActivityTaskPollers: pollers}
		}
	})
	if err != nil {
		return nil, err
	}
	return &burstTarget{
		describe:  "kooflow dev, everything in this process; Temporal on " + app.Stack.Persistence(),
		encrypted: encrypt, webhookURL: app.WebhookURL, store: app.Store, client: app.Client, sandbox: app.Sandbox,
		cpu:    func() map[string]float64 { return map[string]float64{"process": cpuSeconds()} },
		memory: func() string { return fmt.Sprintf("peak RSS %.0f MB", peakRSSMB()) },
		stop:   app.Stop,
	}, nil
}

// processTarget runs `kooflow temporal` (on SQLite in dir, or on fresh databases on the
// PostgreSQL server of temporalDB), `kooflow webhook` and `kooflow worker` as separate
// processes, with kooflow's store in a SQLite file (or a fresh database on the
// PostgreSQL server of storeDB) and the KooDrive sandbox in this process; webhook and
// worker encrypt payloads under a fresh key, or run with KOOFLOW_PAYLOAD_ENCRYPTION=off.
func processTarget(dir, temporalDB string, shards int, storeDB string, encrypt bool) (t *burstTarget, err error) {
	var cleanups []func()
	t = &burstTarget{encrypted: encrypt, stop: func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}}
	defer func() {
		if err != nil {
			t.stop()
		}
	}()
	bin := filepath.Join(dir, "kooflow")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/kooflow").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build kooflow: %v\n%s", err, out)
	}
	procs := map[string]*benchProcess{}
	start := func(name string, env []string, args ...string) (*benchProcess, error) {
		p, err := startBenchProcess(bin, filepath.Join(dir, name+".log"), env, args...)
		if err != nil {
			return nil, err
		}
		procs[name] = p
		cleanups = append(cleanups, p.stop)
		return p, nil
	}

	temporalAddr := freeAddr()
	_, port, _ := strings.Cut(temporalAddr, ":")
	temporalArgs := []string{"temporal", "--data-dir", filepath.Join(dir, "temporal"), "--temporal-port", port, "--ui-port", "-1"}
	var temporalEnv []string
	var postmaster int
	// fresh names a new database on the server of serverURL, dropped with its
	// companions (suffixes) when the burst ends.
	prefix := fmt.Sprintf("kooflow_bench_%d", time.Now().UnixNano()%1_000_000_000)
	fresh := func(serverURL, name string, suffixes ...string) (string, error) {
		u, err := url.Parse(serverURL)
		if err != nil || !strings.HasPrefix(u.Scheme, "postgres") {
			return "", fmt.Errorf("want a postgres:// URL, got %q", serverURL)
		}
		drop := []string{name}
		for _, s := range suffixes {
			drop = append(drop, name+s)
		}
		cleanups = append(cleanups, func() {
			if err := devstacktest.Drop(serverURL, drop...); err != nil {
				fmt.Fprintln(os.Stderr, "drop the bench's databases:", err)
			}
		})
		u.Path = "/" + name
		return u.String(), nil
	}
	if temporalDB != "sqlite" {
		dsn, err := fresh(temporalDB, prefix, "_visibility")
		if err != nil {
			return nil, fmt.Errorf("--temporal-db: %w", err)
		}
		temporalEnv = []string{"KOOFLOW_TEMPORAL_DB=" + dsn}
		temporalArgs = append(temporalArgs, "--history-shards", strconv.Itoa(shards))
		if postmaster, err = postmasterPID(temporalDB); err != nil {
			fmt.Fprintln(os.Stderr, "PostgreSQL's CPU is not counted:", err)
		}
	}
	temporal, err := start("temporal", temporalEnv, temporalArgs...)
	if err != nil {
		return nil, err
	}
	persistence, err := temporal.waitLine("Temporal persistence: ", 2*time.Minute)
	if err != nil {
		return nil, err
	}

	db := "sqlite:" + filepath.Join(dir, "kooflow.db")
	if storeDB != "" {
		if db, err = fresh(storeDB, prefix+"_store"); err != nil {
			return nil, fmt.Errorf("--store-db: %w", err)
		}
		if err := createDatabase(storeDB, prefix+"_store"); err != nil {
			return nil, err
		}
		if postmaster == 0 {
			if postmaster, err = postmasterPID(storeDB); err != nil {
				fmt.Fprintln(os.Stderr, "PostgreSQL's CPU is not counted:", err)
			}
		}
	}
	if t.store, err = store.Open(context.Background(), db); err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() { t.store.Close() })
	t.sandbox = sandbox.New(sandbox.Options{AccessToken: "bench-token", UserID: "bench-user"})
	kd := httptest.NewServer(t.sandbox.Handler())
	cleanups = append(cleanups, kd.Close)

	// The processes encrypt payloads, as in production, unless the burst measures them
	// without: the environment names the keys or turns encryption off, never both.
	encryption := []string{"KOOFLOW_PAYLOAD_KEYS_FILE=", "KOOFLOW_PAYLOAD_ENCRYPTION=off", "KOOFLOW_PAYLOAD_KEYS="}
	if encrypt {
		payloadKeys, err := payloadcodec.NewKeyEntry("bench")
		if err != nil {
			return nil, err
		}
		encryption = []string{"KOOFLOW_PAYLOAD_KEYS_FILE=", "KOOFLOW_PAYLOAD_ENCRYPTION=", "KOOFLOW_PAYLOAD_KEYS=" + payloadKeys}
	}
	common := append([]string{"TEMPORAL_ADDRESS=" + temporalAddr, "KOOFLOW_DB=" + db, "KOOFLOW_DATA_DIR=" + dir, "KOOFLOW_LOG_LEVEL=warn"},
		encryption...)
	// Every listener on a free port: the defaults (127.0.0.1:8080, :9090) may be taken by a
	// kooflow dev on this machine, and the webhook serves metrics too.
	webhookAddr, metricsAddr, webhookMetricsAddr := freeAddr(), freeAddr(), freeAddr()
	if _, err := start("webhook", append(common, "KOOGALLERY_KEY="+benchKey, "KOOFLOW_WEBHOOK_ADDR="+webhookAddr,
		"KOOFLOW_METRICS_ADDR="+webhookMetricsAddr), "webhook"); err != nil {
		return nil, err
	}
	if _, err := start("worker", append(common, "KOODRIVE_BASE_URL="+kd.URL, "KOODRIVE_ACCESS_TOKEN=bench-token",
		"KOODRIVE_USER_ID=bench-user", "KOOFLOW_METRICS_ADDR="+metricsAddr), "worker"); err != nil {
		return nil, err
	}
	t.webhookURL = "http://" + webhookAddr
	for _, u := range []string{t.webhookURL + "/readyz", "http://" + metricsAddr + "/healthz"} {
		if err := waitOK(u, time.Minute); err != nil {
			return nil, err
		}
	}
	if t.client, err = client.Dial(client.Options{HostPort: temporalAddr, Logger: quietSDKLogger{}}); err != nil {
		return nil, err
	}
	cleanups = append(cleanups, t.client.Close)

	storeName := "SQLite"
	if !strings.HasPrefix(db, "sqlite:") {
		storeName = "PostgreSQL"
	}
	t.describe = fmt.Sprintf("kooflow temporal, webhook and worker as separate processes; Temporal on %s; kooflow's store on %s", persistence, storeName)
	t.cpu = func() map[string]float64 {
		use := map[string]float64{"bench": cpuSeconds()}
		for name, p := range procs {
			use[name] = procCPU(p.cmd.Process.Pid)
		}
		if postmaster > 0 {
			use["PostgreSQL"] = postgresCPU(postmaster)
		}
		return use
	}
	t.memory = func() string {
		return fmt.Sprintf("peak RSS temporal %.0f MB, worker %.0f MB, webhook %.0f MB",
			procPeakRSSMB(procs["temporal"].cmd.Process.Pid), procPeakRSSMB(procs["worker"].cmd.Process.Pid), procPeakRSSMB(procs["webhook"].cmd.Process.Pid))
	}
	return t, nil
}

// benchProcess is a kooflow command in its own process, logging to a file.
type benchProcess struct {
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

func startBenchProcess(bin, logPath string, env []string, args ...string) (*benchProcess, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start kooflow %s: %w", args[0], err)
	}
	p := &benchProcess{cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.exited) }()
	return p, nil
}

// waitLine waits for a line starting with prefix in the process's output and returns
// the rest of it.
func (p *benchProcess) waitLine(prefix string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		if f, err := os.Open(p.log); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
					f.Close()
					return rest, nil
				}
			}
			f.Close()
		}
		select {
		case <-p.exited:
			logs, _ := os.ReadFile(p.log)
			return "", fmt.Errorf("kooflow %s exited:\n%s", p.cmd.Args[1], logs)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("kooflow %s printed no %q within %s (log %s)", p.cmd.Args[1], prefix, timeout, p.log)
		}
	}
}

func (p *benchProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func waitOK(u string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer 200 within %s", u, timeout)
}

// quietSDKLogger keeps the bench's own Temporal client quiet.
type quietSDKLogger struct{}

func (quietSDKLogger) Debug(string, ...any) {}
func (quietSDKLogger) Info(string, ...any)  {}
func (quietSDKLogger) Warn(string, ...any)  {}
func (quietSDKLogger) Error(string, ...any) {}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on Linux.
const clockTicks = 100

// procStat reads a process's parent and its CPU seconds: its own, and its waited-for
// children's.
func procStat(pid int) (ppid int, self, children float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	// The fields after the command name, which is in parentheses: state is field 3.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0, 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	num := func(k int) float64 { v, _ := strconv.ParseFloat(f[k-3], 64); return v }
	return int(num(4)), (num(14) + num(15)) / clockTicks, (num(16) + num(17)) / clockTicks, nil
}

// procCPU is a running process's CPU seconds.
func procCPU(pid int) float64 {
	_, self, _, _ := procStat(pid)
	return self
}

// postgresCPU is the CPU seconds of a PostgreSQL server on this machine: the
// postmaster, every live child (backends, WAL writer, checkpointer, ...) and the
// children that already exited.
func postgresCPU(postmaster int) float64 {
	_, self, reaped, err := procStat(postmaster)
	if err != nil {
		return 0
	}
	total := self + reaped
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, cpu, _, err := procStat(pid); err == nil && ppid == postmaster {
			total += cpu
		}
	}
	return total
}

// createDatabase creates database on the PostgreSQL server of serverURL.
func createDatabase(serverURL, database string) error {
	db, err := sql.Open("pgx", serverURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE DATABASE "` + database + `"`); err != nil {
		return fmt.Errorf("create database %s: %w", database, err)
	}
	return nil
}

// postmasterPID finds the PostgreSQL server process behind dsn when it runs on this
// machine: the parent of the backend serving a connection.
func postmasterPID(dsn string) (int, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var backend int
	if err := db.QueryRow("SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return 0, err
	}
	ppid, _, _, err := procStat(backend)
	if err != nil {
		return 0, fmt.Errorf("PostgreSQL does not run on this machine: %w", err)
	}
	return ppid, nil
}

// procPeakRSSMB is a running process's peak resident set (VmHWM) in MB.
func procPeakRSSMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func cpuSince(before, after map[string]float64) map[string]float64 {
	d := map[string]float64{}
	for k, v := range after {
		d[k] = v - before[k]
	}
	return d
}

func sum(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}

// formatCPU prints the total and, for several parts, each part.
func formatCPU(m map[string]float64) string {
	if len(m) == 1 {
		return fmt.Sprintf("%.0f s", sum(m))
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, m[k]))
	}
	return fmt.Sprintf("%.0f s [%s]", sum(m), strings.Join(parts, ", "))
}
