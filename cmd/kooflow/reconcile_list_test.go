package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kooflow/kooflow/store"
)

// TestReconcileListAndShowWithoutACycle: `reconcile list` shows every cycle's runs newest
// first, with times, batch, rows, counts per diffType and files (as a table, as JSON, at
// most --limit); `reconcile show` without --cycle shows the latest cycle's latest run and
// that cycle's earlier runs, with --cycle the cycle asked for.
func TestReconcileListAndShowWithoutACycle(t *testing.T) {
	dir := dataDir(t)
	if out, err := run(t, "reconcile", "list", "--data-dir", dir); err != nil || !strings.Contains(out, "no reconciliation runs") {
		t.Fatalf("list of nothing: %q, %v", out, err)
	}
	if _, err := run(t, "reconcile", "show", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "no billing cycle has been reconciled yet") {
		t.Fatalf("show of nothing: %v", err)
	}

	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, "kooflow.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	files := func(cycle, runID string) (string, string) {
		folder := filepath.Join(dir, "reconciliation", cycle, runID)
		return filepath.Join(folder, "statement-"+cycle+".xlsx"), filepath.Join(folder, "discrepancies-"+cycle+".xlsx")
	}
	sepStatement, sepReport := files("2026-09", "run-a")
	octStatement, octReport := files("2026-10", "run-b")
	forceStatement, _ := files("2026-10", "run-c")
	for _, r := range []store.ReconciliationRun{
		{Cycle: "2026-09", WorkflowID: "reconcile/2026-09", RunID: "run-a", State: store.RunCompleted, StatementPath: sepStatement, StatementRows: 7,
			BatchNo: "B-09", ReportPath: sepReport, Counts: map[string]int{"1": 1, "2": 4, "9": 2}},
		{Cycle: "2026-10", WorkflowID: "reconcile/2026-10", RunID: "run-b", State: store.RunCompleted, StatementPath: octStatement, StatementRows: 8,
			BatchNo: "B-10", ReportPath: octReport, Counts: map[string]int{"2": 3, "3": 1}},
		{Cycle: "2026-10", WorkflowID: "reconcile/2026-10", RunID: "run-c", State: store.RunPolling, StatementPath: forceStatement, StatementRows: 9,
			BatchNo: "B-10b"},
	} {
		if err := st.SaveRun(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}

	out, err := run(t, "reconcile", "list", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("list:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || strings.Join(strings.Fields(lines[0]), " ") != "CYCLE STATE STARTED FINISHED BATCH ROWS TYPE 1 TYPE 2 TYPE 3 OTHER STATEMENT REPORT" {
		t.Fatalf("list:\n%s", out)
	}
	for i, want := range [][]string{
		{"2026-10", "polling", "-", "B-10b", "9", "-", "-", "-", "-", forceStatement, "-"},
		{"2026-10", "completed", "B-10", "8", "0", "3", "1", "0", octStatement, octReport},
		{"2026-09", "completed", "B-09", "7", "1", "4", "0", "2", sepStatement, sepReport},
	} {
		fields := strings.Fields(lines[i+1])
		// Leave the times out: STARTED always, FINISHED when the run finished.
		got := append([]string{fields[0], fields[1]}, fields[3:]...)
		if want[1] == "completed" {
			got = append([]string{fields[0], fields[1]}, fields[4:]...)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("list line %d = %q, want the fields %q", i+1, lines[i+1], want)
		}
	}
	if !strings.Contains(lines[4], "OTHER counts diffType values KooDrive does not document (9)") {
		t.Errorf("the undocumented diffType is not explained:\n%s", out)
	}

	if out, err := run(t, "reconcile", "list", "--limit", "1", "--data-dir", dir); err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, forceStatement) {
		t.Fatalf("list --limit 1:\n%s%v", out, err)
	}
	if _, err := run(t, "reconcile", "list", "--limit", "0", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "--limit 0") {
		t.Fatalf("list --limit 0: %v", err)
	}
	if out, err := run(t, "reconcile", "list", "--cycle", "2026-09", "--data-dir", dir); err != nil || strings.Contains(out, "2026-10") || !strings.Contains(out, sepReport) {
		t.Fatalf("list --cycle 2026-09:\n%s%v", out, err)
	}

	out, err = run(t, "reconcile", "list", "-o", "json", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	var runs []reconcileRunJSON
	if err := json.Unmarshal([]byte(out), &runs); err != nil || len(runs) != 3 {
		t.Fatalf("list -o json: %v\n%s", err, out)
	}
	running, done := runs[0], runs[1]
	if running.RunID != "run-c" || running.FinishedAt != nil || running.Discrepancies != nil || running.DiscrepanciesTotal != nil ||
		running.StatementPath != forceStatement || running.StatementRows != 9 || running.StartedAt.IsZero() {
		t.Errorf("the running run in JSON = %+v", running)
	}
	if done.RunID != "run-b" || done.FinishedAt == nil || done.Discrepancies["1"] != 0 || done.Discrepancies["2"] != 3 || done.Discrepancies["3"] != 1 ||
		len(done.Discrepancies) != 3 || *done.DiscrepanciesTotal != 4 || done.ReportPath != octReport || done.BatchNo != "B-10" || done.WorkflowID != "reconcile/2026-10" {
		t.Errorf("the completed run in JSON = %+v", done)
	}
	if !strings.Contains(out, `"discrepancies": null`) || !strings.Contains(out, `"finishedAt": null`) {
		t.Errorf("a run without counts or end does not say null:\n%s", out)
	}

	out, err = run(t, "reconcile", "show", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("show:\n%s", out)
	for _, want := range []string{"billing cycle 2026-10: polling (as of ", "run:       run-c", "statement: " + forceStatement + " (9 rows)",
		"earlier runs of 2026-10", "completed  batch B-10  statement " + octStatement + "  report " + octReport} {
		if !strings.Contains(out, want) {
			t.Errorf("show without --cycle does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "2026-09") {
		t.Errorf("show without --cycle shows another cycle:\n%s", out)
	}
	out, err = run(t, "reconcile", "show", "--cycle", "2026-09", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "billing cycle 2026-09: completed") || !strings.Contains(out, "diffType 2: 4") ||
		!strings.Contains(out, "report:    "+sepReport) || !strings.Contains(out, "finished:  ") || strings.Contains(out, "earlier runs") {
		t.Fatalf("show --cycle 2026-09: %q, %v", out, err)
	}
}
