package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sqlitePlan returns SQLite's EXPLAIN QUERY PLAN of query, one step a line.
func sqlitePlan(t *testing.T, s *Store, query string, args ...any) string {
	t.Helper()
	rows, err := s.db.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// migratedSQLite opens a store on a new SQLite file in the test's directory, with every
// migration applied, and closes it when the test ends.
func migratedSQLite(t *testing.T) *Store {
	t.Helper()
	s, err := openSQLite(filepath.Join(t.TempDir(), "kooflow.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.now = time.Now
	if err := s.migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// searches reports whether plan searches table by index (SQLite's "SEARCH table USING
// [COVERING] INDEX index (columns)").
func searches(plan, table, index string) bool {
	for _, line := range strings.Split(plan, "\n") {
		if strings.HasPrefix(line, "SEARCH "+table+" USING ") && strings.Contains(line, "INDEX "+index) {
			return true
		}
	}
	return false
}

// TestLookupsUseIndexesOnSQLite: every kind FindSubscriptions tries, and the unmatched
// pushes of a SIM, are searched by index — never a scan of the registry, the expirations
// or the pushes — so a registry of a million rows answers in milliseconds.
func TestLookupsUseIndexesOnSQLite(t *testing.T) {
	s := migratedSQLite(t)
	query, args := s.findQuery("8986/PK1", 10)
	plan := sqlitePlan(t, s, query, args...)
	for _, scan := range []string{"SCAN subscriptions", "SCAN expirations"} {
		if strings.Contains(plan, scan) {
			t.Errorf("FindSubscriptions scans a table (%s):\n%s", scan, plan)
		}
	}
	for _, index := range [][2]string{
		{"subscriptions", "sqlite_autoindex_subscriptions_1 (instance_id=?)"},
		{"expirations", "sqlite_autoindex_expirations_1 (workflow_id=?)"},
		{"subscriptions", "subscriptions_sim (g_iccid=? AND package_code=?)"},
		{"subscriptions", "subscriptions_sim (g_iccid=?)"},
		{"subscriptions", "subscriptions_order (order_id=?)"},
		{"subscriptions", "subscriptions_carrier_order (carrier_order_id=?)"},
		{"subscriptions", "subscriptions_carrier_user (carrier_user_id=?)"},
	} {
		if !searches(plan, index[0], index[1]) {
			t.Errorf("FindSubscriptions does not search %s by index %s:\n%s", index[0], index[1], plan)
		}
	}

	for _, f := range []SmartHubEventFilter{
		{Status: EventUnmatched, GIccid: "8986", PackageCode: "PK1"},
		{Status: EventUnmatched, GIccid: "8986"},
	} {
		query, args := smartHubEventsQuery(f)
		plan := sqlitePlan(t, s, query, args...)
		if !searches(plan, "smarthub_events", "smarthub_events_sim (g_iccid=? AND status=?") {
			t.Errorf("the unmatched pushes of %+v are not searched by SIM and status:\n%s", f, plan)
		}
	}
}

// TestConsoleListsReadInIndexOrderOnSQLite: a page of the console's expirations list —
// across all states or in one, newest or oldest first — is read in the order of an index,
// without sorting every expiration.
func TestConsoleListsReadInIndexOrderOnSQLite(t *testing.T) {
	s := migratedSQLite(t)
	for _, c := range []struct {
		q     ExpirationQuery
		index string
	}{
		{ExpirationQuery{Limit: 50}, "expirations_list"},
		{ExpirationQuery{Limit: 50, OldestFirst: true, Offset: 500}, "expirations_list"},
		{ExpirationQuery{States: []string{StateReserved}, Limit: 50}, "expirations_state_list"},
		{ExpirationQuery{States: []string{StateStalled}, OldestFirst: true, Limit: 50}, "expirations_state_list"},
	} {
		query, args := listExpirationsQuery(c.q)
		plan := sqlitePlan(t, s, query, args...)
		if !strings.Contains(plan, "INDEX "+c.index) || strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("%+v: plan\n%s\nwant index %s and no sort", c.q, plan, c.index)
		}
	}
	// A search's few subjects are looked up by the subject index (their rows sorted), not
	// by walking every expiration in list order.
	query, args := listExpirationsQuery(ExpirationQuery{Subjects: []string{"inst-1", "8986/PK1"}, Limit: 50})
	if plan := sqlitePlan(t, s, query, args...); !searches(plan, "expirations", "expirations_subject") {
		t.Errorf("search by subjects: plan\n%s\nwant a search by expirations_subject", plan)
	}
}

// TestStatementAndReportUseIndexesOnSQLite: the statement reads the registry in one pass
// and looks up the history only of the subscriptions whose status changed after the
// cycle, found by the partial index of status changes (not a scan of every event); the
// discrepancy report finds each package by carrier order with an index.
func TestStatementAndReportUseIndexesOnSQLite(t *testing.T) {
	s := migratedSQLite(t)
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	plan := sqlitePlan(t, s, statementQuery, statementArgs(start, start.AddDate(0, 1, 0))...)
	t.Logf("statement:\n%s", plan)
	if strings.Contains(plan, "SCAN e") {
		t.Errorf("the statement scans the subscription history:\n%s", plan)
	}
	for _, index := range []string{"subscription_events_status (at>?)", "subscription_events_status_history (subscription_id=?)"} {
		if !searches(plan, "e", index) {
			t.Errorf("the statement does not search the history by index %s:\n%s", index, plan)
		}
	}
	plan = sqlitePlan(t, s, discrepancyQuery, "B1")
	t.Logf("report:\n%s", plan)
	if !searches(plan, "s", "subscriptions_carrier_order (carrier_order_id=?)") {
		t.Errorf("the report does not find packages by carrier order with an index:\n%s", plan)
	}
}
