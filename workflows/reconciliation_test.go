package workflows_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/koodrive/sandbox"
	"github.com/kooflow/kooflow/koodrive/sandbox/sandboxtest"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
	kooworker "github.com/kooflow/kooflow/worker"
	"github.com/kooflow/kooflow/workflows"
)

// reconFixture: real activities, a real SQLite store and the sandbox over HTTP, with a
// registry of 10 subscriptions and a KooDrive side that differs from it in 3 ways.
type reconFixture struct {
	env    *testsuite.TestWorkflowEnvironment
	store  *store.Store
	kd     *sandbox.Sandbox
	kdTest *sandboxtest.KooDrive
	dir    string
	cycle  string
}

func newReconFixture(t *testing.T, st *store.Store, kd *sandboxtest.KooDrive, dir string) *reconFixture {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	kooworker.Register(env, kooworker.Dependencies{Reconciliation: &activities.Reconciliation{Store: st, KooDrive: kd.Client, Dir: dir}})
	return &reconFixture{env: env, store: st, kd: kd.Sandbox, kdTest: kd, dir: dir, cycle: contract.PreviousCycle(time.Now().UTC())}
}

func seededReconFixture(t *testing.T) *reconFixture {
	t.Helper()
	st := storetest.OpenSQLite(t)
	var subs []store.Subscription
	var kdSide []sandbox.KooDriveRecord
	for i := 0; i < 10; i++ {
		id := fmt.Sprintf("%02d", i)
		subs = append(subs, store.Subscription{InstanceID: "inst-" + id, CarrierUserID: "user-" + id, PackageID: "pkg-A",
			CarrierOrderID: "CO-" + id, CarrierOrderTime: "2026-01-15T08:00:00Z"})
		switch i {
		case 0: // KooDrive lacks it: diffType 2
		case 1: // different benefit: diffType 3
			kdSide = append(kdSide, sandbox.KooDriveRecord{CarrierOrderID: "CO-" + id, CarrierUserID: "user-" + id, PackageID: "pkg-B"})
		default:
			kdSide = append(kdSide, sandbox.KooDriveRecord{CarrierOrderID: "CO-" + id, CarrierUserID: "user-" + id, PackageID: "pkg-A"})
		}
	}
	// Ordered after any past cycle: not in the statement, so KooDrive's copy is diffType 1.
	subs = append(subs, store.Subscription{InstanceID: "inst-future", CarrierUserID: "user-f", PackageID: "pkg-A", CarrierOrderID: "CO-future", CarrierOrderTime: "2099-01-01T00:00:00Z"})
	kdSide = append(kdSide, sandbox.KooDriveRecord{CarrierOrderID: "CO-future", CarrierUserID: "user-f", PackageID: "pkg-A"})
	if _, err := st.UpsertSubscriptions(context.Background(), subs); err != nil {
		t.Fatal(err)
	}
	kd := sandboxtest.Start(t)
	kd.Sandbox.SeedKooDriveSide(kdSide)
	return newReconFixture(t, st, kd, t.TempDir())
}

func (f *reconFixture) run(in contract.ReconciliationInput) (contract.ReconciliationResult, error) {
	if in.Cycle == "" {
		in.Cycle = f.cycle
	}
	f.env.ExecuteWorkflow(workflows.ReconciliationWorkflow, in)
	var res contract.ReconciliationResult
	if err := f.env.GetWorkflowError(); err != nil {
		return res, err
	}
	return res, f.env.GetWorkflowResult(&res)
}

