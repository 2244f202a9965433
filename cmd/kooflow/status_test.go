package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/kooflow/kooflow/store"
)

// seedStatus records, for instance inst-j, a stalled expiration, a reserved one with a long
// error and a reserved rehearsal, and returns the data directory and the long error.
func seedStatus(t *testing.T) (dir, long string) {
	t.Helper()
	st, dir := storeWith(t, "inst-j", "inst-k")
	long = "KooDrive answered HTTP 503 " + strings.Repeat("x", 300) + " end of the error"
	for _, e := range []store.Expiration{
		{WorkflowID: "expire/koogallery/inst-j/p1", Period: "p1", State: store.StateStalled, LastError: "code 10020001: not whitelisted"},
		{WorkflowID: "expire/koogallery/inst-j/p2", Period: "p2", State: store.StateReserved, LastError: long},
		{WorkflowID: "expire/koogallery/inst-j/p3", Period: "p3", State: store.StateReserved, Test: true},
	} {
		e.Source, e.Subject, e.SubscriptionID, e.CarrierUserID, e.PackageID = "koogallery", "inst-j", subID(t, st, "inst-j"), "user-j", "pkg-j"
		if _, err := st.RecordExpiration(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		if err := st.SetExpirationState(context.Background(), e.WorkflowID, e.State, e.LastError); err != nil {
			t.Fatal(err)
		}
	}
	return dir, long
}

// TestStatusJSON: -o json carries the table's facts for scripts: the expirations with their
// whole last errors, every state counted with rehearsals apart, the queue, and for one
// subject its registry entry and history (known false for a subject the registry lacks).
func TestStatusJSON(t *testing.T) {
	dir, long := seedStatus(t)
	out, err := run(t, "status", "-o", "json", "--data-dir", dir)
	if err != nil {
		t.Fatalf("status -o json: %q, %v", out, err)
	}
	var doc statusJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	byID := map[string]expirationJSON{}
	for _, e := range doc.Expirations {
		byID[e.WorkflowID] = e
	}
	if len(doc.Expirations) != 3 || byID["expire/koogallery/inst-j/p2"].LastError != long ||
		byID["expire/koogallery/inst-j/p1"].State != store.StateStalled || !byID["expire/koogallery/inst-j/p3"].Test ||
		byID["expire/koogallery/inst-j/p1"].CarrierUserID != "user-j" {
		t.Fatalf("expirations: %+v", doc.Expirations)
	}
	if doc.Counts.Live[store.StateReserved] != 1 || doc.Counts.Test[store.StateReserved] != 1 || doc.Counts.Live[store.StateStalled] != 1 ||
		len(doc.Counts.Live) != len(store.States) || len(doc.Counts.Test) != len(store.States) {
		t.Fatalf("counts: %+v", doc.Counts)
	}
	if doc.Queue.Pending == nil || *doc.Queue.Pending != 0 || doc.Queue.Oldest != nil || doc.Queue.Intents == nil || doc.Registry != nil {
		t.Fatalf("queue or registry of the overview: %s", out)
	}

	out, err = run(t, "status", "inst-j", "--output", "json", "--state", "stalled", "--data-dir", dir)
	if err != nil {
		t.Fatalf("status inst-j -o json: %q, %v", out, err)
	}
	doc = statusJSON{}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("status inst-j -o json: %v\n%s", err, out)
	}
	if doc.Subject != "inst-j" || doc.Registry == nil || !doc.Registry.Known || doc.Registry.CarrierUserID != "user-0" ||
		len(doc.Registry.History) == 0 || doc.Registry.History[0].Event != "imported" ||
		len(doc.Expirations) != 1 || doc.Expirations[0].LastError != "code 10020001: not whitelisted" || doc.Queue.Pending != nil {
		t.Fatalf("one subject: %s", out)
	}
	out, err = run(t, "status", "--unmatched", "-o", "json", "--data-dir", dir)
	if err != nil || strings.TrimSpace(out) != `{
  "unmatched": []
}` {
		t.Fatalf("status --unmatched -o json: %q, %v", out, err)
	}
}

// TestStatusWideAndBadOutput: --wide shows a settled expiration's long error whole where the
// table cuts it, and an unknown -o is an error naming the allowed formats before anything
// is read.
func TestStatusWideAndBadOutput(t *testing.T) {
	dir, long := seedStatus(t)
	out, err := run(t, "status", "--data-dir", dir)
	if err != nil || strings.Contains(out, long) || !strings.Contains(out, "…") {
		t.Fatalf("the table did not cut a long settled error: %q, %v", out, err)
	}
	out, err = run(t, "status", "--wide", "--data-dir", dir)
	if err != nil || !strings.Contains(out, long) || !strings.Contains(out, "code 10020001: not whitelisted") || strings.Contains(out, "…") {
		t.Fatalf("status --wide cut a column: %q, %v", out, err)
	}
	for _, format := range []string{"yaml", "JSON", ""} {
		out, err := run(t, "status", "-o", format, "--data-dir", dir)
		if err == nil || out != "" || err.Error() != `unknown output format "`+format+`": -o is one of table, json` {
			t.Errorf("-o %q: %q, %v", format, out, err)
		}
	}
	if _, err := run(t, "status", "-o", "yaml", "--data-dir", t.TempDir()); err == nil || !strings.Contains(err.Error(), "unknown output format") {
		t.Fatalf("-o was not checked before the store was opened: %v", err)
	}
}
