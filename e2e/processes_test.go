package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/devstack/devstacktest"
	"github.com/kooflow/kooflow/koodrive/sandbox"
	"github.com/kooflow/kooflow/koogallery"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
)

// process is a kooflow command running as its own OS process. Stop and Start run it
// again with the same arguments, appending to the same log; the test's cleanup stops it.
type process struct {
	t    *testing.T
	bin  string
	env  []string
	args []string
	log  string

	mu      sync.Mutex
	cmd     *exec.Cmd
	logFile *os.File
	exited  chan struct{}
}

func startProcess(t *testing.T, bin, logPath string, env []string, args ...string) *process {
	t.Helper()
	p := &process{t: t, bin: bin, env: env, args: args, log: logPath}
	p.Start()
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := os.ReadFile(logPath)
			if len(logs) > 3000 {
				logs = logs[len(logs)-3000:]
			}
			t.Logf("%s (last lines):\n%s", filepath.Base(logPath), logs)
		}
		p.Stop()
	})
	return p
}

// Start runs the command; the process must not be running.
func (p *process) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		p.t.Fatalf("%s is already running", filepath.Base(p.log))
	}
	logFile, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		p.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p.cmd, p.logFile, p.exited = cmd, logFile, exited
}

// Stop ends the process with SIGTERM, as an operator would, and waits for it (SIGKILL
// after 15 s). Stopping a stopped process does nothing.
func (p *process) Stop() { p.end(syscall.SIGTERM) }

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *process) Kill() { p.end(syscall.SIGKILL) }

func (p *process) end(sig syscall.Signal) {
	p.Signal(sig)
	if !p.WaitExit(15 * time.Second) {
		p.mu.Lock()
		_ = p.cmd.Process.Kill()
		p.mu.Unlock()
		p.WaitExit(time.Minute)
	}
}

// Signal sends sig to the running process, if any, without waiting.
func (p *process) Signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// WaitExit waits up to timeout for the process to exit and reports whether it has (true
// when it was not running).
func (p *process) WaitExit(timeout time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return true
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		return false
	}
	p.logFile.Close()
	p.cmd, p.logFile, p.exited = nil, nil, nil
	return true
}

