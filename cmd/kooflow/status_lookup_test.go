package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/store"
)

// seedLookup returns a data directory whose registry holds carrier user user-42's two
// instances and SIM package 8986/PK1, a second package of that SIM for user-43, and
// inst-9 of user-0; inst-7 has a stalled expiration, 8986/PK2 a reserved rehearsal. It
// returns the SmartHub workflow ID too.
func seedLookup(t *testing.T) (dir, smartHubWorkflow string) {
	t.Helper()
	ctx := context.Background()
	st, dir := storeWith(t, "inst-9")
	if _, err := st.UpsertSubscriptions(ctx, []store.Subscription{
		{InstanceID: "inst-7", OrderID: "o-7", CarrierOrderID: "co-7", CarrierUserID: "user-42", PackageID: "pkg-1",
			ExpireTime: time.Date(2026, 10, 31, 16, 0, 0, 0, time.UTC)},
		{InstanceID: "inst-8", OrderID: "o-8", CarrierUserID: "user-42", PackageID: "pkg-2"},
		{GIccid: "8986", PackageCode: "PK1", CarrierUserID: "user-42", PackageID: "pkg-3"},
		{GIccid: "8986", PackageCode: "PK2", CarrierUserID: "user-43", PackageID: "pkg-4"},
	}); err != nil {
		t.Fatal(err)
	}
	sim, err := st.SubscriptionBySIM(ctx, "8986", "PK2")
	if err != nil {
		t.Fatal(err)
	}
	smartHubWorkflow = fmt.Sprintf("expire/smarthub/sub%d/20261031080000/test", sim.ID)
	for _, e := range []store.Expiration{
		{WorkflowID: "expire/koogallery/inst-7/20261031160000", Source: "koogallery", Subject: "inst-7", Period: "20261031160000",
			SubscriptionID: subID(t, st, "inst-7"), CarrierUserID: "user-42", PackageID: "pkg-1", State: store.StateStalled},
		{WorkflowID: smartHubWorkflow, Source: "smarthub", Subject: "8986/PK2", Period: "20261031080000",
			SubscriptionID: sim.ID, CarrierUserID: "user-43", PackageID: "pkg-4", State: store.StateReserved, Test: true},
	} {
		if _, err := st.RecordExpiration(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	return dir, smartHubWorkflow
}

// recordUnmatched stores SmartHub pushes that found no SIM package in the registry.
func recordUnmatched(t *testing.T, dir string, pushes ...store.SmartHubEvent) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+dir+"/kooflow.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, e := range pushes {
		e.EventType, e.TriggerType, e.Raw = "RULE_TRIGGERED", "SERVICE_PACKAGE_EXPIRED", "{}"
		if _, _, err := st.RecordSmartHubEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
		if err := st.SetSmartHubEventStatus(ctx, e.EventID, store.EventUnmatched, "", "not in the registry"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStatusFindsOneSubjectByEachIdentifier: status finds a subscription by its instance
// ID, a workflow ID of its expirations, its order id, carrier order id, carrier user id
// (the only package of user-0) and SIM package, says which kind matched, and shows the
// whole single-subject view.
func TestStatusFindsOneSubjectByEachIdentifier(t *testing.T) {
	dir, smartHubWorkflow := seedLookup(t)
	for _, tc := range []struct{ identifier, subject, kind string }{
		{"inst-7", "inst-7", "instance ID"},
		{"expire/koogallery/inst-7/20261031160000", "inst-7", "workflow ID"},
		{"o-7", "inst-7", "order id"},
		{"co-7", "inst-7", "carrier order id"},
		{"user-0", "inst-9", "carrier user id"},
		{"8986/PK2", "8986/PK2", "ICCID/packageCode"},
		{smartHubWorkflow, "8986/PK2", "workflow ID"},
	} {
		out, err := run(t, "status", tc.identifier, "--data-dir", dir)
		if err != nil || !strings.Contains(out, tc.subject+" matched: "+tc.kind+" "+tc.identifier+"\n") ||
			!strings.Contains(out, tc.subject+": status active, carrierUserId ") || !strings.Contains(out, "Deliveries about "+tc.subject) {
			t.Errorf("status %s: %q, %v", tc.identifier, out, err)
		}
	}
	out, err := run(t, "status", "o-7", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "expire/koogallery/inst-7/20261031160000  stalled") {
		t.Errorf("status by order id does not show the instance's expirations: %q, %v", out, err)
	}
	out, err = run(t, "status", smartHubWorkflow, "--data-dir", dir)
	if err != nil || !strings.Contains(out, smartHubWorkflow+"  reserved (test)") {
		t.Errorf("status by a SmartHub workflow ID does not show the SIM's expirations: %q, %v", out, err)
	}
}

// TestStatusListsEveryPackageOfAUserOrASIM: a carrier user with three packages, or a SIM
// with two, is listed one subscription a line — subject, how it matched, status, expiry,
// carrier user, package and expiration states — with how to narrow it down; --limit cuts
// the list and says so; an identifier that names nothing is an error naming every kind
// tried and --data-dir.
func TestStatusListsEveryPackageOfAUserOrASIM(t *testing.T) {
	dir, _ := seedLookup(t)
	out, err := run(t, "status", "user-42", "--data-dir", dir)
	if err != nil || !strings.HasPrefix(out, "3 subscriptions matched: carrier user id user-42\n") ||
		!strings.Contains(out, "kooflow status <instanceId>") || strings.Contains(out, "all expirations:") {
		t.Fatalf("status of a carrier user with three packages: %q, %v", out, err)
	}
	lines := rowsOf(out)
	for subject, want := range map[string]string{
		"inst-7":   "inst-7 carrier user id active 2026-10-31T16:00:00Z user-42 pkg-1 stalled",
		"inst-8":   "inst-8 carrier user id active (unknown) user-42 pkg-2 none",
		"8986/PK1": "8986/PK1 carrier user id active (unknown) user-42 pkg-3 none",
	} {
		if lines[subject] != want {
			t.Errorf("line of %s: %q, want %q\n%s", subject, lines[subject], want, out)
		}
	}

	out, err = run(t, "status", "8986", "--data-dir", dir)
	lines = rowsOf(out)
	if err != nil || !strings.HasPrefix(out, "2 subscriptions matched: ICCID 8986\n") ||
		lines["8986/PK1"] != "8986/PK1 ICCID active (unknown) user-42 pkg-3 none" ||
		lines["8986/PK2"] != "8986/PK2 ICCID active (unknown) user-43 pkg-4 reserved (test)" {
		t.Fatalf("status of a SIM with two packages: %q, %v", out, err)
	}

	out, err = run(t, "status", "user-42", "--limit", "2", "--data-dir", dir)
	if err != nil || !strings.HasPrefix(out, "more than 2 subscriptions matched") || !strings.Contains(out, "--limit N lists more") ||
		strings.Contains(out, "8986/PK1") {
		t.Fatalf("status user-42 --limit 2: %q, %v", out, err)
	}

	out, err = run(t, "status", "user-77", "--data-dir", dir)
	if err == nil || out != "" {
		t.Fatalf("status of an unknown identifier: %q, %v", out, err)
	}
	for _, kind := range []string{"user-77 is not in the registry", "instance ID", "workflow ID", "ICCID/packageCode", "ICCID,", "order id",
		"carrier order id", "carrier user id", "SmartHub push", "--data-dir"} {
		if !strings.Contains(err.Error(), kind) {
			t.Errorf("the error does not name %q: %v", kind, err)
		}
	}
}

// TestStatusShowsThePushesWaitingForASubject: status of a SIM package shows the SmartHub
// pushes that came before it was imported, with the replay command; a SIM only such
// pushes know — by its package or its bare ICCID — shows them instead of an error, with
// the import to do first; -o json carries the kind that matched, every match and the
// pushes.
func TestStatusShowsThePushesWaitingForASubject(t *testing.T) {
	dir, _ := seedLookup(t)
	valid := time.Date(2026, 10, 31, 8, 0, 0, 0, time.UTC)
	recordUnmatched(t, dir,
		store.SmartHubEvent{EventID: "ev-imported-since", GIccid: "8986", PackageCode: "PK1", ValidThru: valid},
		store.SmartHubEvent{EventID: "ev-unknown-sim", GIccid: "7777", PackageCode: "PKX", ValidThru: valid},
	)
	out, err := run(t, "status", "8986/PK1", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "SmartHub pushes waiting unmatched") || !strings.Contains(out, "ev-imported-since") ||
		!strings.Contains(out, "kooflow replay <eventId>") || strings.Contains(out, "ev-unknown-sim") {
		t.Fatalf("status of a SIM package with a push waiting: %q, %v", out, err)
	}
	for _, identifier := range []string{"7777/PKX", "7777"} {
		out, err = run(t, "status", identifier, "--data-dir", dir)
		if err != nil || !strings.Contains(out, identifier+" is not in the registry") || !strings.Contains(out, "ev-unknown-sim") ||
			!strings.Contains(out, "kooflow registry import") || !strings.Contains(out, "kooflow replay <eventId>") {
			t.Errorf("status of a SIM only unmatched pushes know, as %s: %q, %v", identifier, out, err)
		}
	}
	out, err = run(t, "status", "user-42", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "ev-imported-since") {
		t.Fatalf("the list of a carrier user's packages omits a push waiting for one: %q, %v", out, err)
	}

	doc := statusDoc(t, dir, "8986/PK1")
	if doc.Query != "8986/PK1" || doc.Subject != "8986/PK1" || len(doc.Matches) != 1 || doc.Matches[0].Kind != "gIccid/packageCode" ||
		doc.Registry == nil || !doc.Registry.Known || len(doc.UnmatchedPushes) != 1 || doc.UnmatchedPushes[0].EventID != "ev-imported-since" {
		t.Errorf("status 8986/PK1 -o json: %+v", doc)
	}
	doc = statusDoc(t, dir, "user-42")
	kinds := map[string]string{}
	for _, m := range doc.Matches {
		kinds[m.Subject] = m.Kind
	}
	if doc.Query != "user-42" || doc.Subject != "" || doc.Registry != nil || len(doc.Matches) != 3 || doc.MoreMatches ||
		kinds["inst-7"] != "carrierUserId" || kinds["inst-8"] != "carrierUserId" || kinds["8986/PK1"] != "carrierUserId" ||
		doc.Matches[0].Expirations[0].State != store.StateStalled || len(doc.UnmatchedPushes) != 1 || len(doc.Expirations) != 0 {
		t.Errorf("status user-42 -o json: %+v", doc)
	}
	doc = statusDoc(t, dir, "7777")
	if doc.Subject != "7777" || len(doc.Matches) != 0 || doc.Registry == nil || doc.Registry.Known ||
		len(doc.UnmatchedPushes) != 1 || doc.UnmatchedPushes[0].GIccid != "7777" || doc.UnmatchedPushes[0].PackageCode != "PKX" {
		t.Errorf("status 7777 -o json: %+v", doc)
	}
}

// rowsOf maps the first word of each line of out to the line, its blanks collapsed.
func rowsOf(out string) map[string]string {
	rows := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = strings.Join(f, " ")
		}
	}
	return rows
}

// statusDoc runs status identifier -o json and decodes it.
func statusDoc(t *testing.T, dir, identifier string) statusJSON {
	t.Helper()
	out, err := run(t, "status", identifier, "-o", "json", "--data-dir", dir)
	if err != nil {
		t.Fatalf("status %s -o json: %q, %v", identifier, out, err)
	}
	var doc statusJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("status %s -o json is not JSON: %v\n%s", identifier, err, out)
	}
	return doc
}
