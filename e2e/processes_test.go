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
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kooflow/kooflow/koodrive/sandbox"
	"github.com/kooflow/kooflow/koogallery"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
)

// process is a kooflow command running as its own OS process.
type process struct {
	cmd *exec.Cmd
	log string
}

func startProcess(t *testing.T, bin, logPath string, env []string, args ...string) *process {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, log: logPath}
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := os.ReadFile(logPath)
			if len(logs) > 3000 {
				logs = logs[len(logs)-3000:]
			}
			t.Logf("%s (last lines):\n%s", filepath.Base(logPath), logs)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
		}
		logFile.Close()
	})
	return p
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

// TestProductionTopology runs `kooflow temporal`, `kooflow webhook` and `kooflow worker`
// as separate OS processes on PostgreSQL, kills the worker with SIGKILL while every
// expiration is retrying KooDrive, starts a new one, and checks each expiration reaches
// reserved with exactly one notification.
func TestProductionTopology(t *testing.T) {
	if os.Getenv(storetest.PostgresEnv) == "" {
		t.Skip(storetest.PostgresEnv + " is not set: the production topology runs on PostgreSQL (CI sets it)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "kooflow")
	build := exec.Command("go", "build", "-o", bin, "github.com/kooflow/kooflow/cmd/kooflow")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build kooflow: %v\n%s", err, out)
	}

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

	temporalAddr := freeAddr(t)
	_, temporalPort, _ := net.SplitHostPort(temporalAddr)
	startProcess(t, bin, filepath.Join(dir, "temporal.log"), nil,
		"temporal", "--data-dir", filepath.Join(dir, "temporal"), "--temporal-port", temporalPort, "--ui-port", "-1")
	waitTCP(t, temporalAddr, 60*time.Second)
	common := []string{"TEMPORAL_ADDRESS=" + temporalAddr, "TEMPORAL_NAMESPACE=default", "KOOFLOW_DB=" + dsn, "KOOFLOW_DATA_DIR=" + dir}
	webhookAddr := freeAddr(t)
	startProcess(t, bin, filepath.Join(dir, "webhook.log"), append(common,
		"KOOGALLERY_KEY="+testKey, "SMARTHUB_API_KEY="+smartHubKey, "KOOFLOW_WEBHOOK_ADDR="+webhookAddr), "webhook")
	workerEnv := append(common, "KOODRIVE_BASE_URL="+kdSrv.URL, "KOODRIVE_ACCESS_TOKEN="+kooDriveToken, "KOODRIVE_USER_ID="+kooDriveUser)
	metricsAddr := freeAddr(t)
	worker := startProcess(t, bin, filepath.Join(dir, "worker-1.log"), append(workerEnv, "KOOFLOW_METRICS_ADDR="+metricsAddr), "worker")
	waitHTTP(t, "http://"+webhookAddr+"/readyz", 60*time.Second)
	waitHTTP(t, "http://"+metricsAddr+"/healthz", 60*time.Second)

	for i := 0; i < n; i++ {
		params := koogallery.Params{"activity": "expireInstance", "instanceId": fmt.Sprintf("inst-p%02d", i), "orderId": "CS",
			"timeStamp": time.Now().UTC().Format("20060102150405") + "000"}
		resp, err := http.Get("http://" + webhookAddr + "/koogallery/produce?" + koogallery.SignedQuery(testKey, params))
		if err != nil {
			t.Fatal(err)
		}
		body := make([]byte, 512)
		m, _ := resp.Body.Read(body)
		resp.Body.Close()
		if !strings.Contains(string(body[:m]), `"000000"`) {
			t.Fatalf("delivery %d: %s", i, body[:m])
		}
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
	if err := worker.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = worker.cmd.Wait()
	kd.ClearFaults()
	startProcess(t, bin, filepath.Join(dir, "worker-2.log"), append(workerEnv, "KOOFLOW_METRICS_ADDR="+freeAddr(t)), "worker")

	deadline = time.Now().Add(120 * time.Second)
	for {
		counts, err := st.CountExpirationsByState(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if counts[store.StateReserved] == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the worker was killed: %v, want %d reserved", counts, n)
		}
		time.Sleep(250 * time.Millisecond)
	}
	perUser := map[string]int{}
	for _, note := range kd.Notifications() {
		perUser[note.CarrierUserID]++
	}
	for i := 0; i < n; i++ {
		if got := perUser[fmt.Sprintf("user-p%02d", i)]; got != 1 {
			t.Errorf("user-p%02d notified %d times, want 1", i, got)
		}
	}
	for _, name := range []string{"webhook.log", "worker-1.log", "worker-2.log"} {
		logs, _ := os.ReadFile(filepath.Join(dir, name))
		for _, secret := range []string{testKey, kooDriveToken, smartHubKey} {
			if strings.Contains(string(logs), secret) {
				t.Errorf("%s contains a secret", name)
			}
		}
	}
}
