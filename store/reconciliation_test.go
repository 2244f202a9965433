package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/store"
)

func TestReconciliationRecords(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := s.Run(ctx, "2026-10"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing run: %v", err)
		}
		run := store.ReconciliationRun{Cycle: "2026-10", State: store.RunBuilding}
		if err := s.SaveRun(ctx, run); err != nil {
			t.Fatal(err)
		}
		run.State, run.BatchNo, run.Counts = store.RunCompleted, "B1", map[string]int{"1": 2}
		if err := s.SaveRun(ctx, run); err != nil {
			t.Fatal(err)
		}
		got, err := s.Run(ctx, "2026-10")
		if err != nil || got.State != store.RunCompleted || got.BatchNo != "B1" || got.Counts["1"] != 2 {
			t.Fatalf("run = %+v, %v", got, err)
		}

		if _, err := s.BatchFor(ctx, "2026-10", "abc"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("batch before upload: %v", err)
		}
		for i := 0; i < 2; i++ {
			if err := s.RecordBatch(ctx, "2026-10", "abc", "B1"); err != nil {
				t.Fatal(err)
			}
		}
		if b, err := s.BatchFor(ctx, "2026-10", "abc"); err != nil || b != "B1" {
			t.Fatalf("batch = %q, %v", b, err)
		}

		page := []store.Discrepancy{
			{BatchNo: "B1", Cycle: "2026-10", Seq: 0, DiffType: "1", CarrierOrderID: "CO-1", Raw: `{"carrierOrderId":"CO-1","diffType":"1","x":1}`},
			{BatchNo: "B1", Cycle: "2026-10", Seq: 1, DiffType: "3", CarrierOrderID: "CO-2", Raw: `{"carrierOrderId":"CO-2","diffType":"3"}`},
		}
		for i := 0; i < 2; i++ { // fetching a page again stores nothing twice
			if err := s.SaveDiscrepancies(ctx, page); err != nil {
				t.Fatal(err)
			}
		}
		counts, err := s.CountDiscrepancies(ctx, "B1")
		if err != nil || counts["1"] != 1 || counts["3"] != 1 {
			t.Fatalf("counts = %v, %v", counts, err)
		}
		var order []string
		err = s.EachDiscrepancy(ctx, "B1", func(d store.Discrepancy) error {
			order = append(order, d.CarrierOrderID+":"+d.Raw)
			return nil
		})
		if err != nil || len(order) != 2 || order[0] != "CO-1:"+page[0].Raw {
			t.Fatalf("discrepancies = %v, %v", order, err)
		}
	})
}

// TestEveryRunOfACycleIsKept: each run of a cycle (Temporal's run ID) has a row of its
// own with the paths of its files, saved again and again as it progresses without
// becoming a second row; the cycle's latest run is the one started last, and the list
// shows every cycle's runs newest first.
func TestEveryRunOfACycleIsKept(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		clock := time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC)
		s.SetNowForTest(func() time.Time { return clock })
		at := func(d time.Duration) { clock = time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC).Add(d) }

		first := store.ReconciliationRun{Cycle: "2026-10", WorkflowID: "reconcile/2026-10", RunID: "run-a", State: store.RunBuilding}
		if err := s.SaveRun(ctx, first); err != nil {
			t.Fatal(err)
		}
		at(time.Minute)
		first.State, first.StatementPath, first.StatementRows = store.RunPolling, "/data/reconciliation/2026-10/run-a/statement-2026-10.xlsx", 3
		if err := s.SaveRun(ctx, first); err != nil {
			t.Fatal(err)
		}
		at(2 * time.Minute)
		first.State, first.BatchNo = store.RunCompleted, "B1"
		first.ReportPath, first.Counts = "/data/reconciliation/2026-10/run-a/discrepancies-2026-10.xlsx", map[string]int{"1": 1, "3": 2}
		for range 2 { // a retried save changes nothing, not even when the run finished
			if err := s.SaveRun(ctx, first); err != nil {
				t.Fatal(err)
			}
			at(3 * time.Minute)
		}

		at(24 * time.Hour) // the next day: kooflow reconcile --cycle 2026-10 --force
		again := store.ReconciliationRun{Cycle: "2026-10", WorkflowID: "reconcile/2026-10", RunID: "run-b", State: store.RunBuilding}
		if err := s.SaveRun(ctx, again); err != nil {
			t.Fatal(err)
		}
		at(24*time.Hour + time.Minute)
		again.State, again.StatementPath, again.Error = store.RunFailed, "/data/reconciliation/2026-10/run-b/statement-2026-10.xlsx", "upload statement: boom"
		if err := s.SaveRun(ctx, again); err != nil {
			t.Fatal(err)
		}
		at(48 * time.Hour) // an older cycle reconciled later still
		older := store.ReconciliationRun{Cycle: "2026-09", WorkflowID: "reconcile/2026-09", RunID: "run-c", State: store.RunPolling}
		if err := s.SaveRun(ctx, older); err != nil {
			t.Fatal(err)
		}

		runs, err := s.Runs(ctx, store.RunFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range runs {
			got = append(got, r.Cycle+"/"+r.RunID+":"+r.State)
		}
		if strings.Join(got, " ") != "2026-09/run-c:polling 2026-10/run-b:failed 2026-10/run-a:completed" {
			t.Fatalf("runs newest first = %v", got)
		}
		a := runs[2]
		if a.StatementPath != first.StatementPath || a.ReportPath != first.ReportPath || a.StatementRows != 3 || a.BatchNo != "B1" ||
			a.Counts["3"] != 2 || a.WorkflowID != "reconcile/2026-10" {
			t.Fatalf("the first run = %+v", a)
		}
		start := time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC)
		if !a.CreatedAt.Equal(start) || !a.FinishedAt.Equal(start.Add(2*time.Minute)) || !a.UpdatedAt.Equal(start.Add(3*time.Minute)) {
			t.Fatalf("the first run started %s, finished %s, updated %s", a.CreatedAt, a.FinishedAt, a.UpdatedAt)
		}
		if b := runs[1]; b.StatementPath != again.StatementPath || b.ReportPath != "" || b.Error != again.Error ||
			!b.FinishedAt.Equal(start.Add(24*time.Hour+time.Minute)) || runs[0].FinishedAt != (time.Time{}) {
			t.Fatalf("the --force run = %+v, the running one = %+v", b, runs[0])
		}

		if latest, err := s.Run(ctx, "2026-10"); err != nil || latest.RunID != "run-b" {
			t.Fatalf("latest run of 2026-10 = %+v, %v", latest, err)
		}
		if latest, err := s.LatestRun(ctx); err != nil || latest.Cycle != "2026-10" || latest.RunID != "run-b" {
			t.Fatalf("latest run of the latest cycle = %+v, %v", latest, err)
		}
		if done, ok, err := s.LastCompletedRun(ctx); err != nil || !ok || done.RunID != "run-a" {
			t.Fatalf("last completed run = %+v, %v, %v", done, ok, err)
		}
		if runs, err := s.Runs(ctx, store.RunFilter{Cycle: "2026-10", Limit: 1}); err != nil || len(runs) != 1 || runs[0].RunID != "run-b" {
			t.Fatalf("one run of 2026-10 = %+v, %v", runs, err)
		}
	})
}

