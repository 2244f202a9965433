package activities_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/statement"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
)

// runFiles is what one run of the harness below wrote.
type runFiles struct {
	Statement contract.StatementInfo
	Report    contract.ReportInfo
}

// TestAnotherRunOfACycleKeepsTheEarlierRunsFiles: a second run of a cycle (as
// `kooflow reconcile --force` starts) writes its statement and report in a folder of its
// own, named by its run ID, and leaves the first run's files as they were, although the
// registry changed in between. The SDK's test environment gives every run of a child
// workflow a run ID of its own, so the two runs are children of one harness workflow.
func TestAnotherRunOfACycleKeepsTheEarlierRunsFiles(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			const cycle = "2026-10"
			st := storetest.Open(t, b.DSN(t))
			dir := t.TempDir()
			a := &activities.Reconciliation{Store: st, Dir: dir}
			if _, err := st.UpsertSubscriptions(ctx, []store.Subscription{
				{InstanceID: "i1", CarrierUserID: "u1", PackageID: "pkg-1", CarrierOrderID: "CO-1", CarrierOrderTime: "2026-01-15"},
			}); err != nil {
				t.Fatal(err)
			}
			if err := st.SaveDiscrepancies(ctx, []store.Discrepancy{
				{BatchNo: "B1", Cycle: cycle, DiffType: "2", CarrierOrderID: "CO-1", CarrierUserID: "u1", Raw: `{"carrierOrderId":"CO-1"}`},
			}); err != nil {
				t.Fatal(err)
			}

			opts := workflow.ActivityOptions{StartToCloseTimeout: time.Minute}
			oneRun := func(ctx workflow.Context) (runFiles, error) {
				ctx = workflow.WithActivityOptions(ctx, opts)
				var files runFiles
				if err := workflow.ExecuteActivity(ctx, a.BuildStatement, cycle).Get(ctx, &files.Statement); err != nil {
					return files, err
				}
				err := workflow.ExecuteActivity(ctx, a.WriteDiscrepancyReport, cycle, "B1").Get(ctx, &files.Report)
				return files, err
			}
			twoRuns := func(ctx workflow.Context) ([]runFiles, error) {
				var runs []runFiles
				for i := range 2 {
					if i == 1 {
						// Between the runs the registry grows by a subscription.
						if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), "AddSubscription").Get(ctx, nil); err != nil {
							return nil, err
						}
					}
					child := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: "reconcile/" + cycle})
					var files runFiles
					if err := workflow.ExecuteChildWorkflow(child, "OneRun").Get(ctx, &files); err != nil {
						return nil, err
					}
					runs = append(runs, files)
				}
				return runs, nil
			}
			var suite testsuite.WorkflowTestSuite
			env := suite.NewTestWorkflowEnvironment()
			env.RegisterActivity(a)
			env.RegisterActivityWithOptions(func(ctx context.Context) error {
				_, err := st.UpsertSubscriptions(ctx, []store.Subscription{
					{InstanceID: "i2", CarrierUserID: "u2", PackageID: "pkg-2", CarrierOrderID: "CO-2", CarrierOrderTime: "2026-01-15"},
				})
				return err
			}, activity.RegisterOptions{Name: "AddSubscription"})
			env.RegisterWorkflowWithOptions(oneRun, workflow.RegisterOptions{Name: "OneRun"})
			env.RegisterWorkflowWithOptions(twoRuns, workflow.RegisterOptions{Name: "TwoRuns"})
			env.ExecuteWorkflow("TwoRuns")
			if err := env.GetWorkflowError(); err != nil {
				t.Fatal(err)
			}
			var runs []runFiles
			if err := env.GetWorkflowResult(&runs); err != nil || len(runs) != 2 {
				t.Fatalf("runs = %+v, %v", runs, err)
			}
			first, second := runs[0], runs[1]
			for _, r := range runs {
				if filepath.Dir(r.Statement.Path) != filepath.Dir(r.Report.Path) || filepath.Dir(filepath.Dir(r.Statement.Path)) != filepath.Join(dir, cycle) ||
					filepath.Base(r.Statement.Path) != "statement-"+cycle+".xlsx" || filepath.Base(r.Report.Path) != "discrepancies-"+cycle+".xlsx" {
					t.Fatalf("a run wrote %s and %s, want both in one folder of its own under %s", r.Statement.Path, r.Report.Path, filepath.Join(dir, cycle))
				}
			}
			if first.Statement.Path == second.Statement.Path || first.Report.Path == second.Report.Path {
				t.Fatalf("the second run wrote over the first: %+v and %+v", first, second)
			}
			for path, want := range map[string]int{first.Statement.Path: 1, second.Statement.Path: 2} {
				rows, err := statement.ReadRows(path)
				if err != nil || len(rows) != want+1 {
					t.Errorf("%s has %d rows, want a header and %d: %v", path, len(rows), want, err)
				}
			}
			if first.Statement.SHA256 == second.Statement.SHA256 {
				t.Error("the two statements hash the same although the registry changed")
			}
			for _, path := range []string{first.Report.Path, second.Report.Path} {
				if _, err := os.Stat(path); err != nil {
					t.Errorf("report %s: %v", path, err)
				}
			}
		})
	}
}