func TestReconciliationHappyPath(t *testing.T) {
	f := seededReconFixture(t)
	res, err := f.run(contract.ReconciliationInput{})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatementRows != 10 || !res.Uploaded || res.Total != 3 || res.Counts["1"] != 1 || res.Counts["2"] != 1 || res.Counts["3"] != 1 {
		t.Fatalf("result = %+v", res)
	}
	if !strings.HasSuffix(res.ReportPath, "discrepancies-"+f.cycle+".xlsx") || !strings.HasSuffix(res.StatementPath, "statement-"+f.cycle+".xlsx") {
		t.Fatalf("paths = %s, %s", res.StatementPath, res.ReportPath)
	}
	up := f.kd.Uploads()
	if len(up) != 1 || up[0].Filename != f.cycle+".xlsx" || up[0].Rows != 10 {
		t.Fatalf("uploads = %+v", up)
	}
	run, err := f.store.Run(context.Background(), f.cycle)
	if err != nil || run.State != store.RunCompleted || run.BatchNo != res.BatchNo || run.Counts["3"] != 1 {
		t.Fatalf("run = %+v, %v", run, err)
	}
}

func TestReconciliationWaitsThreeHoursForResults(t *testing.T) {
	f := seededReconFixture(t)
	start := f.env.Now()
	f.kd.SetProcessingWhile(func() bool { return f.env.Now().Before(start.Add(3 * time.Hour)) })
	res, err := f.run(contract.ReconciliationInput{})
	if err != nil {
		t.Fatal(err)
	}
	if waited := f.env.Now().Sub(start); waited < 3*time.Hour || waited > 3*time.Hour+5*time.Minute {
		t.Fatalf("finished after %s, want just over 3h with 1-minute polls", waited)
	}
	if res.Total != 3 {
		t.Fatalf("result = %+v", res)
	}
}

func TestReconciliationStopsWhenServiceFrozen(t *testing.T) {
	f := seededReconFixture(t)
	f.kd.SetServiceFrozen(true)
	_, err := f.run(contract.ReconciliationInput{})
	if err == nil || !strings.Contains(err.Error(), "frozen") {
		t.Fatalf("err = %v", err)
	}
	if len(f.kd.Uploads()) != 0 {
		t.Fatal("a statement was uploaded for a frozen tenant")
	}
	run, _ := f.store.Run(context.Background(), f.cycle)
	if run.State != store.RunFailed || !strings.Contains(run.Error, "frozen") {
		t.Fatalf("run = %+v", run)
	}
}

func TestReconciliationRetriesATransientUploadFailure(t *testing.T) {
	f := seededReconFixture(t)
	f.kd.FailNextOn(koodrive.DataVerifyPath, 2, 502)
	res, err := f.run(contract.ReconciliationInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.kd.Uploads()) != 1 || res.Total != 3 {
		t.Fatalf("uploads %d, result %+v", len(f.kd.Uploads()), res)
	}
}

func TestReconciliationDeadlineFailsClearly(t *testing.T) {
	f := seededReconFixture(t)
	f.kd.SetProcessingWhile(func() bool { return true })
	start := f.env.Now()
	_, err := f.run(contract.ReconciliationInput{})
	if err == nil || !strings.Contains(err.Error(), "did not finish checking") || !strings.Contains(err.Error(), "24h0m0s") {
		t.Fatalf("err = %v", err)
	}
	if elapsed := f.env.Now().Sub(start); elapsed < 23*time.Hour || elapsed > 25*time.Hour {
		t.Fatalf("gave up after %s", elapsed)
	}
}

func TestReconciliationRerunDoesNotUploadAgain(t *testing.T) {
	first := seededReconFixture(t)
	if _, err := first.run(contract.ReconciliationInput{}); err != nil {
		t.Fatal(err)
	}
	second := newReconFixture(t, first.store, first.kdTest, first.dir)
	res, err := second.run(contract.ReconciliationInput{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Uploaded || len(first.kd.Uploads()) != 1 || res.Total != 3 {
		t.Fatalf("re-run: %+v, uploads %d", res, len(first.kd.Uploads()))
	}
}

func TestReconciliationRefusesCurrentCycle(t *testing.T) {
	f := seededReconFixture(t)
	_, err := f.run(contract.ReconciliationInput{Cycle: time.Now().UTC().Format("2006-01")})
	if err == nil || !strings.Contains(err.Error(), "not over yet") {
		t.Fatalf("err = %v", err)
	}
}
