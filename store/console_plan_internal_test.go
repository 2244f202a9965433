package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/store/internal/pgtest"
)

// The console's lists (issue #22): every query behind them reads its table by an index,
// checked with EXPLAIN on SQLite always and on PostgreSQL with KOOFLOW_TEST_POSTGRES_DSN.
// A page is read in the order of an index (or of the primary key, newest first), so it
// reads about a page of rows however large the table; only a search's few subjects, or a
// count's window, may be sorted after they are found by an index.

// access is a way a plan may read a table: by an index, named as each database names it.
type access struct {
	table string
	// sqlite names the index in SQLite's plan; empty is the table's own b-tree, keyed by
	// its INTEGER PRIMARY KEY (SQLite prints a walk of it as a bare "SCAN table").
	sqlite   string
	postgres string
	// fromWindow: on SQLite, the walk of the primary key starts at the newest row and
	// ends at the lowest id of a time window (conditions.fromWindow), not at the oldest
	// row. PostgreSQL needs no bound: by its statistics it walks the key back for a wide
	// window and sorts the few rows of a narrow one (found by the window's index).
	fromWindow bool
}

// byIndex is a read by index name, the same on both databases.
func byIndex(table, name string) access { return access{table: table, sqlite: name, postgres: name} }

// byPrimaryKey is a read of table in the order of its id.
func byPrimaryKey(table string) access { return access{table: table, postgres: table + "_pkey"} }

// byPrimaryKeyFromWindow is a read of table in the order of its id, down to the lowest
// id of the time window on SQLite.
func byPrimaryKeyFromWindow(table string) access {
	a := byPrimaryKey(table)
	a.fromWindow = true
	return a
}

// byAuditSubject is a read of the audit entries of some subjects through audit_subjects.
var byAuditSubject = access{table: "audit_subjects", sqlite: "sqlite_autoindex_audit_subjects_1", postgres: "audit_subjects_pkey"}

// planCase is one query the console (or the overview's metrics) runs.
type planCase struct {
	name  string
	query string
	args  []any
	// any of these reads must be in the plan.
	reads []access
	// sorts: the rows an index found may be sorted or grouped (a search's few subjects,
	// a count's window); otherwise the plan reads in the order of the index, no sort.
	sorts bool
}

