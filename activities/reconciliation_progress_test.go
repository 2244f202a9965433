package activities_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.temporal.io/sdk/testsuite"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/koodrive/sandbox"
	"github.com/kooflow/kooflow/koodrive/sandbox/sandboxtest"
	"github.com/kooflow/kooflow/metrics"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
)

// TestFetchDiscrepanciesResumesFromItsHeartbeat: a retried FetchDiscrepancies attempt
// starts at the cursor its predecessor heartbeated, so the pages already stored are
// neither fetched from KooDrive nor stored again, and the result still counts every page.
func TestFetchDiscrepanciesResumesFromItsHeartbeat(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			const total = 2*koodrive.MaxDiffPageSize + 500 // three pages
			st := storetest.Open(t, b.DSN(t))
			kd := sandboxtest.Start(t)
			// KooDrive knows orders the (empty) statement lacks: each is a diffType 1.
			kdSide := make([]sandbox.KooDriveRecord, total)
			for i := range kdSide {
				kdSide[i] = sandbox.KooDriveRecord{CarrierOrderID: fmt.Sprintf("CO-%05d", i), CarrierUserID: "u", PackageID: "p"}
			}
			kd.Sandbox.SeedKooDriveSide(kdSide)
			a := &activities.Reconciliation{Store: st, KooDrive: kd.Client}
			var suite testsuite.WorkflowTestSuite
			env := suite.NewTestActivityEnvironment()
			env.RegisterActivity(a)
			const cycle = "2026-10"
			info, _ := buildStatement(t, st, cycle)
			v, err := env.ExecuteActivity(a.UploadStatement, cycle, info)
			if err != nil {
				t.Fatal(err)
			}
			var up contract.UploadResult
			if err := v.Get(&up); err != nil {
				t.Fatal(err)
			}

			// The first attempt stored page one and heartbeated the cursor of page two.
			first, err := kd.Client.GetDiffList(ctx, up.BatchNo, koodrive.MaxDiffPageSize, "")
			if err != nil || first.NextPageCursor == "" {
				t.Fatalf("first page: %+v, %v", first, err)
			}
			env.SetHeartbeatDetails(contract.FetchProgress{Cursor: first.NextPageCursor, Fetched: len(first.DiffList), Pages: 1})
			callsBefore := kd.Sandbox.Calls()

			v, err = env.ExecuteActivity(a.FetchDiscrepancies, cycle, up.BatchNo)
			if err != nil {
				t.Fatal(err)
			}
			var res contract.FetchResult
			if err := v.Get(&res); err != nil {
				t.Fatal(err)
			}
			if calls := kd.Sandbox.Calls() - callsBefore; calls != 2 {
				t.Fatalf("the resumed attempt called diff/getList %d times, want 2 (pages two and three only)", calls)
			}
			if res.Total != total || res.Pages != 3 {
				t.Fatalf("result = %+v, want total %d over 3 pages", res, total)
			}
			var seqs []int
			if err := st.EachDiscrepancy(ctx, up.BatchNo, func(d store.Discrepancy) error {
				seqs = append(seqs, d.Seq)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			stored := total - koodrive.MaxDiffPageSize
			if len(seqs) != stored || seqs[0] != koodrive.MaxDiffPageSize || seqs[len(seqs)-1] != total-1 {
				t.Fatalf("stored %d discrepancies (seq %v…%v), want %d numbered from %d", len(seqs), seqs[:min(1, len(seqs))], seqs[max(0, len(seqs)-1):], stored, koodrive.MaxDiffPageSize)
			}
			if res.Counts["1"] != stored {
				t.Fatalf("counts = %v, want %d of diffType 1 (what this store holds)", res.Counts, stored)
			}
		})
	}
}

// TestSaveReconciliationRunMapsProgressToTheRunRow: every field of the workflow's
// RunProgress lands in the store's run row under the running workflow's ID, and a finished
// run is counted once in the metrics.
func TestSaveReconciliationRunMapsProgressToTheRunRow(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := storetest.Open(t, b.DSN(t))
			m := metrics.New()
			a := &activities.Reconciliation{Store: st, Metrics: m}
			var suite testsuite.WorkflowTestSuite
			env := suite.NewTestActivityEnvironment()
			env.RegisterActivity(a)
			progress := []contract.RunProgress{
				{Cycle: "2026-10", State: contract.RunBuilding},
				{Cycle: "2026-10", State: contract.RunCompleted, StatementPath: "/data/2026-10/statement-2026-10.xlsx", StatementRows: 12,
					StatementSHA256: "ab12", BatchNo: "B-7", ReportPath: "/data/2026-10/discrepancies-2026-10.xlsx",
					Counts: map[string]int{"1": 2, "3": 1}, Error: "an earlier attempt's error"},
			}
			for _, p := range progress {
				if _, err := env.ExecuteActivity(a.SaveReconciliationRun, p); err != nil {
					t.Fatal(err)
				}
			}
			run, err := st.Run(context.Background(), "2026-10")
			if err != nil {
				t.Fatal(err)
			}
			want := progress[1]
			if run.WorkflowID != testWorkflowID || run.RunID != testRunID || run.State != want.State || run.StatementPath != want.StatementPath ||
				run.StatementRows != want.StatementRows || run.StatementSHA256 != want.StatementSHA256 || run.BatchNo != want.BatchNo ||
				run.ReportPath != want.ReportPath || run.Error != want.Error || len(run.Counts) != 2 || run.Counts["1"] != 2 || run.Counts["3"] != 1 {
				t.Fatalf("run row = %+v, want %+v under workflow %s, run %s", run, want, testWorkflowID, testRunID)
			}
			if runs, err := st.Runs(context.Background(), store.RunFilter{}); err != nil || len(runs) != 1 {
				t.Fatalf("the run's saves made %d rows, %v; want one", len(runs), err)
			}
			if got := testutil.ToFloat64(m.ReconciliationRuns.WithLabelValues("completed")); got != 1 {
				t.Fatalf(`reconciliation runs{state="completed"} = %v, want 1`, got)
			}
		})
	}
}
