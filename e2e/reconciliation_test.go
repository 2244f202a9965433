package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/koodrive/sandbox"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/statement"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/workflows"
)

// TestReconciliationEndToEnd reconciles a registry of 5,030 subscriptions with a KooDrive
// side that differs in known ways, then runs the same cycle again from the schedule.
func TestReconciliationEndToEnd(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cycle := contract.PreviousCycle(time.Now().UTC())
	cycleStart, _, _ := contract.CycleBounds(cycle)

	const active = 5000
	var subs []store.Subscription
	var kdSide []sandbox.KooDriveRecord
	want := map[string]string{} // carrierOrderId -> expected diffType
	for i := 0; i < active; i++ {
		id := fmt.Sprintf("%05d", i)
		subs = append(subs, store.Subscription{InstanceID: "inst-" + id, CarrierUserID: "user-" + id, PackageID: "pkg-50GB",
			CarrierOrderID: "CO-" + id, CarrierOrderTime: "2026-01-15T08:00:00Z", ExpireTime: cycleStart.AddDate(0, 2, 0)})
		switch {
		case i < 900: // KooDrive has no record: diffType 2
			want["CO-"+id] = "2"
		case i < 1500: // KooDrive grants another package: diffType 3
			want["CO-"+id] = "3"
			kdSide = append(kdSide, sandbox.KooDriveRecord{CarrierOrderID: "CO-" + id, CarrierUserID: "user-" + id, PackageID: "pkg-200GB", KdOrderID: "KD-" + id})
		default:
			kdSide = append(kdSide, sandbox.KooDriveRecord{CarrierOrderID: "CO-" + id, CarrierUserID: "user-" + id, PackageID: "pkg-50GB", KdOrderID: "KD-" + id})
		}
	}
	for i := 0; i < 30; i++ { // expired before the cycle: not in the statement
		id := fmt.Sprintf("old-%02d", i)
		subs = append(subs, store.Subscription{InstanceID: "inst-" + id, CarrierUserID: "user-" + id, PackageID: "pkg-50GB",
			CarrierOrderID: "CO-" + id, CarrierOrderTime: "2025-01-15T08:00:00Z", ExpireTime: cycleStart.AddDate(0, -1, 0)})
	}
	for i := 0; i < 700; i++ { // only KooDrive has them: diffType 1
		id := fmt.Sprintf("kd-%03d", i)
		want["CO-"+id] = "1"
		kdSide = append(kdSide, sandbox.KooDriveRecord{CarrierOrderID: "CO-" + id, CarrierUserID: "user-" + id, PackageID: "pkg-50GB", KdOrderID: "KD-" + id})
	}
	e.importSubscriptions(subs...)
	e.kd.SeedKooDriveSide(kdSide)
	e.kd.SetProcessingPolls(2)

	run, err := e.app.Starter.StartReconciliation(ctx, contract.ReconciliationInput{Cycle: cycle, PollInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var res contract.ReconciliationResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("reconciliation: %v", err)
	}
	if res.StatementRows != active || res.Total != len(want) || !res.Uploaded {
		t.Fatalf("result = %+v, want %d rows and %d discrepancies", res, active, len(want))
	}
	e.recordHistory(workflows.ReconciliationWorkflowID(cycle), "reconciliation")
	if res.Counts["1"] != 700 || res.Counts["2"] != 900 || res.Counts["3"] != 600 {
		t.Fatalf("counts = %v", res.Counts)
	}

	got := map[string]string{}
	var raws int
	err = e.app.Store.EachDiscrepancy(ctx, res.BatchNo, func(d store.Discrepancy) error {
		if _, dup := got[d.CarrierOrderID]; dup {
			t.Errorf("discrepancy for %s stored twice", d.CarrierOrderID)
		}
		got[d.CarrierOrderID] = d.DiffType
		if len(d.Raw) > 0 && strings.Contains(d.Raw, `"kdPackageId"`) {
			raws++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || raws != len(want) {
		t.Fatalf("stored %d discrepancies (%d with the unknown field kept), want %d", len(got), raws, len(want))
	}
	for id, typ := range want {
		if got[id] != typ {
			t.Fatalf("discrepancy %s: diffType %q, want %q", id, got[id], typ)
		}
	}

	assertStatement(t, res.StatementPath, active)
	report, err := excelize.OpenFile(res.ReportPath)
	if err != nil {
		t.Fatal(err)
	}
	summary, _ := report.GetRows("Summary")
	report.Close()
	if len(summary) != 5 || summary[1][1] != "700" || summary[4][1] != "2200" {
		t.Fatalf("report summary = %v", summary)
	}

	// The schedule exists, and triggering it runs the previous month's cycle again —
	// reusing the batch instead of uploading the same statement twice.
	desc, err := starter.DescribeSchedule(ctx, e.app.Client)
	if err != nil || len(desc.Info.NextActionTimes) == 0 {
		t.Fatalf("schedule = %+v, %v", desc, err)
	}
	for _, next := range desc.Info.NextActionTimes {
		if next := next.UTC(); next.Day() != 1 || next.Hour() != 2 || next.Minute() != 0 {
			t.Fatalf("next run %s is not 02:00 UTC on the 1st", next)
		}
	}
	if err := e.app.Client.ScheduleClient().GetHandle(ctx, starter.ScheduleID).Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		d, err := starter.DescribeSchedule(ctx, e.app.Client)
		if err == nil && len(d.Info.RecentActions) > 0 {
			launcher := d.Info.RecentActions[0].StartWorkflowResult
			var again contract.ReconciliationResult
			if err := e.app.Client.GetWorkflow(ctx, launcher.WorkflowID, launcher.FirstExecutionRunID).Get(ctx, &again); err != nil {
				t.Fatalf("scheduled run: %v", err)
			}
			e.recordHistory(launcher.WorkflowID, "monthly-reconciliation")
			if again.Cycle != cycle || again.Uploaded || again.BatchNo != res.BatchNo || again.Total != len(want) {
				t.Fatalf("scheduled run = %+v", again)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the triggered schedule did not run")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := len(e.kd.Uploads()); n != 1 {
		t.Fatalf("statement uploaded %d times", n)
	}
	stored, err := e.app.Store.Run(ctx, cycle)
	if err != nil || stored.State != store.RunCompleted || stored.WorkflowID != workflows.ReconciliationWorkflowID(cycle) {
		t.Fatalf("run = %+v, %v", stored, err)
	}
}

func assertStatement(t *testing.T, path string, rows int) {
	t.Helper()
	book, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer book.Close()
	all, err := book.GetRows(statement.SheetName)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != rows+1 {
		t.Fatalf("statement has %d rows, want %d and a header", len(all), rows)
	}
	header := append([]string(nil), all[0]...)
	if fmt.Sprint(header) != fmt.Sprint(statement.Columns) {
		t.Fatalf("header = %v", header)
	}
	ids := make([]string, 0, rows)
	for _, r := range all[1:] {
		ids = append(ids, r[0])
	}
	sort.Strings(ids)
	if ids[0] != "CO-00000" || ids[len(ids)-1] != fmt.Sprintf("CO-%05d", rows-1) {
		t.Fatalf("statement ids run from %s to %s", ids[0], ids[len(ids)-1])
	}
}