// consolePlanCases lists the queries behind the console's pages in every filter shape
// the console sends (console/pages.go), built by the functions s runs them with.
func consolePlanCases(s *Store) []planCase {
	var cases []planCase
	// The expirations list: a state (or all), a source (or both), with test rehearsals
	// or without, newest or oldest first, a search's subjects or none — page 3.
	for _, state := range []string{"", StateStalled} {
		for _, source := range []string{"", "smarthub"} {
			for _, test := range []bool{false, true} {
				for _, oldest := range []bool{false, true} {
					for _, search := range []bool{false, true} {
						q := ExpirationQuery{Source: source, Test: test, OldestFirst: oldest, Limit: 50, Offset: 100}
						if test {
							// The "changed within" window, in half of the shapes.
							q.ChangedSince = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
						}
						c := planCase{reads: []access{byIndex("expirations", "expirations_list")}}
						if state != "" {
							q.States = []string{state}
							c.reads = []access{byIndex("expirations", "expirations_state_list")}
						}
						if search {
							q.Subjects = []string{"inst-1", "8986/PK1", "8986/PK2"}
							c.reads, c.sorts = []access{byIndex("expirations", "expirations_subject")}, true
						}
						c.name = fmt.Sprintf("ListExpirations %+v", q)
						c.query, c.args = listExpirationsQuery(q)
						cases = append(cases, c)
					}
				}
			}
		}
	}
	// The CSV export (every expiration, up to 100,000) and a bulk retry's stalled ones.
	for _, c := range []struct {
		q     ExpirationQuery
		index string
	}{
		{ExpirationQuery{Limit: 100_000}, "expirations_list"},
		{ExpirationQuery{States: []string{StateStalled}, Limit: 1000}, "expirations_state_list"},
	} {
		query, args := listExpirationsQuery(c.q)
		cases = append(cases, planCase{name: fmt.Sprintf("ListExpirations %+v", c.q), query: query, args: args,
			reads: []access{byIndex("expirations", c.index)}})
	}

	since := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	// The delivery log: a source, an outcome, a subject (the log's filter, an
	// expiration's page), a time window, each or not.
	for _, source := range []string{"", "koogallery"} {
		for _, outcome := range []string{"", DeliveryRefused} {
			for _, subject := range []bool{false, true} {
				for _, window := range []bool{false, true} {
					f := DeliveryFilter{Source: source, Outcome: outcome, Limit: 200}
					c := planCase{reads: []access{byPrimaryKey("deliveries")}}
					if window {
						f.Since = since
						c.reads = []access{byPrimaryKeyFromWindow("deliveries")}
					}
					if subject {
						f.Subjects = []string{"inst-1"}
						c.reads = []access{byIndex("deliveries", "deliveries_subject")}
					}
					c.name = caseName("Deliveries", "source "+f.Source, "outcome "+f.Outcome, "subjects "+strings.Join(f.Subjects, " "),
						"since "+formatTime(f.Since))
					c.query, c.args = s.deliveriesQuery(f)
					cases = append(cases, c)
				}
			}
		}
	}

	// The audit log: an actor, an action, a result, a subject, a time window, each or
	// not; and an expiration's page: the entries on its workflow ID or its subject.
	for _, actor := range []string{"", "alice"} {
		for _, action := range []string{"", "retry"} {
			for _, result := range []string{"", AuditFailed} {
				for _, subject := range []bool{false, true} {
					for _, window := range []bool{false, true} {
						f := AuditFilter{Actor: actor, Action: action, Result: result, Limit: 200}
						var c planCase
						if actor != "" {
							c.reads = append(c.reads, byIndex("audit_log", "audit_log_actor"))
						}
						if action != "" {
							c.reads = append(c.reads, byIndex("audit_log", "audit_log_action"))
						}
						if subject {
							f.Subjects = []string{"inst-1"}
							c.reads, c.sorts = append(c.reads, byAuditSubject), true
						}
						if window {
							f.Since = since
						}
						if len(c.reads) == 0 && window {
							c.reads = []access{byPrimaryKeyFromWindow("audit_log")}
						} else if len(c.reads) == 0 {
							c.reads = []access{byPrimaryKey("audit_log")}
						}
						c.name = caseName("AuditEntries", "actor "+f.Actor, "action "+f.Action, "result "+f.Result,
							"subjects "+strings.Join(f.Subjects, " "), "since "+formatTime(f.Since))
						c.query, c.args = s.auditQuery(f)
						cases = append(cases, c)
					}
				}
			}
		}
	}
	query, args := s.auditQuery(AuditFilter{Subjects: []string{"expire/inst-1/2026-12-01T00:00:00Z", "inst-1"}, Limit: 200})
	cases = append(cases, planCase{name: "AuditEntries of an expiration's page", query: query, args: args,
		reads: []access{byAuditSubject}, sorts: true})

	// The overview (and the metrics): expirations by state, the intake queue, the last
	// hour's deliveries by outcome, the last reconciliation; the deliveries page's
	// unmatched SmartHub pushes; the reconciliation runs, newest first, all or a cycle's.
	cases = append(cases,
		planCase{name: "CountExpirations", query: countExpirationsSQL, reads: []access{byIndex("expirations", "expirations_state_list")}},
		// The relay's admission count, before every pass: both its counts by index.
		planCase{name: "ActiveExpirations, freezing and notifying", query: activeSQL, reads: []access{byIndex("expirations", "expirations_state_list")}},
		planCase{name: "ActiveExpirations, started and still accepted", query: activeSQL, reads: []access{byIndex("expirations", "expirations_admitted")}},
		planCase{name: "StaleActiveExpirations, freezing and notifying", query: staleActiveSQL, args: []any{formatTime(since), formatTime(since), 500},
			reads: []access{byIndex("expirations", "expirations_state_list")}, sorts: true},
		planCase{name: "StaleActiveExpirations, started and still accepted", query: staleActiveSQL, args: []any{formatTime(since), formatTime(since), 500},
			reads: []access{byIndex("expirations", "expirations_admitted")}, sorts: true},
		planCase{name: "Backlog", query: backlogSQL, args: []any{IntentPending}, reads: []access{byIndex("intake_intents", "intake_intents_state")}},
		planCase{name: "CountDeliveries", query: countDeliveriesSQL, args: []any{formatTime(since)},
			reads: []access{byIndex("deliveries", "deliveries_received")}, sorts: true},
		planCase{name: "LastCompletedRun", query: lastCompletedRunSQL, args: []any{RunCompleted},
			reads: []access{byIndex("reconciliation_runs", "reconciliation_runs_state")}},
	)
	query, args = smartHubEventsQuery(SmartHubEventFilter{Status: EventUnmatched, Limit: 100})
	cases = append(cases, planCase{name: "SmartHubEventsWhere unmatched", query: query, args: args,
		reads: []access{byIndex("smarthub_events", "smarthub_events_status")}, sorts: true})
	query, args = runsQuery(RunFilter{})
	cases = append(cases, planCase{name: "Runs", query: query, args: args, reads: []access{byIndex("reconciliation_runs", "reconciliation_runs_started")}})
	query, args = runsQuery(RunFilter{Cycle: "2026-11"})
	cases = append(cases, planCase{name: "Runs of a cycle", query: query, args: args,
		reads: []access{byIndex("reconciliation_runs", "reconciliation_runs_run")}, sorts: true})
	return cases
}