// Running reports whether the process runs (it has not exited by itself).
func (p *process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// LogCount counts the lines of the process's log that contain s.
func (p *process) LogCount(s string) int {
	logs, _ := os.ReadFile(p.log)
	return strings.Count(string(logs), s)
}

// waitLog waits until the process's log has at least n lines containing s.
func (p *process) waitLog(t *testing.T, s string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for p.LogCount(s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d lines with %s after %s, want %d", filepath.Base(p.log), p.LogCount(s), s, timeout, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// temporalServer is `kooflow temporal` on PostgreSQL in its own process.
type temporalServer struct {
	*process
	// Addr is the frontend's address, the same across restarts.
	Addr string
	// Persistence is what the server reported it runs on.
	Persistence string
}

// startTemporal runs `kooflow temporal` with its Temporal data in new PostgreSQL
// databases (dropped after the test) and the given history shards, and waits until it
// serves. The URL reaches the process by KOOFLOW_TEMPORAL_DB, as an operator would pass
// a password.
func startTemporal(t *testing.T, bin, dir string, shards int) *temporalServer {
	t.Helper()
	return startTemporalAt(t, bin, dir, freeAddr(t), []string{"KOOFLOW_TEMPORAL_DB=" + devstacktest.PostgresURL(t)},
		"--history-shards", strconv.Itoa(shards))
}

// startTemporalAt runs `kooflow temporal` with its frontend on addr (its data in
// dir/temporal: SQLite unless env names a database), and waits until it serves.
func startTemporalAt(t *testing.T, bin, dir, addr string, env []string, args ...string) *temporalServer {
	t.Helper()
	_, port := splitPort(t, addr)
	ts := &temporalServer{Addr: addr}
	ts.process = startProcess(t, bin, filepath.Join(dir, "temporal.log"), env,
		append([]string{"temporal", "--data-dir", filepath.Join(dir, "temporal"), "--temporal-port", port, "--ui-port", "-1"}, args...)...)
	ts.waitServing(t, 0)
	return ts
}

// buildKooflow builds the kooflow binary into dir.
func buildKooflow(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "kooflow")
	build := exec.Command("go", "build", "-o", bin, "github.com/kooflow/kooflow/cmd/kooflow")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build kooflow: %v\n%s", err, out)
	}
	return bin
}

// Restart stops the server with SIGTERM, starts it again on the same databases and
// port, and waits until it serves.
func (ts *temporalServer) Restart(t *testing.T) {
	t.Helper()
	before := ts.started()
	ts.Stop()
	ts.Start()
	ts.waitServing(t, before)
}

// started counts the "Temporal persistence:" lines `kooflow temporal` printed: one per
// start that reached a serving frontend.
func (ts *temporalServer) started() int {
	logs, _ := os.ReadFile(ts.log)
	return strings.Count(string(logs), "Temporal persistence: ")
}

func (ts *temporalServer) waitServing(t *testing.T, startsBefore int) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for ts.started() <= startsBefore {
		if time.Now().After(deadline) {
			t.Fatalf("kooflow temporal did not report a serving frontend within 90 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	logs, _ := os.ReadFile(ts.log)
	line := string(logs[strings.LastIndex(string(logs), "Temporal persistence: "):])
	ts.Persistence = strings.TrimPrefix(strings.SplitN(line, "\n", 2)[0], "Temporal persistence: ")
	waitTCP(t, ts.Addr, 10*time.Second)
}

// clusterInfo asks the running server which stores and how many history shards it runs on.
func (ts *temporalServer) clusterInfo(t *testing.T) *workflowservice.GetClusterInfoResponse {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: ts.Addr, Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := c.WorkflowService().GetClusterInfo(ctx, &workflowservice.GetClusterInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func splitPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitTCP(t *testing.T, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s after %s", addr, timeout)
}

func waitHTTP(t *testing.T, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200 within %s", url, timeout)
}

// TestProductionTopology runs `kooflow temporal` (on PostgreSQL with 4 history shards),
// `kooflow webhook` and `kooflow worker` as separate OS processes with kooflow's store on
// PostgreSQL, kills the worker with SIGKILL while every expiration is retrying KooDrive,
// starts a new one, and checks each expiration reaches reserved with exactly one
// notification. TestProductionWiring runs the same process wiring in every `go test`, on
// SQLite and in this process.
func TestProductionTopology(t *testing.T) {
	if os.Getenv(storetest.PostgresEnv) == "" {
		t.Skip(storetest.PostgresEnv + " is not set: the production topology runs on PostgreSQL (CI sets it)")
	}
	dir := t.TempDir()
	bin := buildKooflow(t, dir)

	kd := sandbox.New(sandbox.Options{AccessToken: kooDriveToken, UserID: kooDriveUser})
	kdSrv := httptest.NewServer(kd.Handler())
	t.Cleanup(kdSrv.Close)
	kd.FailWhile(func() bool { return true }, 503)

	dsn := storetest.PostgresDSN(t)
	st := storetest.Open(t, dsn)
	const n = 20
	for i := 0; i < n; i++ {
		if _, err := st.UpsertSubscriptions(context.Background(), []store.Subscription{{
			InstanceID: fmt.Sprintf("inst-p%02d", i), CarrierUserID: fmt.Sprintf("user-p%02d", i), PackageID: "pkg"}}); err != nil {
			t.Fatal(err)
		}
	}

	const shards = 4
	temporalSrv := startTemporal(t, bin, dir, shards)
	info := temporalSrv.clusterInfo(t)
	t.Logf("Temporal persistence: %s (the server reports store %s, visibility %s, %d history shards, version %s)",
		temporalSrv.Persistence, info.GetPersistenceStore(), info.GetVisibilityStore(), info.GetHistoryShardCount(), info.GetServerVersion())
	if !strings.HasPrefix(info.GetPersistenceStore(), "postgres") || !strings.HasPrefix(info.GetVisibilityStore(), "postgres") || info.GetHistoryShardCount() != shards {
		t.Fatalf("Temporal runs on store %q, visibility %q with %d shards; want PostgreSQL for both and %d shards",
			info.GetPersistenceStore(), info.GetVisibilityStore(), info.GetHistoryShardCount(), shards)
	}
	temporalAddr := temporalSrv.Addr
	// Both processes share the payload keys, as in production.
	common := []string{"TEMPORAL_ADDRESS=" + temporalAddr, "TEMPORAL_NAMESPACE=default", "KOOFLOW_DB=" + dsn, "KOOFLOW_DATA_DIR=" + dir,
		"KOOFLOW_PAYLOAD_KEYS=" + newPayloadKey(t, "topology")}
	webhookAddr := freeAddr(t)
	webhookEnv := append(common, "KOOGALLERY_KEY="+testKey, "SMARTHUB_API_KEY="+smartHubKey, "KOOFLOW_WEBHOOK_ADDR="+webhookAddr)
	webhook := startProcess(t, bin, filepath.Join(dir, "webhook-1.log"), append(webhookEnv, "KOOFLOW_METRICS_ADDR="+freeAddr(t)), "webhook")
	workerEnv := append(common, "KOODRIVE_BASE_URL="+kdSrv.URL, "KOODRIVE_ACCESS_TOKEN="+kooDriveToken, "KOODRIVE_USER_ID="+kooDriveUser)
	metricsAddr := freeAddr(t)
	worker := startProcess(t, bin, filepath.Join(dir, "worker-1.log"), append(workerEnv, "KOOFLOW_METRICS_ADDR="+metricsAddr), "worker")
	waitHTTP(t, "http://"+webhookAddr+"/readyz", 60*time.Second)
	waitHTTP(t, "http://"+metricsAddr+"/readyz", 60*time.Second)

	for i := 0; i < n; i++ {
		deliverAccepted(t, webhookAddr, fmt.Sprintf("inst-p%02d", i))
	}

	// Every expiration is retrying KooDrive: kill the worker mid-run.
	deadline := time.Now().Add(60 * time.Second)
	for {
		exps, err := st.Expirations(context.Background(), store.ExpirationFilter{State: store.StateNotifying, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		retrying := 0
		for _, x := range exps {
			if x.Attempts >= 1 {
				retrying++
			}
		}
		if retrying == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d expirations are retrying KooDrive", retrying, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	worker.Kill()
	kd.ClearFaults()
	startProcess(t, bin, filepath.Join(dir, "worker-2.log"), append(workerEnv, "KOOFLOW_METRICS_ADDR="+freeAddr(t)), "worker")

	waitReserved(t, st, n, "after the worker was killed")

	// The Temporal process stops in the middle of a second burst, and the webhook process
	// is killed while the deliveries it accepted are still queued: KooGallery must see
	// 000000 for every one, and each must still be reserved exactly once.
	for i := 0; i < n; i++ {
		if _, err := st.UpsertSubscriptions(context.Background(), []store.Subscription{{
			InstanceID: fmt.Sprintf("inst-q%02d", i), CarrierUserID: fmt.Sprintf("user-q%02d", i), PackageID: "pkg"}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n/2; i++ {
		deliverAccepted(t, webhookAddr, fmt.Sprintf("inst-q%02d", i))
	}
	startsBefore := temporalSrv.started()
	temporalSrv.Stop()
	for i := n / 2; i < n; i++ {
		deliverAccepted(t, webhookAddr, fmt.Sprintf("inst-q%02d", i))
	}
	webhook.Kill()
	startProcess(t, bin, filepath.Join(dir, "webhook-2.log"), append(webhookEnv, "KOOFLOW_METRICS_ADDR="+freeAddr(t)), "webhook")
	waitHTTP(t, "http://"+webhookAddr+"/readyz", 60*time.Second)
	temporalSrv.Start()
	temporalSrv.waitServing(t, startsBefore)
	waitReserved(t, st, 2*n, "after the Temporal restart and the webhook kill")

	perUser := map[string]int{}
	for _, note := range kd.Notifications() {
		perUser[note.CarrierUserID]++
	}
	for i := 0; i < n; i++ {
		for _, user := range []string{fmt.Sprintf("user-p%02d", i), fmt.Sprintf("user-q%02d", i)} {
			if got := perUser[user]; got != 1 {
				t.Errorf("%s notified %d times, want 1", user, got)
			}
		}
	}
	for _, name := range []string{"webhook-1.log", "webhook-2.log", "worker-1.log", "worker-2.log"} {
		logs, _ := os.ReadFile(filepath.Join(dir, name))
		for _, secret := range []string{testKey, kooDriveToken, smartHubKey} {
			if strings.Contains(string(logs), secret) {
				t.Errorf("%s contains a secret", name)
			}
		}
	}
}

// deliverAccepted sends a signed expireInstance to the webhook process and requires
// 000000 within KooGallery's 5 seconds, whatever state Temporal is in.
func deliverAccepted(t *testing.T, webhookAddr, instance string) {
	t.Helper()
	params := koogallery.Params{"activity": "expireInstance", "instanceId": instance, "orderId": "CS",
		"timeStamp": time.Now().UTC().Format("20060102150405") + "000"}
	start := time.Now()
	resp, err := http.Get("http://" + webhookAddr + "/koogallery/produce?" + koogallery.SignedQuery(testKey, params))
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 512)
	m, _ := resp.Body.Read(body)
	resp.Body.Close()
	if !strings.Contains(string(body[:m]), `"000000"`) || time.Since(start) > 5*time.Second {
		t.Fatalf("delivery of %s: %s after %s, want 000000 within 5 s", instance, body[:m], time.Since(start))
	}
}

// waitReserved waits until want expirations are reserved.
func waitReserved(t *testing.T, st *store.Store, want int, when string) {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		counts, err := st.CountExpirationsByState(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if counts[store.StateReserved] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v, want %d reserved", when, counts, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
