package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/devapp"
	"github.com/kooflow/kooflow/payloadcodec"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/workflows"
)

// storeWith returns an open store (and its data directory) whose registry holds the
// given instances.
func storeWith(t *testing.T, instances ...string) (*store.Store, string) {
	t.Helper()
	dir := t.TempDir()
	csv := "instanceId,carrierUserId,packageId\n"
	for i, in := range instances {
		csv += fmt.Sprintf("%s,user-%d,pkg-%d\n", in, i, i)
	}
	reg := filepath.Join(dir, "reg.csv")
	os.WriteFile(reg, []byte(csv), 0o644)
	if out, err := run(t, "registry", "import", reg, "--data-dir", dir, "--create"); err != nil {
		t.Fatalf("import: %q, %v", out, err)
	}
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, "kooflow.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, dir
}

// subID returns the registry ID of an instance.
func subID(t *testing.T, st *store.Store, instance string) int64 {
	t.Helper()
	sub, err := st.SubscriptionByInstance(context.Background(), instance)
	if err != nil {
		t.Fatal(err)
	}
	return sub.ID
}

// dataDir returns a data directory holding an empty kooflow database, as kooflow dev
// leaves it on its first start.
func dataDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, "kooflow.db"))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	return dir
}

// run executes the kooflow command line in-process and returns its output.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestRegistryImportThenStatus(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "reg.csv")
	os.WriteFile(good, []byte("instanceId,carrierUserId,packageId,expireTime,gIccid,packageCode\ninst-1,user-1,pkg-1,20261031160000,,\n,user-9,pkg-9,,8986,PK9\n"), 0o644)
	out, err := run(t, "registry", "import", good, "--data-dir", dir, "--create")
	if err != nil || !strings.Contains(out, "as import 1: 2 inserted, 0 updated") {
		t.Fatalf("import: %q, %v", out, err)
	}
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("instanceId,carrierUserId,packageId\ninst-2,user-2,pkg-2\ninst-3,,pkg-3\n"), 0o644)
	if _, err := run(t, "registry", "import", bad, "--data-dir", dir, "--create"); err == nil || !strings.Contains(err.Error(), "row 3: carrierUserId is required") {
		t.Fatalf("bad import: %v", err)
	}
	out, err = run(t, "status", "inst-2", "--data-dir", dir)
	if err == nil || out != "" || !strings.Contains(err.Error(), "inst-2 is not in the registry and has no expirations") {
		t.Fatalf("a refused file was partly applied: %q, %v", out, err)
	}
	out, err = run(t, "status", "8986/PK9", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "8986/PK9: status active, carrierUserId user-9") {
		t.Fatalf("status of a SIM: %q, %v", out, err)
	}
	out, err = run(t, "status", "inst-1", "--data-dir", dir)
	// The history names the import: the file, and who ran it from the command line.
	if err != nil || !strings.Contains(out, "status active, carrierUserId user-1") || !strings.Contains(out, "imported") ||
		!strings.Contains(out, "import 1 of "+good+" by "+starter.CLIActor().Name+" via cli") {
		t.Fatalf("status: %q, %v", out, err)
	}
	out, err = run(t, "status", "inst-1", "-o", "json", "--data-dir", dir)
	if err != nil || !strings.Contains(out, `"event": "imported"`) || !strings.Contains(out, `"importId": 1`) {
		t.Fatalf("status -o json: %q, %v", out, err)
	}
}

func TestMissingSecretsAreNamed(t *testing.T) {
	for _, v := range []string{"KOOFLOW_DB", "KOOGALLERY_KEY", "KOODRIVE_BASE_URL", "KOODRIVE_ACCESS_TOKEN", "KOODRIVE_USER_ID"} {
		t.Setenv(v, "")
	}
	_, err := run(t, "webhook")
	if err == nil || !strings.Contains(err.Error(), "KOOFLOW_DB, KOOGALLERY_KEY") {
		t.Fatalf("webhook: %v", err)
	}
	_, err = run(t, "worker")
	if err == nil || !strings.Contains(err.Error(), "KOODRIVE_ACCESS_TOKEN") {
		t.Fatalf("worker: %v", err)
	}
}