// TestARetriedActivityRewritesItsOwnRunsFile: an activity retried within one run writes
// the same path again (its own run's file, replaced whole), never a file of its own.
func TestARetriedActivityRewritesItsOwnRunsFile(t *testing.T) {
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	dir := t.TempDir()
	a := &activities.Reconciliation{Store: st, Dir: dir}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	build := func() contract.StatementInfo {
		t.Helper()
		v, err := env.ExecuteActivity(a.BuildStatement, "2026-10")
		if err != nil {
			t.Fatal(err)
		}
		var info contract.StatementInfo
		if err := v.Get(&info); err != nil {
			t.Fatal(err)
		}
		return info
	}
	first := build()
	if _, err := st.UpsertSubscriptions(ctx, []store.Subscription{{InstanceID: "i1", CarrierUserID: "u1", PackageID: "p1", CarrierOrderID: "CO-1", CarrierOrderTime: "2026-01-15"}}); err != nil {
		t.Fatal(err)
	}
	again := build()
	if again.Path != first.Path || again.Path != filepath.Join(dir, "2026-10", testRunID, "statement-2026-10.xlsx") {
		t.Fatalf("the retried attempt wrote %s, the first %s", again.Path, first.Path)
	}
	if rows, err := statement.ReadRows(again.Path); err != nil || len(rows) != 2 || again.Rows != 1 {
		t.Fatalf("the rewritten statement has %d rows (%d counted), %v", len(rows), again.Rows, err)
	}
	entries, err := os.ReadDir(filepath.Dir(again.Path))
	if err != nil || len(entries) != 1 {
		t.Fatalf("the run's folder holds %v, %v; want the statement alone", entries, err)
	}
}

// TestDiscrepancyReportHasThePackageColumn: the report's Discrepancies sheet has a
// packageId column, filled from the registry by carrier order, empty for an order the
// registry does not know.
func TestDiscrepancyReportHasThePackageColumn(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := storetest.Open(t, b.DSN(t))
			if _, err := st.UpsertSubscriptions(ctx, []store.Subscription{
				{InstanceID: "i1", CarrierUserID: "u1", PackageID: "pkg-50GB", CarrierOrderID: "CO-1"},
			}); err != nil {
				t.Fatal(err)
			}
			if err := st.SaveDiscrepancies(ctx, []store.Discrepancy{
				{BatchNo: "B1", Cycle: "2026-10", Seq: 0, DiffType: "1", CarrierOrderID: "CO-KD", CarrierUserID: "u9", KdUserID: "kd-9", Raw: `{"carrierOrderId":"CO-KD"}`},
				{BatchNo: "B1", Cycle: "2026-10", Seq: 1, DiffType: "2", CarrierOrderID: "CO-1", CarrierUserID: "u1", Raw: `{"carrierOrderId":"CO-1"}`},
			}); err != nil {
				t.Fatal(err)
			}
			a := &activities.Reconciliation{Store: st, Dir: t.TempDir()}
			var suite testsuite.WorkflowTestSuite
			env := suite.NewTestActivityEnvironment()
			env.RegisterActivity(a)
			v, err := env.ExecuteActivity(a.WriteDiscrepancyReport, "2026-10", "B1")
			if err != nil {
				t.Fatal(err)
			}
			var info contract.ReportInfo
			if err := v.Get(&info); err != nil {
				t.Fatal(err)
			}
			book, err := excelize.OpenFile(info.Path)
			if err != nil {
				t.Fatal(err)
			}
			defer book.Close()
			rows, err := book.GetRows("Discrepancies")
			if err != nil || len(rows) != 3 {
				t.Fatalf("rows = %v, %v", rows, err)
			}
			if strings.Join(rows[0], ",") != strings.Join(statement.ReportColumns, ",") {
				t.Fatalf("header = %v, want %v", rows[0], statement.ReportColumns)
			}
			col := -1
			for i, c := range rows[0] {
				if c == "packageId" {
					col = i
				}
			}
			if col < 0 {
				t.Fatalf("no packageId column in %v", rows[0])
			}
			cell := func(row []string) string {
				if col < len(row) {
					return row[col]
				}
				return ""
			}
			if rows[1][1] != "CO-KD" || cell(rows[1]) != "" || rows[2][1] != "CO-1" || cell(rows[2]) != "pkg-50GB" || rows[2][len(rows[2])-1] != `{"carrierOrderId":"CO-1"}` {
				t.Fatalf("rows = %v", rows)
			}
		})
	}
}
