package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
	"github.com/kooflow/kooflow/wiring"
)

func registryInstances(t *testing.T, st *store.Store) []string {
	t.Helper()
	var ids []string
	if err := st.EachSubscription(context.Background(), func(s store.Subscription) error {
		ids = append(ids, s.InstanceID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestDevSeedsDemoOnlyIntoAnEmptyRegistryWithTheSandbox(t *testing.T) {
	ctx := context.Background()

	st := storetest.OpenSQLite(t)
	demo, err := seedDemo(ctx, st, true)
	if err != nil || !demo {
		t.Fatalf("empty registry with the sandbox: demo %v, %v", demo, err)
	}
	if got := registryInstances(t, st); strings.Join(got, ",") != "demo-0001,demo-0002,demo-sim-0001" {
		t.Fatalf("registry %v", got)
	}
	// The next start finds them and adds nothing.
	if demo, err := seedDemo(ctx, st, true); err != nil || !demo || len(registryInstances(t, st)) != 3 {
		t.Fatalf("second start: demo %v, %v, registry %v", demo, err, registryInstances(t, st))
	}

	imported := storetest.OpenSQLite(t)
	if _, err := imported.UpsertSubscriptions(ctx, []store.Subscription{{InstanceID: "real-1", CarrierUserID: "u", PackageID: "p"}}); err != nil {
		t.Fatal(err)
	}
	if demo, err := seedDemo(ctx, imported, true); err != nil || demo {
		t.Fatalf("imported registry: demo %v, %v", demo, err)
	}
	if got := registryInstances(t, imported); strings.Join(got, ",") != "real-1" {
		t.Fatalf("demo rows added to an imported registry: %v", got)
	}

	real := storetest.OpenSQLite(t)
	if demo, err := seedDemo(ctx, real, false); err != nil || demo || len(registryInstances(t, real)) != 0 {
		t.Fatalf("real KooDrive: demo %v, %v, registry %v", demo, err, registryInstances(t, real))
	}
}

func TestDevBannerShowsOnlyGeneratedKeys(t *testing.T) {
	const envKey, generated = "env-supplied-koogallery-key", "dev-0123456789abcdef"
	b := banner{temporal: "127.0.0.1:7233", namespace: "default", ui: "http://ui", webhook: "http://hook", metrics: "http://m",
		koodrive: "http://kd (sandbox)", dataDir: "./kooflow-data", demo: true, sandbox: true,
		keys: []bannerKey{
			{label: "KooGallery key", env: "KOOGALLERY_KEY", value: envKey, file: "koogallery.key"},
			{label: "SmartHub API key", env: "SMARTHUB_API_KEY", value: generated, file: "smarthub.key"},
		}}
	env := map[string]string{"KOOGALLERY_KEY": envKey}
	var out bytes.Buffer
	printBanner(&out, b, func(k string) string { return env[k] })
	text := out.String()
	if strings.Contains(text, envKey) || !strings.Contains(text, "KooGallery key     from KOOGALLERY_KEY (not shown)") {
		t.Fatalf("an environment-supplied key is shown:\n%s", text)
	}
	if !strings.Contains(text, "SmartHub API key   "+generated+"   (dev key, stored in kooflow-data/smarthub.key)") {
		t.Fatalf("the generated key is not shown with its file:\n%s", text)
	}
	if !strings.Contains(text, "--instance demo-0001") {
		t.Fatalf("no demo command:\n%s", text)
	}

	for _, c := range []struct {
		demo, sandbox bool
		want          string
	}{
		{false, true, "already held subscriptions"},
		{false, false, "talks to a real KooDrive"},
	} {
		b.demo, b.sandbox = c.demo, c.sandbox
		out.Reset()
		printBanner(&out, b, func(string) string { return "" })
		if text := out.String(); !strings.Contains(text, c.want) || strings.Contains(text, "demo-0001") || !strings.Contains(text, "--instance <instanceId>") {
			t.Fatalf("demo %v sandbox %v:\n%s", c.demo, c.sandbox, text)
		}
	}
}

func TestDevKooDriveSettings(t *testing.T) {
	get := func(env map[string]string) func(string) string { return func(k string) string { return env[k] } }

	d, err := devKooDriveSettings(get(nil))
	if err != nil || d.url != "" || len(d.apps) != 1 || fmt.Sprint(d.auth) != "app signature (KOODRIVE_APP_ID kooflow-dev)" ||
		!strings.Contains(d.describe, "secret generated for this run") {
		t.Fatalf("default: %+v, %v", d, err)
	}
	for _, secret := range d.apps {
		if len(secret) < 32 || strings.Contains(d.describe, secret) {
			t.Fatalf("generated secret %d characters, describe %q", len(secret), d.describe)
		}
	}

	d, err = devKooDriveSettings(get(map[string]string{"KOODRIVE_ACCESS_TOKEN": "my-dev-token"}))
	if err != nil || d.token != "my-dev-token" || fmt.Sprint(d.auth) != "access token from KOODRIVE_ACCESS_TOKEN" || d.apps != nil {
		t.Fatalf("token: %+v, %v", d, err)
	}

	_, err = devKooDriveSettings(get(map[string]string{"KOODRIVE_BASE_URL": "https://kd.example", "KOODRIVE_APP_ID": "a"}))
	if err == nil || !strings.Contains(err.Error(), "KOODRIVE_APP_SECRET") || !strings.Contains(err.Error(), "KOODRIVE_USER_ID") {
		t.Fatalf("real KooDrive with incomplete settings: %v", err)
	}

	if _, err := devKooDriveSettings(get(map[string]string{"KOODRIVE_AUTH": "basic"})); err == nil {
		t.Fatal("KOODRIVE_AUTH=basic accepted")
	}
}

func TestWorkerNamesEveryMissingVariable(t *testing.T) {
	for _, v := range []string{"KOOFLOW_DB", "KOODRIVE_BASE_URL", "KOODRIVE_USER_ID", "KOODRIVE_AUTH", "KOODRIVE_APP_ID", "KOODRIVE_APP_SECRET",
		"KOODRIVE_ACCESS_TOKEN", "KOODRIVE_ACCESS_TOKEN_FILE"} {
		t.Setenv(v, "")
	}
	_, err := run(t, "worker")
	if err == nil {
		t.Fatal("worker started without settings")
	}
	for _, want := range []string{"KOOFLOW_DB", "KOODRIVE_BASE_URL", "KOODRIVE_USER_ID", "KOODRIVE_ACCESS_TOKEN or KOODRIVE_ACCESS_TOKEN_FILE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	t.Setenv("KOODRIVE_APP_ID", "app-1")
	if _, err := run(t, "worker"); err == nil || !strings.Contains(err.Error(), "KOODRIVE_APP_SECRET") {
		t.Fatalf("app mode without its secret: %v", err)
	}
}

// TestSecondDevOnOneDataDirIsRefused: while a process holds a data directory, kooflow dev
// and kooflow temporal on it refuse to start, naming the holder; once it is released
// (as the kernel does when the holder exits, even by SIGKILL) they may take it.
func TestSecondDevOnOneDataDirIsRefused(t *testing.T) {
	dir, err := filepath.Abs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "temporal-ports.json"), []byte(`{"grpc":{"frontend":7399}}`), 0o644)
	release, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("data directory %s is in use by another kooflow dev or kooflow temporal (pid %d), Temporal frontend 127.0.0.1:7399", dir, os.Getpid())
	// Databases that cannot be opened: were the lock not checked first, the commands would
	// fail on them (quickly) instead of starting a stack.
	t.Setenv("KOOFLOW_DB", "nonsense://")
	for _, args := range [][]string{{"dev"}, {"temporal", "--db", "nonsense://"}} {
		if _, err := run(t, append(args, "--data-dir", dir)...); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s on a held data directory: %v", args[0], err)
		}
	}
	release()

	// Another process holds it, and is killed with SIGKILL: the lock goes with it.
	holder := exec.Command(os.Args[0], "-test.run=^TestHoldDataDirLock$")
	holder.Env = append(os.Environ(), "KOOFLOW_HOLD_LOCK="+dir)
	stdout, _ := holder.StdoutPipe()
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); !strings.HasPrefix(line, "locked") {
		holder.Process.Kill()
		t.Fatalf("the holder did not take the lock: %q", line)
	}
	if _, err := run(t, "dev", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("(pid %d)", holder.Process.Pid)) {
		t.Fatalf("dev beside another process holding the data directory: %v", err)
	}
	holder.Process.Kill() // SIGKILL
	holder.Wait()
	again, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("the lock outlived a SIGKILLed holder: %v", err)
	}
	again()
}