func TestRetryNeedsATarget(t *testing.T) {
	if _, err := run(t, "retry", "--data-dir", dataDir(t)); err == nil {
		t.Fatal("retry without a target was accepted")
	}
	_, err := run(t, "retry", "inst-none", "--data-dir", dataDir(t))
	if err == nil || err.Error() != "instance inst-none has no stalled expiration (see `kooflow status inst-none`)" {
		t.Fatalf("retry of an instance without stalled expirations: %v", err)
	}
	if _, err := run(t, "retry", "--all-stalled", "--data-dir", dataDir(t)); err == nil || err.Error() != "no stalled expiration anywhere" {
		t.Fatalf("retry --all-stalled with nothing stalled: %v", err)
	}
}

func TestStatusUnmatchedAndReplayErrors(t *testing.T) {
	dir := dataDir(t)
	out, err := run(t, "status", "--unmatched", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "no unmatched SmartHub events") {
		t.Fatalf("status --unmatched: %q, %v", out, err)
	}
	if _, err := run(t, "replay", "no-such-event", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("replay of an unknown event: %v", err)
	}
	if _, err := run(t, "reconcile", "show", "--cycle", "2026-10", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "has not been reconciled") {
		t.Fatalf("reconcile show: %v", err)
	}
	if _, err := run(t, "reconcile", "--cycle", "2999-01"); err == nil || !strings.Contains(err.Error(), "not over yet") {
		t.Fatalf("reconcile of a future cycle: %v", err)
	}
}

// TestExpireFollowsTheRuleBookAndQueues: `kooflow expire` judges by the same rules as the
// webhook, and with Temporal unreachable it queues the expiry and says so.
func TestExpireFollowsTheRuleBookAndQueues(t *testing.T) {
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1") // nothing listens: Temporal is down
	dir := t.TempDir()
	reg := filepath.Join(dir, "reg.csv")
	future := time.Now().Add(40 * 24 * time.Hour).UTC().Format("20060102150405")
	os.WriteFile(reg, []byte("instanceId,carrierUserId,packageId,expireTime\ninst-due,user-1,pkg-1,\ninst-renewed,user-2,pkg-2,"+future+"\n"), 0o644)
	if out, err := run(t, "registry", "import", reg, "--data-dir", dir, "--create"); err != nil {
		t.Fatalf("import: %q, %v", out, err)
	}
	if _, err := run(t, "expire", "--instance", "inst-renewed", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "is not expired") ||
		!strings.Contains(err.Error(), "KooGallery reported no expiry") {
		t.Fatalf("expire of an instance running for 40 more days: %v", err)
	}
	out, err := run(t, "expire", "--instance", "inst-due", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "accepted and queued: expire/koogallery/inst-due/current") {
		t.Fatalf("expire with Temporal down: %q, %v", out, err)
	}
	out, err = run(t, "expire", "--instance", "inst-due", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "already accepted") {
		t.Fatalf("second expire: %q, %v", out, err)
	}
	out, err = run(t, "status", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "queued for Temporal: 1") {
		t.Fatalf("status: %q, %v", out, err)
	}
	out, err = run(t, "status", "inst-due", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "start") || !strings.Contains(out, "expire/koogallery/inst-due/current") {
		t.Fatalf("status of the instance: %q, %v", out, err)
	}
}