// TestNoRunYet: with no run at all the latest run is not found and the list is empty.
func TestNoRunYet(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := s.LatestRun(ctx); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("latest run of an empty store: %v", err)
		}
		if runs, err := s.Runs(ctx, store.RunFilter{}); err != nil || len(runs) != 0 {
			t.Fatalf("runs = %+v, %v", runs, err)
		}
		if _, ok, err := s.LastCompletedRun(ctx); ok || err != nil {
			t.Fatalf("last completed run: %v, %v", ok, err)
		}
	})
}

// TestStatementStatusIsTheStatusAtTheCycleEnd: the statement lists each subscription with
// the status it had when the cycle ended, whatever happened to it since.
func TestStatementStatusIsTheStatusAtTheCycleEnd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		start, end := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
		before, during, after := start.AddDate(0, 0, -10), start.AddDate(0, 0, 10), end.AddDate(0, 0, 10)
		clock := before.AddDate(0, -1, 0)
		s.SetNowForTest(func() time.Time { return clock })
		expire := end.AddDate(0, 3, 0)
		names := []string{"active", "frozen-during", "frozen-after", "released-after", "frozen-during-renewed-after",
			"frozen-during-released-after", "frozen-before-unfrozen-during", "released-during", "frozen-at-the-end", "refrozen-after", "frozen-across-the-end"}
		subs := make([]store.Subscription, len(names))
		for i, n := range names {
			subs[i] = store.Subscription{InstanceID: n, CarrierUserID: "u-" + n, PackageID: "p", CarrierOrderID: "CO-" + n, ExpireTime: expire}
		}
		if _, err := s.UpsertSubscriptions(ctx, subs); err != nil {
			t.Fatal(err)
		}
		id := map[string]int64{}
		for _, n := range names {
			sub, err := s.SubscriptionByInstance(ctx, n)
			if err != nil {
				t.Fatal(err)
			}
			id[n] = sub.ID
		}
		must := func(_ bool, err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		freeze := func(n, period string) { t.Helper(); must(s.Freeze(ctx, id[n], period, false)) }
		set := func(n, status string) { t.Helper(); must(s.SetStatus(ctx, id[n], status, "test")) }
		renew := func(n string) {
			t.Helper()
			res, err := s.Renew(ctx, id[n], expire.AddDate(1, 0, 0), "R-"+n, clock)
			if err != nil || !res.Unfrozen {
				t.Fatalf("renew %s: %+v, %v", n, res, err)
			}
		}

		clock = before
		freeze("frozen-before-unfrozen-during", "p1")
		clock = during
		freeze("frozen-during", "p1")
		freeze("frozen-during-renewed-after", "p1")
		freeze("frozen-during-released-after", "p1")
		freeze("refrozen-after", "p1")
		set("frozen-before-unfrozen-during", store.StatusActive)
		set("released-during", store.StatusReleased)
		clock = end.Add(-time.Millisecond)
		freeze("frozen-at-the-end", "p1")
		// A freeze whose row is stamped a moment before the end and whose event at it:
		// the event says when it happened.
		stamps := []time.Time{end.Add(-time.Millisecond), end} // the row's, then the event's
		s.SetNowForTest(func() time.Time {
			t := stamps[0]
			if len(stamps) > 1 {
				stamps = stamps[1:]
			}
			return t
		})
		freeze("frozen-across-the-end", "p1")
		s.SetNowForTest(func() time.Time { return clock })
		clock = end // from here on, after the cycle
		freeze("frozen-after", "p1")
		clock = after
		set("released-after", store.StatusReleased)
		renew("frozen-during-renewed-after")
		set("frozen-during-released-after", store.StatusReleased)
		set("refrozen-after", store.StatusActive)
		freeze("refrozen-after", "p2")

		got := map[string]string{}
		err := s.EachStatementCandidate(ctx, start, end, func(c store.StatementCandidate) error {
			got[strings.TrimPrefix(c.CarrierOrderID, "CO-")] = c.Status
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"active": "active", "frozen-during": "frozen", "frozen-after": "active", "released-after": "active",
			"frozen-during-renewed-after": "frozen", "frozen-during-released-after": "frozen", "frozen-before-unfrozen-during": "active",
			"released-during": "released", "frozen-at-the-end": "frozen", "refrozen-after": "frozen", "frozen-across-the-end": "active",
		}
		for n, status := range want {
			if got[n] != status {
				t.Errorf("%s: status %q in the statement of 2026-10, want %q", n, got[n], status)
			}
		}
		if len(got) != len(want) {
			t.Errorf("statement candidates = %v", got)
		}

		// The next cycle sees today's statuses (nothing changed after it), and a
		// subscription released before a cycle is not in it.
		got = map[string]string{}
		next := end.AddDate(0, 1, 0)
		if err := s.EachStatementCandidate(ctx, next, next.AddDate(0, 1, 0), func(c store.StatementCandidate) error {
			got[strings.TrimPrefix(c.CarrierOrderID, "CO-")] = c.Status
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if _, ok := got["released-after"]; ok || got["frozen-after"] != "frozen" || got["frozen-during-renewed-after"] != "active" || got["refrozen-after"] != "frozen" {
			t.Errorf("statement candidates of 2026-12 = %v", got)
		}
	})
}

// TestDiscrepanciesComeWithTheRegistrysPackage: every discrepancy is read with the package
// the registry has for its carrier order (the same carrier user's first), and none when
// the registry does not know the order.
func TestDiscrepanciesComeWithTheRegistrysPackage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := s.UpsertSubscriptions(ctx, []store.Subscription{
			{InstanceID: "i1", CarrierUserID: "u1", PackageID: "pkg-50GB", CarrierOrderID: "CO-1"},
			{InstanceID: "i2", CarrierUserID: "u2", PackageID: "pkg-1TB", CarrierOrderID: "CO-2"},
			{InstanceID: "i3", CarrierUserID: "u3", PackageID: "pkg-other-user", CarrierOrderID: "CO-2"},
			{InstanceID: "i4", CarrierUserID: "u4", PackageID: "pkg-no-order"},
		}); err != nil {
			t.Fatal(err)
		}
		page := []store.Discrepancy{
			{BatchNo: "B1", Cycle: "2026-10", Seq: 0, DiffType: "1", CarrierOrderID: "CO-KD-ONLY", CarrierUserID: "u9", Raw: `{"carrierOrderId":"CO-KD-ONLY"}`},
			{BatchNo: "B1", Cycle: "2026-10", Seq: 1, DiffType: "2", CarrierOrderID: "CO-1", CarrierUserID: "u1", Raw: `{"carrierOrderId":"CO-1"}`},
			{BatchNo: "B1", Cycle: "2026-10", Seq: 2, DiffType: "3", CarrierOrderID: "CO-2", CarrierUserID: "u2", Raw: `{"carrierOrderId":"CO-2"}`},
			{BatchNo: "B1", Cycle: "2026-10", Seq: 3, DiffType: "3", CarrierOrderID: "", CarrierUserID: "u4", Raw: `{"carrierUserId":"u4"}`},
		}
		if err := s.SaveDiscrepancies(ctx, page); err != nil {
			t.Fatal(err)
		}
		var got []string
		if err := s.EachDiscrepancy(ctx, "B1", func(d store.Discrepancy) error {
			got = append(got, d.CarrierOrderID+"="+d.PackageID)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, " ") != "CO-KD-ONLY= CO-1=pkg-50GB CO-2=pkg-1TB =" {
			t.Fatalf("packages = %v", got)
		}
	})
}