// TestHoldDataDirLock is the holder process of TestSecondDevOnOneDataDirIsRefused: it
// takes the lock of $KOOFLOW_HOLD_LOCK, says so, and waits to be killed.
func TestHoldDataDirLock(t *testing.T) {
	dir := os.Getenv("KOOFLOW_HOLD_LOCK")
	if dir == "" {
		t.Skip("only run as TestSecondDevOnOneDataDirIsRefused's helper process")
	}
	if _, err := lockDataDir(dir); err != nil {
		t.Fatal(err)
	}
	fmt.Println("locked")
	time.Sleep(time.Hour)
}

// TestDevHelpNamesItsEnvironment: kooflow dev --help names every variable it reads, beside
// the flag each one sets.
func TestDevHelpNamesItsEnvironment(t *testing.T) {
	out, err := run(t, "dev", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"KOOFLOW_DATA_DIR", "KOOFLOW_TEMPORAL_PORT", "KOOFLOW_UI_PORT", "KOOFLOW_WEBHOOK_ADDR", "KOOFLOW_METRICS_ADDR",
		"KOOFLOW_SANDBOX_ADDR", "KOOFLOW_SCHEDULE_CRON", "KOOFLOW_SCHEDULE_TIMEZONE", "KOOFLOW_DB", "KOOGALLERY_KEY", "SMARTHUB_API_KEY",
		"SMARTHUB_SIGNATURE_MODE", "KOODRIVE_BASE_URL", "KOOFLOW_LOG_LEVEL"} {
		if !strings.Contains(out, v) {
			t.Errorf("kooflow dev --help does not name %s", v)
		}
	}
	for _, flag := range []string{"--temporal-port int", "--ui-port int", "--sandbox-addr string"} {
		i := strings.Index(out, flag)
		if i < 0 {
			t.Fatalf("no %s in\n%s", flag, out)
		}
		line, _, _ := strings.Cut(out[i:], "\n")
		if !strings.Contains(line, "(env KOOFLOW_") {
			t.Errorf("%s does not name its variable: %q", flag, line)
		}
	}
}

