package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/kooflow/kooflow/store"
)

// TestAuditLogAppendsFiltersAndPrunes: entries are listed newest first, found by actor,
// result and any of their subjects; pruning removes entries and deliveries past the
// retention and keeps the rest.
func TestAuditLogAppendsFiltersAndPrunes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		old := time.Now().Add(-500 * 24 * time.Hour)
		for _, e := range []store.AuditEntry{
			{At: old, Actor: "alice", Via: "cli", Action: "retry", Subjects: []string{"inst-1", "expire/koogallery/inst-1/p"}, Result: store.AuditOK},
			{Actor: "bob", Via: "console", Action: "expire", Subjects: []string{"inst-2"}, Result: store.AuditFailed, Detail: "not expired"},
			{Actor: "alice", Via: "cli", Action: "retry", Subjects: []string{"expire/koogallery/inst-1/p", "expire/koogallery/inst-1/p"}, Result: store.AuditOK},
		} {
			if _, err := s.AppendAudit(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			f    store.AuditFilter
			want int
		}{
			{store.AuditFilter{}, 3},
			{store.AuditFilter{Actor: "alice"}, 2},
			{store.AuditFilter{Result: store.AuditFailed}, 1},
			{store.AuditFilter{Subjects: []string{"expire/koogallery/inst-1/p"}}, 2},
			{store.AuditFilter{Subjects: []string{"inst-2", "inst-1"}}, 2},
			{store.AuditFilter{Since: time.Now().Add(-time.Hour)}, 2},
			{store.AuditFilter{Until: time.Now().Add(-time.Hour)}, 1},
		} {
			got, err := s.AuditEntries(ctx, c.f)
			if err != nil || len(got) != c.want {
				t.Errorf("AuditEntries(%+v) = %d entries, %v; want %d", c.f, len(got), err, c.want)
			}
		}
		newest, err := s.AuditEntries(ctx, store.AuditFilter{Limit: 1})
		if err != nil || len(newest) != 1 || newest[0].Actor != "alice" || len(newest[0].Subjects) != 2 {
			t.Fatalf("newest entry = %+v, %v", newest, err)
		}
		for _, at := range []time.Time{old, time.Now()} {
			if _, err := s.RecordDelivery(ctx, store.Delivery{Source: "koogallery", ReceivedAt: at, Subject: "inst-1", Outcome: store.DeliveryAccepted, Answer: "000000"}); err != nil {
				t.Fatal(err)
			}
		}
		deliveries, audit, err := s.PruneRecords(ctx, time.Now().Add(-400*24*time.Hour))
		if err != nil || deliveries != 1 || audit != 1 {
			t.Fatalf("pruned %d deliveries and %d audit entries, %v; want 1 and 1", deliveries, audit, err)
		}
		if got, _ := s.AuditEntries(ctx, store.AuditFilter{Subjects: []string{"inst-1"}}); len(got) != 0 {
			t.Fatalf("a pruned entry is still found by its subject: %+v", got)
		}
		if got, _ := s.Deliveries(ctx, store.DeliveryFilter{}); len(got) != 1 {
			t.Fatalf("deliveries after pruning = %+v", got)
		}
	})
}

// TestHostileTextIsRecorded: a call with bytes that are not UTF-8, or a NUL, is recorded
// on both databases (PostgreSQL refuses such text as it is), each bad byte as U+FFFD; an
// audit entry with such arguments too.
func TestHostileTextIsRecorded(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		hostile := "inst-\xff\x00x"
		if _, err := s.RecordDelivery(ctx, store.Delivery{Source: "koogallery", Activity: "expireInstance", Subject: hostile, Outcome: store.DeliveryRefused,
			Reason: store.RefusedMalformed, Answer: "000002", Detail: hostile, Request: "instanceId=" + hostile}); err != nil {
			t.Fatalf("record a hostile delivery: %v", err)
		}
		ds, err := s.Deliveries(ctx, store.DeliveryFilter{})
		if err != nil || len(ds) != 1 || ds[0].Subject != "inst-\uFFFD\uFFFDx" {
			t.Fatalf("deliveries = %+v, %v", ds, err)
		}
		if _, err := s.AppendAudit(ctx, store.AuditEntry{Actor: "a", Via: "console", Action: "retry", Args: hostile, Subjects: []string{hostile}, Result: store.AuditFailed}); err != nil {
			t.Fatalf("audit hostile arguments: %v", err)
		}
	})
}
