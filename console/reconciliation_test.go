package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kooflow/kooflow/console"
	"github.com/kooflow/kooflow/store"
)

// addRun records a completed reconciliation of 2026-10 with its statement and report on
// disk and two discrepancies, and returns the run's ID and the report's bytes.
func (w *world) addRun(t *testing.T) (int64, []byte) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	statementPath, reportPath := filepath.Join(dir, "statement.xlsx"), filepath.Join(dir, "report.xlsx")
	report := []byte("PK\x03\x04 the report's bytes")
	if err := os.WriteFile(statementPath, []byte("PK\x03\x04 the statement's bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(reportPath, report, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := w.store.SaveRun(ctx, store.ReconciliationRun{Cycle: "2026-10", WorkflowID: "reconcile/2026-10", RunID: "run-a", State: store.RunCompleted,
		StatementPath: statementPath, StatementRows: 2, StatementSHA256: "abc", BatchNo: "B-1", ReportPath: reportPath,
		Counts: map[string]int{"1": 1, "3": 1}}); err != nil {
		t.Fatal(err)
	}
	if err := w.store.SaveDiscrepancies(ctx, []store.Discrepancy{
		{BatchNo: "B-1", Cycle: "2026-10", Seq: 1, DiffType: "1", KdOrderID: "kd-9", KdUserID: "kd-user-9", Raw: `{"kdOrderId":"kd-9"}`},
		{BatchNo: "B-1", Cycle: "2026-10", Seq: 2, DiffType: "3", CarrierOrderID: "c-order-1", CarrierUserID: "user-1", Raw: `{"carrierOrderId":"c-order-1"}`},
	}); err != nil {
		t.Fatal(err)
	}
	runs, err := w.store.Runs(ctx, store.RunFilter{Cycle: "2026-10"})
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs of 2026-10: %v %v", runs, err)
	}
	return runs[0].ID, report
}