// TestMissingDatabaseIsAnError: an operator command pointed at a data directory without a
// kooflow database (a forgotten --data-dir) fails, names what to do, and creates nothing.
func TestMissingDatabaseIsAnError(t *testing.T) {
	t.Setenv("KOOFLOW_DB", "")
	t.Setenv("KOOFLOW_DATA_DIR", "")
	t.Chdir(t.TempDir()) // the default ./kooflow-data does not exist here
	for _, args := range [][]string{
		{"status"},
		{"status", "demo-0002"},
		{"retry", "demo-0002"},
		{"reconcile", "show", "--cycle", "2026-10"},
		{"reconcile", "--cycle", "2026-10"},
		{"expire", "--instance", "demo-0002"},
		{"replay", "some-event"},
	} {
		out, err := run(t, args...)
		if err == nil || !strings.Contains(err.Error(), "no kooflow database at kooflow-data/kooflow.db") || !strings.Contains(err.Error(), "--data-dir") {
			t.Errorf("%v: %q, %v", args, out, err)
		}
	}
	if _, err := os.Stat("kooflow-data"); !os.IsNotExist(err) {
		t.Fatalf("a command created the data directory: %v", err)
	}
	// registry import in the wrong directory fails too, and creates nothing: a new, empty
	// database the running stack never reads would make "1 inserted" a lie.
	os.WriteFile("reg.csv", []byte("instanceId,carrierUserId,packageId\ninst-1,user-1,pkg-1\n"), 0o644)
	out, err := run(t, "registry", "import", "reg.csv")
	if err == nil || !strings.Contains(err.Error(), "no kooflow database at kooflow-data/kooflow.db") || !strings.Contains(err.Error(), "--create") {
		t.Fatalf("import without a database: %q, %v", out, err)
	}
	if _, err := os.Stat("kooflow-data"); !os.IsNotExist(err) {
		t.Fatalf("registry import created the data directory: %v", err)
	}
	// A database named by --db that does not exist is refused too, naming --db.
	out, err = run(t, "status", "--db", "sqlite:elsewhere/kooflow.db")
	if err == nil || !strings.Contains(err.Error(), "no kooflow database at elsewhere/kooflow.db") || !strings.Contains(err.Error(), "--db/KOOFLOW_DB right") {
		t.Fatalf("status with a --db that does not exist: %q, %v", out, err)
	}
	if _, err := os.Stat("elsewhere"); !os.IsNotExist(err) {
		t.Fatalf("status created the --db directory: %v", err)
	}
	// --create is how a fresh installation starts: the first import makes the database.
	if out, err := run(t, "registry", "import", "reg.csv", "--create"); err != nil {
		t.Fatalf("import into a new database: %q, %v", out, err)
	}
	if out, err := run(t, "status", "inst-1"); err != nil || !strings.Contains(out, "status active") {
		t.Fatalf("status after import: %q, %v", out, err)
	}
}

// TestOperatorCommandsFollowTheRecordedTemporalPort: without TEMPORAL_ADDRESS an operator
// command dials the frontend port kooflow dev recorded in the data directory;
// TEMPORAL_ADDRESS and --temporal-address take precedence, in that order.
func TestOperatorCommandsFollowTheRecordedTemporalPort(t *testing.T) {
	t.Setenv("TEMPORAL_ADDRESS", "")
	dir := dataDir(t)
	// Ports where nothing listens: the error names the address that was dialled.
	os.WriteFile(filepath.Join(dir, "temporal-ports.json"), []byte(`{"grpc":{"frontend":3},"membership":{"frontend":4}}`), 0o644)
	// As kooflow dev leaves it: the payload key the commands decode with.
	if _, err := payloadcodec.EnsureDevKey(dir); err != nil {
		t.Fatal(err)
	}
	reg := filepath.Join(dir, "reg.csv")
	os.WriteFile(reg, []byte("instanceId,carrierUserId,packageId\ninst-a,user-1,pkg-1\ninst-b,user-2,pkg-2\ninst-c,user-3,pkg-3\n"), 0o644)
	if out, err := run(t, "registry", "import", reg, "--data-dir", dir, "--create"); err != nil {
		t.Fatalf("import: %q, %v", out, err)
	}
	out, err := run(t, "expire", "--instance", "inst-a", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "connect to Temporal at 127.0.0.1:3 ") {
		t.Fatalf("expire did not dial the recorded port: %q, %v", out, err)
	}
	if _, err := run(t, "schedule", "describe", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "127.0.0.1:3 ") {
		t.Fatalf("schedule describe did not dial the recorded port: %v", err)
	}
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:5")
	if out, err := run(t, "expire", "--instance", "inst-b", "--data-dir", dir); err != nil || !strings.Contains(out, "connect to Temporal at 127.0.0.1:5 ") {
		t.Fatalf("TEMPORAL_ADDRESS was not preferred: %q, %v", out, err)
	}
	if out, err := run(t, "expire", "--instance", "inst-c", "--data-dir", dir, "--temporal-address", "127.0.0.1:6"); err != nil || !strings.Contains(out, "connect to Temporal at 127.0.0.1:6 ") {
		t.Fatalf("--temporal-address was not preferred: %q, %v", out, err)
	}
}