// caseName names a case by its function and the filters set, each "name value" (those
// without a value are left out).
func caseName(function string, filters ...string) string {
	name := function
	for _, f := range filters {
		if _, value, _ := strings.Cut(f, " "); value != "" {
			name += ", " + f
		}
	}
	return name
}

// sqliteReads reports whether SQLite's plan reads a.table as a says.
func sqliteReads(plan string, a access) bool {
	for _, line := range strings.Split(plan, "\n") {
		if a.sqlite == "" {
			if (line == "SCAN "+a.table && !a.fromWindow) || strings.HasPrefix(line, "SEARCH "+a.table+" USING INTEGER PRIMARY KEY (rowid>") {
				return true
			}
			continue
		}
		if (strings.HasPrefix(line, "SCAN "+a.table+" USING ") || strings.HasPrefix(line, "SEARCH "+a.table+" USING ")) &&
			(strings.HasSuffix(line, "INDEX "+a.sqlite) || strings.Contains(line, "INDEX "+a.sqlite+" ")) {
			return true
		}
	}
	return false
}

// TestConsoleQueryPlansUseIndexesOnSQLite: no query behind the console scans a table
// (a bare "SCAN table", unless it is the walk of the primary key newest first that the
// case expects) or sorts with a temporary b-tree, unless it sorts the rows a search
// found; and each reads its table by the index expected.
func TestConsoleQueryPlansUseIndexesOnSQLite(t *testing.T) {
	s := migratedSQLite(t)
	for _, c := range consolePlanCases(s) {
		plan := sqlitePlan(t, s, c.query, c.args...)
		for _, line := range strings.Split(plan, "\n") {
			if table, bare := strings.CutPrefix(line, "SCAN "); bare && !strings.Contains(table, " ") && !expectsPrimaryKey(c.reads, table) {
				t.Errorf("%s scans %s:\n%s\n%s", c.name, table, c.query, plan)
			}
			if strings.HasPrefix(line, "USE TEMP B-TREE") && !c.sorts {
				t.Errorf("%s sorts (%s) instead of reading in index order:\n%s\n%s", c.name, line, c.query, plan)
			}
		}
		if !readsAny(c.reads, func(a access) bool { return sqliteReads(plan, a) }) {
			t.Errorf("%s does not read by %+v:\n%s\n%s", c.name, c.reads, c.query, plan)
		}
	}
}

