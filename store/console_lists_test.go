package store_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/store"
)

// TestConsoleListsSelectAndOrder: the expirations list keeps test rehearsals out unless
// asked, in a state or across all, newest or oldest first and paged; a search's state
// keeps only the subjects' expirations in it; the overview's counts keep rehearsals
// apart. (The queries were reshaped to read in index order, see
// console_plan_internal_test.go: these are the results they must keep.)
func TestConsoleListsSelectAndOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
		s.SetNowForTest(func() time.Time { return now })
		if _, err := s.UpsertSubscriptions(ctx, []store.Subscription{{InstanceID: "i1", CarrierUserID: "u1", PackageID: "p1"}}); err != nil {
			t.Fatal(err)
		}
		sub, err := s.SubscriptionByInstance(ctx, "i1")
		if err != nil {
			t.Fatal(err)
		}
		// e1 … e5 change a minute apart, in this order: e2 and e4 are rehearsals.
		for i, e := range []struct {
			subject, source, state string
			test                   bool
		}{
			{"i1", "koogallery", store.StateStalled, false},
			{"i1", "koogallery", store.StateStalled, true},
			{"i2", "smarthub", store.StateReserved, false},
			{"i2", "koogallery", store.StateReserved, true},
			{"i3", "koogallery", store.StateStalled, false},
		} {
			now = now.Add(time.Minute)
			wf := "e" + string(rune('1'+i))
			if _, err := s.RecordExpiration(ctx, store.Expiration{WorkflowID: wf, Source: e.source, Subject: e.subject, Period: "p",
				SubscriptionID: sub.ID, CarrierUserID: "u1", PackageID: "p1", Test: e.test, State: e.state}); err != nil {
				t.Fatal(err)
			}
		}
		list := func(q store.ExpirationQuery) string {
			t.Helper()
			rows, more, err := s.ListExpirations(ctx, q)
			if err != nil {
				t.Fatalf("%+v: %v", q, err)
			}
			var ids []string
			for _, e := range rows {
				ids = append(ids, e.WorkflowID)
			}
			if more {
				ids = append(ids, "…")
			}
			return strings.Join(ids, " ")
		}
		for _, c := range []struct {
			q    store.ExpirationQuery
			want string
		}{
			{store.ExpirationQuery{}, "e5 e3 e1"},
			{store.ExpirationQuery{Test: true}, "e5 e4 e3 e2 e1"},
			{store.ExpirationQuery{Test: true, OldestFirst: true, Limit: 2}, "e1 e2 …"},
			{store.ExpirationQuery{Test: true, OldestFirst: true, Limit: 2, Offset: 2}, "e3 e4 …"},
			{store.ExpirationQuery{Test: true, OldestFirst: true, Limit: 2, Offset: 4}, "e5"},
			{store.ExpirationQuery{States: []string{store.StateStalled}}, "e5 e1"},
			{store.ExpirationQuery{States: []string{store.StateStalled}, Test: true, OldestFirst: true}, "e1 e2 e5"},
			{store.ExpirationQuery{States: []string{store.StateReserved}, Test: true}, "e4 e3"},
			{store.ExpirationQuery{Source: "koogallery", Test: true}, "e5 e4 e2 e1"},
			{store.ExpirationQuery{Subjects: []string{"i1", "i2"}}, "e3 e1"},
			{store.ExpirationQuery{Subjects: []string{"i1", "i2"}, States: []string{store.StateStalled}}, "e1"},
			{store.ExpirationQuery{Subjects: []string{"i1", "i2"}, States: []string{store.StateStalled}, Test: true}, "e2 e1"},
			{store.ExpirationQuery{Subjects: []string{"i2"}, States: []string{store.StateStalled}}, ""},
		} {
			if got := list(c.q); got != c.want {
				t.Errorf("ListExpirations(%+v) = %q, want %q", c.q, got, c.want)
			}
		}
		counts, err := s.CountExpirations(ctx)
		want := store.ExpirationCounts{Live: map[string]int{store.StateStalled: 2, store.StateReserved: 1},
			Test: map[string]int{store.StateStalled: 1, store.StateReserved: 1}}
		if err != nil || !reflect.DeepEqual(counts, want) {
			t.Errorf("CountExpirations = %+v, %v; want %+v", counts, err, want)
		}
		if err := s.SetExpirationState(ctx, "e4", store.StateRenewed, ""); err != nil {
			t.Fatal(err)
		}
		counts, err = s.CountExpirations(ctx)
		want.Test = map[string]int{store.StateStalled: 1, store.StateRenewed: 1}
		if err != nil || !reflect.DeepEqual(counts, want) {
			t.Errorf("CountExpirations after a rehearsal is renewed = %+v, %v; want %+v", counts, err, want)
		}
	})
}

// TestLogWindowsKeepTheNewestIDs: a time window of the delivery log or the audit log
// lists the rows received in it, highest id first — also when rows were written out of
// the order of their times (the window's earliest row is not its lowest id, and a row
// written after the window's rows may be older than the window).
func TestLogWindowsKeepTheNewestIDs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := time.Now()
		// In id order: received 50 min ago, 55 min ago, 3 h ago (outside), 5 min ago.
		ages := []time.Duration{50 * time.Minute, 55 * time.Minute, 3 * time.Hour, 5 * time.Minute}
		for i, age := range ages {
			subject := "d" + string(rune('1'+i))
			if _, err := s.RecordDelivery(ctx, store.Delivery{Source: "koogallery", ReceivedAt: now.Add(-age), Subject: subject, Outcome: store.DeliveryAccepted}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.AppendAudit(ctx, store.AuditEntry{At: now.Add(-age), Actor: "alice", Via: "cli", Action: subject, Result: store.AuditOK}); err != nil {
				t.Fatal(err)
			}
		}
		since := now.Add(-time.Hour)
		for _, c := range []struct {
			limit int
			want  string
		}{{0, "d4 d2 d1"}, {2, "d4 d2"}} {
			ds, err := s.Deliveries(ctx, store.DeliveryFilter{Since: since, Limit: c.limit})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range ds {
				got = append(got, d.Subject)
			}
			if strings.Join(got, " ") != c.want {
				t.Errorf("deliveries of the last hour (limit %d) = %v, want %s", c.limit, got, c.want)
			}
			es, err := s.AuditEntries(ctx, store.AuditFilter{Since: since, Limit: c.limit})
			if err != nil {
				t.Fatal(err)
			}
			got = nil
			for _, e := range es {
				got = append(got, e.Action)
			}
			if strings.Join(got, " ") != c.want {
				t.Errorf("audit entries of the last hour (limit %d) = %v, want %s", c.limit, got, c.want)
			}
		}
		if ds, err := s.Deliveries(ctx, store.DeliveryFilter{Since: now.Add(time.Minute)}); err != nil || len(ds) != 0 {
			t.Errorf("deliveries of an empty window = %+v, %v", ds, err)
		}
	})
}