// TestOperatorCommandsDialTheNamedNamespace: --namespace overrides TEMPORAL_NAMESPACE, which
// overrides the default namespace, for every operator command that dials Temporal.
func TestOperatorCommandsDialTheNamedNamespace(t *testing.T) {
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:3") // nothing listens: the error names what was dialled
	t.Setenv("TEMPORAL_NAMESPACE", "")
	dir := dataDir(t)
	if _, err := payloadcodec.EnsureDevKey(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "schedule", "describe", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "(namespace default;") {
		t.Fatalf("schedule describe without a namespace: %v", err)
	}
	t.Setenv("TEMPORAL_NAMESPACE", "from-env")
	if _, err := run(t, "schedule", "describe", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "(namespace from-env;") {
		t.Fatalf("TEMPORAL_NAMESPACE was not followed: %v", err)
	}
	for _, args := range [][]string{
		{"schedule", "describe"},
		{"schedule", "apply"},
		{"retry", "expire/koogallery/inst-a/current"},
		{"reconcile", "--cycle", "2020-01"},
	} {
		args = append(args, "--data-dir", dir, "--namespace", "ops-ns")
		if out, err := run(t, args...); err == nil || !strings.Contains(err.Error(), "connect to Temporal at 127.0.0.1:3 (namespace ops-ns;") {
			t.Errorf("%v did not dial --namespace: %q, %v", args, out, err)
		}
	}
	st, dir2 := storeWith(t, "inst-n")
	st.Close()
	if _, err := payloadcodec.EnsureDevKey(dir2); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, "expire", "--instance", "inst-n", "--data-dir", dir2, "--namespace", "ops-ns"); err != nil || !strings.Contains(out, "connect to Temporal at 127.0.0.1:3 (namespace ops-ns;") {
		t.Fatalf("expire did not dial --namespace: %q, %v", out, err)
	}
}