// expectsPrimaryKey reports whether reads has the whole walk of table's primary key.
func expectsPrimaryKey(reads []access, table string) bool {
	for _, a := range reads {
		if a.table == table && a.sqlite == "" && !a.fromWindow {
			return true
		}
	}
	return false
}

// readsAny reports whether the plan reads by any of reads.
func readsAny(reads []access, planReads func(access) bool) bool {
	for _, a := range reads {
		if planReads(a) {
			return true
		}
	}
	return false
}

// postgresTestDSN returns the DSN of a new schema, named from prefix, on the server of
// KOOFLOW_TEST_POSTGRES_DSN (the test is skipped without it), dropped when the test ends.
func postgresTestDSN(t *testing.T, prefix string) string {
	t.Helper()
	base := os.Getenv("KOOFLOW_TEST_POSTGRES_DSN")
	if base == "" {
		t.Skip("KOOFLOW_TEST_POSTGRES_DSN is not set: no PostgreSQL to test against")
	}
	return pgtest.SchemaDSN(t, base, prefix)
}

// postgresPlan returns PostgreSQL's EXPLAIN of query with args on conn, one line a row.
func postgresPlan(t *testing.T, conn *sql.Conn, query string, args ...any) string {
	t.Helper()
	rows, err := conn.QueryContext(context.Background(), "EXPLAIN (FORMAT TEXT) "+query, args...)
	return postgresPlanLines(t, query, rows, err)
}

// postgresPlanLines returns the plan PostgreSQL's EXPLAIN of query answered with rows
// (or err), one line a row.
func postgresPlanLines(t testing.TB, query string, rows *sql.Rows, err error) string {
	t.Helper()
	if err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatalf("explain %s: %v", query, err)
		}
		lines = append(lines, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	return strings.Join(lines, "\n")
}

// postgresSort matches a plan node that sorts (not the "Sort Key" of a node).
var postgresSort = regexp.MustCompile(`(?m)^\s*(->\s+)?(Incremental )?Sort\s+\(cost=`)

// postgresReads reports whether PostgreSQL's plan reads a.table by a's index.
func postgresReads(plan string, a access) bool {
	return regexp.MustCompile(`(using|on) ` + regexp.QuoteMeta(a.postgres) + `\b`).MatchString(plan)
}

// TestConsoleQueryPlansUseIndexesOnPostgres: the same queries on PostgreSQL, with
// sequential scans and sorts disabled. PostgreSQL still scans a table or sorts when
// nothing else answers the query — at a cost of 10^10 — so on an empty database (where
// it would otherwise happily sort its few estimated rows) a Seq Scan in the plan means
// no index serves the query, and a Sort that no index gives the order of the page. The
// searches that may sort are planned with sorts allowed, so that the planner chooses as
// it would.
func TestConsoleQueryPlansUseIndexesOnPostgres(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, postgresTestDSN(t, "kooflow_plans"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	for _, c := range consolePlanCases(s) {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("SET enable_sort = %t", c.sorts)); err != nil {
			t.Fatal(err)
		}
		plan := postgresPlan(t, conn, s.rebind(c.query), c.args...)
		if strings.Contains(plan, "Seq Scan") {
			t.Errorf("%s scans a table:\n%s\n%s", c.name, c.query, plan)
		}
		if !c.sorts && postgresSort.MatchString(plan) {
			t.Errorf("%s sorts instead of reading in index order:\n%s\n%s", c.name, c.query, plan)
		}
		if !readsAny(c.reads, func(a access) bool { return postgresReads(plan, a) }) {
			t.Errorf("%s does not read by %+v:\n%s\n%s", c.name, c.reads, c.query, plan)
		}
	}
}