// TestReconciliationRunsAndTheirFiles: the page lists each run with its counts per
// diffType and its files; a run's page shows its discrepancies in words; the report
// downloads as the worker wrote it; bad run numbers and files get a clear answer.
func TestReconciliationRunsAndTheirFiles(t *testing.T) {
	w := newWorld(t)
	id, report := w.addRun(t)
	viewer := w.signIn(t, "vera", console.RoleViewer)

	resp, body := w.do(t, http.MethodGet, "/reconciliation", nil, viewer)
	runLink := fmt.Sprintf("/reconciliation/run?id=%d", id)
	for _, want := range []string{runLink, "2026-10", "completed", "B-1", fmt.Sprintf("/reconciliation/file?id=%d&amp;file=report", id),
		"The schedule could not be read from Temporal: connect to Temporal at 127.0.0.1:1: connection refused"} {
		if !strings.Contains(body, want) {
			t.Errorf("the reconciliation page (%d) lacks %q", resp.StatusCode, want)
		}
	}
	if strings.Contains(body, "Reconcile…") || strings.Contains(body, "Pause the schedule") {
		t.Error("a viewer is offered an action")
	}

	_, body = w.do(t, http.MethodGet, runLink, nil, viewer)
	for _, want := range []string{"Reconciliation of 2026-10", "Discrepancies: 2", "benefits inconsistent between the carrier and KooDrive",
		"kd-user-9", "c-order-1", `href="/expirations?q=user-1"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the run's page lacks %q", want)
		}
	}

	resp, body = w.do(t, http.MethodGet, fmt.Sprintf("/reconciliation/file?id=%d&file=report", id), nil, viewer)
	if resp.StatusCode != http.StatusOK || body != string(report) || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") ||
		!strings.Contains(resp.Header.Get("Content-Type"), "spreadsheetml") {
		t.Fatalf("report download: %d %v %q", resp.StatusCode, resp.Header, body)
	}

	run, err := w.store.RunByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(run.StatementPath); err != nil {
		t.Fatal(err)
	}
	for target, want := range map[string]string{
		fmt.Sprintf("/reconciliation/file?id=%d&file=statement", id): "the kooflow-statements volume",
		fmt.Sprintf("/reconciliation/file?id=%d&file=passwd", id):    "not statement or report",
		"/reconciliation/run?id=999":                                 "no reconciliation run 999",
		"/reconciliation/run?id=abc":                                 "not a run number",
		"/reconciliation?cycle=October":                              "October",
	} {
		resp, body := w.do(t, http.MethodGet, target, nil, viewer)
		if resp.StatusCode < 400 || !strings.Contains(body, want) {
			t.Errorf("%s answered %d without %q: %s", target, resp.StatusCode, want, body)
		}
	}
}

// TestReconcileAndPauseGoThroughTheOperator: reconciling a cycle is an operator's action
// behind a confirmation, pausing the schedule an admin's with a required note; each POST
// goes through starter.Operator, so with Temporal unreachable it fails, says why and is
// audited under the operator's name.
func TestReconcileAndPauseGoThroughTheOperator(t *testing.T) {
	w := newWorld(t)
	w.addRun(t)
	viewer, op, admin := w.signIn(t, "vera", console.RoleViewer), w.signIn(t, "olga", console.RoleOperator), w.signIn(t, "ada", console.RoleAdmin)

	_, page := w.do(t, http.MethodGet, "/reconciliation", nil, op)
	if !strings.Contains(page, "Reconcile…") || strings.Contains(page, "Pause the schedule") {
		t.Error("an operator should be offered reconciling, not the schedule")
	}
	for target, want := range map[string]string{
		"/reconciliation/start?cycle=2999-01": "2999-01",
		"/reconciliation/start?cycle=10-2026": "10-2026",
		"/reconciliation/start?cycle=":        "which billing cycle",
	} {
		if resp, body := w.do(t, http.MethodGet, target, nil, op); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, want) {
			t.Errorf("%s answered %d without %q", target, resp.StatusCode, want)
		}
	}
	resp, confirm := w.do(t, http.MethodGet, "/reconciliation/start?cycle=2026-10&force=on", nil, op)
	if resp.StatusCode != http.StatusOK || !strings.Contains(confirm, "Reconcile 2026-10 again?") || !strings.Contains(confirm, "completed") {
		t.Fatalf("confirmation: %d %s", resp.StatusCode, confirm)
	}
	form := url.Values{"csrf": {csrf(t, confirm)}, "cycle": {"2026-10"}, "force": {"on"}}
	if resp, body := w.do(t, http.MethodPost, "/reconciliation/start", form, op); resp.StatusCode != http.StatusConflict ||
		!strings.Contains(body, "not started: connect to Temporal") {
		t.Errorf("reconcile with Temporal down: %d %s", resp.StatusCode, body)
	}
	_, viewerPage := w.do(t, http.MethodGet, "/reconciliation", nil, viewer)
	if resp, _ := w.do(t, http.MethodPost, "/reconciliation/start", url.Values{"csrf": {csrf(t, viewerPage)}, "cycle": {"2026-10"}}, viewer); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a viewer's reconcile answered %d", resp.StatusCode)
	}

	if resp, _ := w.do(t, http.MethodGet, "/schedule/pause?note=maintenance", nil, op); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an operator's pause answered %d, want 403 (admins only)", resp.StatusCode)
	}
	if resp, body := w.do(t, http.MethodGet, "/schedule/pause?note=+", nil, admin); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Say why") {
		t.Errorf("a pause without a note answered %d: %s", resp.StatusCode, body)
	}
	resp, confirm = w.do(t, http.MethodGet, "/schedule/pause?note="+url.QueryEscape("KooDrive maintenance (ticket 4711)"), nil, admin)
	if resp.StatusCode != http.StatusOK || !strings.Contains(confirm, "KooDrive maintenance (ticket 4711)") {
		t.Fatalf("pause confirmation: %d %s", resp.StatusCode, confirm)
	}
	form = url.Values{"csrf": {csrf(t, confirm)}, "note": {"KooDrive maintenance (ticket 4711)"}}
	if resp, body := w.do(t, http.MethodPost, "/schedule/pause", form, admin); resp.StatusCode != http.StatusConflict ||
		!strings.Contains(body, "not paused: connect to Temporal") {
		t.Errorf("pause with Temporal down: %d %s", resp.StatusCode, body)
	}

	got := map[string]store.AuditEntry{}
	for _, e := range w.auditEntries(t) {
		got[e.Actor+" "+e.Action] = e
	}
	for key, args := range map[string]string{"olga reconcile": "--cycle 2026-10 --force", "ada schedule pause": `--note "KooDrive maintenance (ticket 4711)"`} {
		e, ok := got[key]
		if !ok || e.Result != store.AuditFailed || e.Args != args || e.Via != "console" {
			t.Errorf("audit entry %q = %+v, want a failed entry via the console with args %s", key, e, args)
		}
	}
	if e, ok := got["vera console /reconciliation/start"]; !ok || e.Result != store.AuditFailed {
		t.Errorf("the viewer's refused reconcile is not audited: %+v", got)
	}
}