// TestStatusShowsTheWholeStallReason: the useful end of a stalled expiry's error (KooDrive's
// code and message) is shown; other rows are cut by characters, never inside one.
func TestStatusShowsTheWholeStallReason(t *testing.T) {
	st, dir := storeWith(t, "inst-s", "inst-r")
	reason := "KooDrive POST https://koodrive.example.com/koodrive/v1/carrier/packages/reservation-period/notify (requestId 6f1c2d9e-8b7a-4c3d-9e2f-1a2b3c4d5e6f) answered HTTP 200 after 14 attempts over 61m0s: code 10020001: not whitelisted"
	long := strings.Repeat("é", 200)
	for _, e := range []store.Expiration{
		{WorkflowID: "expire/koogallery/inst-s/current", Source: "koogallery", Subject: "inst-s", Period: "current", SubscriptionID: subID(t, st, "inst-s"), CarrierUserID: "u1", PackageID: "p1", State: store.StateStalled, LastError: reason},
		{WorkflowID: "expire/koogallery/inst-r/current", Source: "koogallery", Subject: "inst-r", Period: "current", SubscriptionID: subID(t, st, "inst-r"), CarrierUserID: "u2", PackageID: "p2", State: store.StateReserved, LastError: long},
	} {
		if _, err := st.RecordExpiration(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		if err := st.SetExpirationState(context.Background(), e.WorkflowID, e.State, e.LastError); err != nil {
			t.Fatal(err)
		}
	}
	out, err := run(t, "status", "--data-dir", dir)
	if err != nil || !strings.Contains(out, reason) {
		t.Fatalf("status cut the stall reason: %q, %v", out, err)
	}
	if !utf8.ValidString(out) || !strings.Contains(out, strings.Repeat("é", 160)+"…") || strings.Contains(out, strings.Repeat("é", 161)) {
		t.Fatalf("a long error was not cut at 160 characters: %q", out)
	}
	out, err = run(t, "status", "inst-s", "--data-dir", dir, "--temporal-address", "127.0.0.1:1")
	if err != nil || !strings.Contains(out, reason) {
		t.Fatalf("status of the instance cut the stall reason: %q, %v", out, err)
	}
	// Temporal does not answer: the stalled state is shown as kooflow's record, and said so.
	if !strings.HasPrefix(out, "WARNING: Temporal could not be asked") || !strings.Contains(out, "not confirmed live by Temporal") {
		t.Fatalf("status with Temporal unreachable does not warn: %q", out)
	}
	// Nothing of inst-r can still run: Temporal is not asked, nothing to warn about.
	if out, err := run(t, "status", "inst-r", "--data-dir", dir, "--temporal-address", "127.0.0.1:1"); err != nil || strings.Contains(out, "WARNING") {
		t.Fatalf("status of a reserved expiry: %q, %v", out, err)
	}
}

// TestStatusCountsEveryStateAndRehearsalsApart: test rehearsals are not counted as
// reserved, renewed and released are counted, and an unknown state or subject is an error.
func TestStatusCountsEveryStateAndRehearsalsApart(t *testing.T) {
	st, dir := storeWith(t, "inst-a")
	for _, e := range []store.Expiration{
		{WorkflowID: "expire/koogallery/inst-a/p1", Period: "p1", State: store.StateReserved},
		{WorkflowID: "expire/koogallery/inst-a/p2", Period: "p2", State: store.StateReserved, Test: true},
		{WorkflowID: "expire/koogallery/inst-a/p3", Period: "p3", State: store.StateRenewed},
		{WorkflowID: "expire/koogallery/inst-a/p4", Period: "p4", State: store.StateReleased},
	} {
		e.Source, e.Subject, e.SubscriptionID, e.CarrierUserID, e.PackageID = "koogallery", "inst-a", subID(t, st, "inst-a"), "u", "p"
		if _, err := st.RecordExpiration(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	out, err := run(t, "status", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "all expirations: conflict 0, accepted 0, freezing 0, notifying 0, stalled 0, terminated 0, reserved 1, renewed 1, released 1, superseded 0, cancelled 0") ||
		!strings.Contains(out, "not counted above): reserved 1") {
		t.Fatalf("status totals: %q, %v", out, err)
	}
	if out, err := run(t, "status", "--state", "renewed", "--data-dir", dir); err != nil || !strings.Contains(out, "inst-a/p3") || strings.Contains(out, "inst-a/p1") {
		t.Fatalf("status --state renewed: %q, %v", out, err)
	}
	if _, err := run(t, "status", "--state", "stuck", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), `unknown state "stuck": --state is one of conflict, accepted, freezing, notifying, stalled, terminated, reserved, renewed, released, superseded, cancelled`) {
		t.Fatalf("status --state stuck: %v", err)
	}
	if _, err := run(t, "status", "demo-9999", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "demo-9999 is not in the registry") {
		t.Fatalf("status of an unknown instance: %v", err)
	}
	if out, err := run(t, "status", "--help"); err != nil || !strings.Contains(out, "reserved, renewed, released") {
		t.Fatalf("--state help: %q, %v", out, err)
	}
}

// TestSendNamesAndLeaks: send's subcommands answer to both spellings, an unknown one is
// named as such, --valid-thru is checked before anything is sent, a down webhook is
// reported without the signed URL, and --data-dir help names its value type.
func TestSendNamesAndLeaks(t *testing.T) {
	t.Setenv("KOOGALLERY_KEY", "k-secret-for-test")
	t.Setenv("SMARTHUB_API_KEY", "s-secret-for-test")
	down := "http://127.0.0.1:1" // nothing listens
	for _, name := range []string{"koogallery-expire", "koogallery-expired"} {
		_, err := run(t, "send", name, "--instance", "demo-0001", "--webhook", down)
		if err == nil || !strings.Contains(err.Error(), "send to "+down+":") {
			t.Fatalf("send %s to a down webhook: %v", name, err)
		}
		if strings.Contains(err.Error(), "authToken") || strings.Contains(err.Error(), "demo-0001") {
			t.Fatalf("the signed URL was printed: %v", err)
		}
	}
	if _, err := run(t, "send", "koogallery-expird", "--instance", "demo-0001"); err == nil ||
		!strings.Contains(err.Error(), `unknown command "koogallery-expird" for "kooflow send"`) || !strings.Contains(err.Error(), "koogallery-expire") {
		t.Fatalf("unknown send subcommand: %v", err)
	}
	if _, err := run(t, "send", "smarthub-expired", "--iccid", "8986", "--package", "PK", "--valid-thru", "31/10/2026", "--webhook", down); err == nil ||
		!strings.Contains(err.Error(), "--valid-thru") || strings.Contains(err.Error(), "send to") {
		t.Fatalf("a malformed --valid-thru was not refused before sending: %v", err)
	}
	if _, err := run(t, "send", "smarthub-expired", "--iccid", "8986", "--package", "PK", "--valid-thru", "2026-10-31T00:00:00+0000", "--webhook", down); err == nil ||
		!strings.Contains(err.Error(), "send to "+down) {
		t.Fatalf("a good --valid-thru: %v", err)
	}
	for _, args := range [][]string{{"status", "--help"}, {"send", "smarthub-expired", "--help"}} {
		out, err := run(t, args...)
		if err != nil || !strings.Contains(out, "--data-dir string") || strings.Contains(out, "--data-dir kooflow") {
			t.Fatalf("%v: %q, %v", args, out, err)
		}
	}
	if out, _ := run(t, "send", "smarthub-expired", "--help"); !strings.Contains(out, "yyyy-MM-ddTHH:mm:ss±hhmm") {
		t.Fatalf("--valid-thru help has no format: %q", out)
	}
}

// startStack runs a whole kooflow dev stack (embedded Temporal, worker, store, KooDrive
// sandbox) on a data directory of its own, as `kooflow dev` does, for operator commands
// to be run against with --data-dir.
func startStack(t *testing.T) (*devapp.App, string) {
	t.Helper()
	t.Setenv("TEMPORAL_ADDRESS", "")
	t.Setenv("KOOFLOW_DB", "")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	app, err := devapp.Start(ctx, devapp.Options{
		DataDir: dir, UIPort: -1, WebhookAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0", SandboxAddr: "127.0.0.1:0",
		KooGalleryKey: "cli-test-key", KooDriveToken: "cli-test-token", KooDriveUser: "cli-test-user",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("start the dev stack: %v", err)
	}
	t.Cleanup(app.Stop)
	return app, dir
}

// TestReconcileRefusesACompletedCycleWithoutForce: a finished cycle is not reconciled a
// second time by accident — the command names the finished run and fails — unless --force
// is given; a running one is reported, never started twice; a cycle only the store still
// remembers (Temporal's retention passed) is refused as well.
func TestReconcileRefusesACompletedCycleWithoutForce(t *testing.T) {
	app, dir := startStack(t)
	ctx := context.Background()
	now := time.Now().UTC()
	cycle := contract.PreviousCycle(now)
	start, _, _ := contract.CycleBounds(cycle)
	if _, err := app.Store.UpsertSubscriptions(ctx, []store.Subscription{
		{InstanceID: "rc-1", CarrierUserID: "user-1", PackageID: "pkg-1", CarrierOrderID: "CO-1", CarrierOrderTime: "2026-01-15T08:00:00Z", ExpireTime: start.AddDate(0, 2, 0)},
	}); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "reconcile", "--cycle", cycle, "--wait", "--poll-interval", "1s", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "started reconcile/"+cycle) || !strings.Contains(out, "billing cycle "+cycle+": completed") {
		t.Fatalf("first reconciliation: %q, %v", out, err)
	}
	first, err := app.Store.Run(ctx, cycle)
	if err != nil || first.State != store.RunCompleted || first.BatchNo == "" {
		t.Fatalf("stored run %+v, %v", first, err)
	}
	firstRun, err := app.Client.DescribeWorkflowExecution(ctx, workflows.ReconciliationWorkflowID(cycle), "")
	if err != nil {
		t.Fatal(err)
	}

	out, err = run(t, "reconcile", "--cycle", cycle, "--wait", "--data-dir", dir)
	var done *starter.ReconciliationDoneError
	if !errors.As(err, &done) || strings.Contains(out, "started") {
		t.Fatalf("second reconciliation without --force: %q, %v", out, err)
	}
	for _, want := range []string{"billing cycle " + cycle + " was already reconciled", "workflow reconcile/" + cycle,
		"run " + firstRun.GetWorkflowExecutionInfo().GetExecution().GetRunId(), "batch " + first.BatchNo, "report " + first.ReportPath, "--force"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
	if again, err := app.Client.DescribeWorkflowExecution(ctx, workflows.ReconciliationWorkflowID(cycle), ""); err != nil ||
		again.GetWorkflowExecutionInfo().GetExecution().GetRunId() != firstRun.GetWorkflowExecutionInfo().GetExecution().GetRunId() {
		t.Fatalf("a second run was started: %v, %v", again, err)
	}

	out, err = run(t, "reconcile", "--cycle", cycle, "--force", "--wait", "--poll-interval", "1s", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "again (--force)") || !strings.Contains(out, "billing cycle "+cycle+": completed") || !strings.Contains(out, "batch:     "+first.BatchNo) {
		t.Fatalf("--force: %q, %v", out, err)
	}
	if n := len(app.Sandbox.Uploads()); n != 1 {
		t.Fatalf("the unchanged statement was uploaded %d times", n)
	}
	// The --force run has files of its own; the first run's are where they were.
	out, err = run(t, "reconcile", "list", "--cycle", cycle, "-o", "json", "--data-dir", dir)
	var runs []reconcileRunJSON
	if err != nil || json.Unmarshal([]byte(out), &runs) != nil || len(runs) != 2 {
		t.Fatalf("reconcile list after --force: %q, %v", out, err)
	}
	if runs[1].StatementPath != first.StatementPath || runs[1].ReportPath != first.ReportPath || runs[0].StatementPath == first.StatementPath ||
		runs[0].ReportPath == first.ReportPath || runs[0].State != store.RunCompleted || runs[0].RunID == runs[1].RunID {
		t.Fatalf("runs after --force = %+v", runs)
	}
	for _, path := range []string{runs[0].StatementPath, runs[0].ReportPath, first.StatementPath, first.ReportPath} {
		if _, err := os.Stat(path); err != nil {
			t.Errorf("a run's file is gone: %v", err)
		}
	}
	if out, err := run(t, "reconcile", "show", "--cycle", cycle, "--data-dir", dir); err != nil || !strings.Contains(out, "billing cycle "+cycle+": completed (as of ") {
		t.Fatalf("reconcile show: %q, %v", out, err)
	}

	// A cycle still running: reported as running, not started again, --force or not.
	older := contract.PreviousCycle(start)
	checked := make(chan struct{})
	app.Sandbox.SetProcessingWhile(func() bool {
		select {
		case <-checked:
			return false
		default:
			return true
		}
	})
	out, err = run(t, "reconcile", "--cycle", older, "--poll-interval", "1s", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "started reconcile/"+older) {
		t.Fatalf("start %s: %q, %v", older, out, err)
	}
	for _, args := range [][]string{{}, {"--force"}} {
		out, err = run(t, append([]string{"reconcile", "--cycle", older, "--data-dir", dir}, args...)...)
		if err != nil || !strings.Contains(out, "reconcile/"+older+" is already running") || !strings.Contains(out, "not started again") {
			t.Fatalf("reconcile %v of a running cycle: %q, %v", args, out, err)
		}
	}
	close(checked)
	out, err = run(t, "reconcile", "--cycle", older, "--wait", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "already running") || !strings.Contains(out, "billing cycle "+older+": completed") {
		t.Fatalf("--wait on the running reconciliation: %q, %v", out, err)
	}

	// Temporal no longer knows the cycle, kooflow's store does.
	gone := contract.PreviousCycle(mustCycleStart(t, older))
	if err := app.Store.SaveRun(ctx, store.ReconciliationRun{Cycle: gone, WorkflowID: workflows.ReconciliationWorkflowID(gone), State: store.RunCompleted,
		BatchNo: "BATCH-OLD", ReportPath: "/reports/discrepancies-" + gone + ".xlsx", Counts: map[string]int{"2": 4}}); err != nil {
		t.Fatal(err)
	}
	_, err = run(t, "reconcile", "--cycle", gone, "--data-dir", dir)
	if !errors.As(err, &done) || !strings.Contains(err.Error(), "batch BATCH-OLD, 4 discrepancies, report /reports/discrepancies-"+gone+".xlsx") {
		t.Fatalf("a cycle the store remembers as completed: %v", err)
	}
}

func mustCycleStart(t *testing.T, cycle string) time.Time {
	t.Helper()
	start, _, err := contract.CycleBounds(cycle)
	if err != nil {
		t.Fatal(err)
	}
	return start
}

// TestScheduleDescribeShowsSpecStateAndRuns: schedule describe shows the calendar, time
// zone, overlap policy, whether it is paused (and why), the next run times with the cycle
// each reconciles, and the recent runs with their outcome.
func TestScheduleDescribeShowsSpecStateAndRuns(t *testing.T) {
	app, dir := startStack(t)
	ctx := context.Background()
	out, err := run(t, "schedule", "describe", "--data-dir", dir)
	if err != nil {
		t.Fatalf("describe: %q, %v", out, err)
	}
	t.Logf("before any run:\n%s", out)
	for _, want := range []string{"schedule kooflow-monthly-reconciliation", "time zone:  UTC", "overlap:    skip; catch-up window 168h0m0s",
		"paused:     no", "recent runs (oldest first):\n    none yet"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe does not say %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, `calendar:   cron "0 2 1 * *"`) {
		t.Errorf("describe does not show the calendar:\n%s", out)
	}
	desc, err := starter.DescribeSchedule(ctx, app.Client)
	if err != nil || len(desc.Info.NextActionTimes) < nextRunsShown {
		t.Fatalf("schedule: %+v, %v", desc, err)
	}
	for _, next := range desc.Info.NextActionTimes[:nextRunsShown] {
		line := "    " + next.UTC().Format(time.RFC3339) + "  billing cycle " + contract.PreviousCycle(next.UTC()) + "\n"
		if !strings.Contains(out, line) {
			t.Errorf("describe does not list the next run %q:\n%s", line, out)
		}
	}

	cycle := contract.PreviousCycle(time.Now().UTC())
	if _, err := app.Store.UpsertSubscriptions(ctx, []store.Subscription{{InstanceID: "sd-1", CarrierUserID: "user-1", PackageID: "pkg-1",
		CarrierOrderID: "CO-1", CarrierOrderTime: "2026-01-15T08:00:00Z", ExpireTime: mustCycleStart(t, cycle).AddDate(0, 2, 0)}}); err != nil {
		t.Fatal(err)
	}
	handle := app.Client.ScheduleClient().GetHandle(ctx, starter.ScheduleID)
	if err := handle.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		t.Fatal(err)
	}
	want := "completed: billing cycle " + cycle + ", batch "
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(out, want) {
		if time.Now().After(deadline) {
			t.Fatalf("describe never showed the triggered run completed:\n%s", out)
		}
		time.Sleep(250 * time.Millisecond)
		if out, err = run(t, "schedule", "describe", "--data-dir", dir); err != nil {
			t.Fatalf("describe: %q, %v", out, err)
		}
	}
	stored, err := app.Store.Run(ctx, cycle)
	if err != nil || !strings.Contains(out, want+stored.BatchNo+", 1 discrepancy") || !strings.Contains(out, "workflow reconcile/scheduled") ||
		!strings.Contains(out, "runs:       1 started") {
		t.Fatalf("the completed run (stored %+v, %v):\n%s", stored, err, out)
	}

	if err := handle.Pause(ctx, client.SchedulePauseOptions{Note: "KooDrive maintenance until the 3rd"}); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "schedule", "describe", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "paused:     yes (KooDrive maintenance until the 3rd)") {
		t.Fatalf("describe of the paused schedule: %q, %v", out, err)
	}
	t.Logf("after a run, paused:\n%s", out)

	// Another calendar and zone: describe shows what was applied, next runs in that zone.
	if out, err := run(t, "schedule", "apply", "--cron", "30 4 2,15 */3 *", "--timezone", "Europe/Paris", "--data-dir", dir); err != nil {
		t.Fatalf("apply: %q, %v", out, err)
	}
	out, err = run(t, "schedule", "describe", "--data-dir", dir)
	if err != nil || !strings.Contains(out, `calendar:   cron "30 4 2,15 1-12/3 *"`) || !strings.Contains(out, "time zone:  Europe/Paris") ||
		!strings.Contains(out, ":30:00+0") {
		t.Fatalf("describe after apply: %q, %v", out, err)
	}
	t.Logf("another calendar:\n%s", out)
}
