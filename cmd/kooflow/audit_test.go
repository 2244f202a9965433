package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/payloadcodec"
	"github.com/kooflow/kooflow/store"
)

// auditEntries reads the audit log of the database in dir, newest first.
func auditEntries(t *testing.T, dir string) []store.AuditEntry {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, "kooflow.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	entries, err := st.AuditEntries(context.Background(), store.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// TestEveryOperatorCommandWritesOneAuditEntry: each operator action — succeeded, refused or
// failed — appends exactly one entry naming who ran it, from where, what was asked, what
// it touched and how it ended; `kooflow audit` lists and filters them.
func TestEveryOperatorCommandWritesOneAuditEntry(t *testing.T) {
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1") // Temporal is down: what needs it fails, and says so
	dir := t.TempDir()
	if _, err := payloadcodec.EnsureDevKey(dir); err != nil {
		t.Fatal(err)
	}
	reg := filepath.Join(dir, "reg.csv")
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(reg, []byte("instanceId,carrierUserId,packageId\ninst-1,user-1,pkg-1\n"), 0o644)
	os.WriteFile(bad, []byte("instanceId,carrierUserId,packageId\ninst-2,,pkg-2\n"), 0o644)
	lastMonth := time.Now().UTC().AddDate(0, -1, 0).Format("2006-01")
	steps := []struct {
		args     []string
		fails    bool
		action   string
		subject  string
		inDetail string
	}{
		{[]string{"registry", "import", reg, "--create"}, false, "registry import", "", "1 inserted"},
		{[]string{"registry", "import", bad}, true, "registry import", "", "carrierUserId is required"},
		{[]string{"expire", "--instance", "inst-1"}, false, "expire", "inst-1", "accepted and queued"},
		{[]string{"expire", "--instance", "inst-404"}, true, "expire", "inst-404", "inst-404"},
		{[]string{"retry", "inst-1"}, true, "retry", "", "no stalled expiration"},
		{[]string{"replay", "evt-404"}, true, "replay", "evt-404", "evt-404"},
		{[]string{"reconcile", "--cycle", lastMonth}, true, "reconcile", "reconcile/" + lastMonth, "127.0.0.1:1"},
		{[]string{"schedule", "apply"}, true, "schedule apply", "kooflow-monthly-reconciliation", "127.0.0.1:1"},
		{[]string{"schedule", "pause", "--note", "KooDrive maintenance"}, true, "schedule pause", "kooflow-monthly-reconciliation", "127.0.0.1:1"},
	}
	for i, s := range steps {
		out, err := run(t, append(s.args, "--data-dir", dir)...)
		if (err != nil) != s.fails {
			t.Fatalf("%v: %q, %v (want failure %v)", s.args, out, err, s.fails)
		}
		entries := auditEntries(t, dir)
		if len(entries) != i+1 {
			t.Fatalf("%v wrote %d audit entries, want 1", s.args, len(entries)-i)
		}
		e := entries[0]
		wantResult := store.AuditOK
		if s.fails {
			wantResult = store.AuditFailed
		}
		if e.Action != s.action || e.Result != wantResult || e.Via != "cli" || e.Actor == "" || e.Host == "" || e.At.IsZero() ||
			!strings.Contains(e.Detail, s.inDetail) || (s.subject != "" && !strings.Contains(strings.Join(e.Subjects, " "), s.subject)) {
			t.Errorf("%v: audit entry = %+v, want action %q result %s subject %q detail naming %q", s.args, e, s.action, wantResult, s.subject, s.inDetail)
		}
	}

	out, err := run(t, "audit", "--subject", "inst-1", "-o", "json", "--data-dir", dir)
	if err != nil {
		t.Fatalf("audit: %q, %v", out, err)
	}
	var listed []auditEntryJSON
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("audit -o json: %v: %s", err, out)
	}
	if len(listed) != 1 || listed[0].Action != "expire" || listed[0].Result != "ok" {
		t.Fatalf("audit --subject inst-1 = %+v", listed)
	}
	out, err = run(t, "audit", "--result", "failed", "--data-dir", dir)
	if err != nil || strings.Count(out, " failed ") != 7 || !strings.Contains(out, "WHO") {
		t.Fatalf("audit --result failed: %q, %v", out, err)
	}
	if _, err := run(t, "audit", "--result", "maybe", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "ok, failed") {
		t.Fatalf("audit --result maybe: %v", err)
	}
	if _, err := run(t, "audit", "--since", "last week", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "--since") {
		t.Fatalf("audit --since 'last week': %v", err)
	}
	// Reading the logs is not an action: nothing more was written.
	if n := len(auditEntries(t, dir)); n != len(steps) {
		t.Fatalf("%d audit entries after reading, want %d", n, len(steps))
	}
}