// TestWorkerHelpDocumentsWaitingAndStopping: kooflow worker --help says how it waits for
// Temporal (the backoff cap), what /healthz and /readyz answer, and how long SIGTERM lets
// activities finish (KOOFLOW_WORKER_STOP_TIMEOUT and its default).
func TestWorkerHelpDocumentsWaitingAndStopping(t *testing.T) {
	out, err := run(t, "worker", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"capped at " + wiring.TemporalRetryMax.String(), "/healthz", "/readyz", "waiting for Temporal at",
		"KOOFLOW_WORKER_STOP_TIMEOUT", "default " + wiring.DefaultWorkerStopTimeout.String(), "SIGTERM"} {
		if !strings.Contains(out, want) {
			t.Errorf("kooflow worker --help does not say %q", want)
		}
	}
}

func TestTemporalRefusesProfilingWithoutAMetricsPort(t *testing.T) {
	t.Setenv("KOOFLOW_PPROF", "on")
	t.Setenv("KOOFLOW_TEMPORAL_METRICS_ADDR", "")
	if _, err := run(t, "temporal", "--data-dir", t.TempDir()); err == nil || !strings.Contains(err.Error(), "KOOFLOW_PPROF=on needs --metrics-addr") {
		t.Fatalf("temporal with KOOFLOW_PPROF=on and no metrics address: %v", err)
	}
	t.Setenv("KOOFLOW_PPROF", "yes")
	for _, cmd := range []string{"temporal", "dev"} {
		if _, err := run(t, cmd, "--data-dir", t.TempDir()); err == nil || !strings.Contains(err.Error(), `KOOFLOW_PPROF="yes": want on or off`) {
			t.Fatalf("%s with KOOFLOW_PPROF=yes: %v", cmd, err)
		}
	}
}
