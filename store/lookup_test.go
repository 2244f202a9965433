package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
)

// seedLookup fills a registry with two instances and a SIM package of carrier user u1, a
// second package of the same SIM for u2, an instance whose carrier user id is its own
// instance ID, and an expiration for i1 and (a rehearsal) for the SIM 8986/PK1. It
// returns the registry ID of 8986/PK1.
func seedLookup(t *testing.T, s *store.Store) int64 {
	t.Helper()
	ctx := context.Background()
	if _, err := s.UpsertSubscriptions(ctx, []store.Subscription{
		{InstanceID: "i1", OrderID: "o1", CarrierOrderID: "co1", CarrierUserID: "u1", PackageID: "p1"},
		{InstanceID: "i2", OrderID: "o2", CarrierOrderID: "co2", CarrierUserID: "u1", PackageID: "p2"},
		{GIccid: "8986", PackageCode: "PK1", CarrierUserID: "u1", PackageID: "p3"},
		{GIccid: "8986", PackageCode: "PK2", CarrierUserID: "u2", PackageID: "p4"},
		{InstanceID: "self", CarrierUserID: "self", PackageID: "p5"},
	}); err != nil {
		t.Fatal(err)
	}
	i1, err := s.SubscriptionByInstance(ctx, "i1")
	if err != nil {
		t.Fatal(err)
	}
	sim, err := s.SubscriptionBySIM(ctx, "8986", "PK1")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []store.Expiration{
		{WorkflowID: "expire/koogallery/i1/20261031160000", Source: "koogallery", Subject: "i1", Period: "20261031160000", SubscriptionID: i1.ID, CarrierUserID: "u1", PackageID: "p1"},
		{WorkflowID: fmt.Sprintf("expire/smarthub/sub%d/20261031080000/test", sim.ID), Source: "smarthub", Subject: "8986/PK1", Period: "20261031080000",
			SubscriptionID: sim.ID, CarrierUserID: "u1", PackageID: "p3", Test: true},
	} {
		if _, err := s.RecordExpiration(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	return sim.ID
}

// found renders matches as "kind:subject" for comparison.
func found(ms []store.Match) string {
	var out []string
	for _, m := range ms {
		out = append(out, string(m.Kind)+":"+m.Subject)
	}
	return strings.Join(out, " ")
}

// TestFindSubscriptionsByEveryIdentifier: one lookup finds a subscription by each of the
// names operators have for it, lists every package of a carrier user or a SIM, reports a
// subscription named in several ways once (as the first kind), and finds nothing — no
// error — for an identifier that names nothing, a workflow ID that merely parses included.
func TestFindSubscriptionsByEveryIdentifier(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		simID := seedLookup(t, s)
		for _, tc := range []struct{ identifier, want string }{
			{"i1", "instanceId:i1"},
			{"expire/koogallery/i1/20261031160000", "workflowId:i1"},
			{fmt.Sprintf("expire/smarthub/sub%d/20261031080000/test", simID), "workflowId:8986/PK1"},
			{"8986/PK2", "gIccid/packageCode:8986/PK2"},
			{"8986", "gIccid:8986/PK1 gIccid:8986/PK2"},
			{"o2", "orderId:i2"},
			{"co1", "carrierOrderId:i1"},
			{"u1", "carrierUserId:i1 carrierUserId:i2 carrierUserId:8986/PK1"},
			{"u2", "carrierUserId:8986/PK2"},
			{"self", "instanceId:self"},
			{"nobody", ""},
			{"expire/koogallery/i2/20261031160000", ""},
			{"8986/PK9", ""},
			{"", "error"},
		} {
			ms, err := s.FindSubscriptions(ctx, tc.identifier, 0)
			got := found(ms)
			if err != nil {
				got = "error"
			}
			if got != tc.want {
				t.Errorf("FindSubscriptions(%q) = %q (%v), want %q", tc.identifier, got, err, tc.want)
			}
		}
		ms, err := s.FindSubscriptions(ctx, "u1", 2)
		if err != nil || found(ms) != "carrierUserId:i1 carrierUserId:i2" {
			t.Fatalf("u1 limited to 2: %q, %v", found(ms), err)
		}
		ms, err = s.FindSubscriptions(ctx, "co2", 0)
		if err != nil || len(ms) != 1 || ms[0].Subscription.InstanceID != "i2" || ms[0].Subscription.OrderID != "o2" ||
			ms[0].Subscription.CarrierUserID != "u1" || ms[0].Subscription.PackageID != "p2" || ms[0].Kind.Noun() != "carrier order id" {
			t.Fatalf("the whole subscription is returned: %+v, %v", ms, err)
		}
	})
}

// TestSmartHubEventsOfOneSIM: pushes are listed for one SIM (every package, or one) and
// status, newest first; a package without its SIM is refused.
func TestSmartHubEventsOfOneSIM(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, e := range []struct{ id, iccid, pkg, status string }{
			{"e1", "8986", "PK1", store.EventUnmatched},
			{"e2", "8986", "PK2", store.EventUnmatched},
			{"e3", "8986", "PK1", store.EventStarted},
			{"e4", "8999", "PK1", store.EventUnmatched},
		} {
			if _, _, err := s.RecordSmartHubEvent(ctx, store.SmartHubEvent{EventID: e.id, GIccid: e.iccid, PackageCode: e.pkg, Raw: "{}"}); err != nil {
				t.Fatal(err)
			}
			if err := s.SetSmartHubEventStatus(ctx, e.id, e.status, "", ""); err != nil {
				t.Fatal(err)
			}
		}
		ids := func(f store.SmartHubEventFilter) string {
			t.Helper()
			events, err := s.SmartHubEventsWhere(ctx, f)
			if err != nil {
				t.Fatalf("%+v: %v", f, err)
			}
			var out []string
			for _, e := range events {
				out = append(out, e.EventID)
			}
			return strings.Join(out, " ")
		}
		if got := ids(store.SmartHubEventFilter{Status: store.EventUnmatched, GIccid: "8986"}); got != "e1 e2" && got != "e2 e1" {
			t.Errorf("unmatched pushes of SIM 8986: %q", got)
		}
		if got := ids(store.SmartHubEventFilter{Status: store.EventUnmatched, GIccid: "8986", PackageCode: "PK1"}); got != "e1" {
			t.Errorf("unmatched pushes of 8986/PK1: %q", got)
		}
		if got := ids(store.SmartHubEventFilter{GIccid: "8986", PackageCode: "PK1"}); got != "e1 e3" && got != "e3 e1" {
			t.Errorf("every push of 8986/PK1: %q", got)
		}
		if got := ids(store.SmartHubEventFilter{Status: store.EventUnmatched, GIccid: "0000"}); got != "" {
			t.Errorf("pushes of an unknown SIM: %q", got)
		}
		if _, err := s.SmartHubEventsWhere(ctx, store.SmartHubEventFilter{PackageCode: "PK1"}); err == nil || !strings.Contains(err.Error(), "gIccid") {
			t.Errorf("a package without its SIM: %v", err)
		}
	})
}

// TestLookupsUseIndexesOnPostgres: in PostgreSQL's generic plans (what a prepared
// statement gets after a few executions) every kind FindSubscriptions tries, and the
// unmatched pushes of a SIM, are found by index; with sequential scans disabled, a lookup
// no index can serve would still show one.
func TestLookupsUseIndexesOnPostgres(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, storetest.PostgresDSN(t))
	conn, err := s.ConnForTest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{"SET plan_cache_mode = force_generic_plan", "SET enable_seqscan = off"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	plan := func(name, query string, args []any) string {
		t.Helper()
		if _, err := conn.ExecContext(ctx, "PREPARE "+name+" AS "+query); err != nil {
			t.Fatalf("prepare %s: %v", query, err)
		}
		var literals []string
		for _, a := range args {
			switch v := a.(type) {
			case string:
				literals = append(literals, "'"+strings.ReplaceAll(v, "'", "''")+"'")
			default:
				literals = append(literals, fmt.Sprint(v))
			}
		}
		rows, err := conn.QueryContext(ctx, "EXPLAIN EXECUTE "+name+"("+strings.Join(literals, ", ")+")")
		return store.PlanForTest(t, query, rows, err)
	}
	query, args := s.FindQueryForTest("8986/PK1", 10)
	got := plan("find", query, args)
	if strings.Contains(got, "Seq Scan") {
		t.Errorf("FindSubscriptions scans a table:\n%s", got)
	}
	for _, index := range []string{"subscriptions_instance_id_key", "expirations_pkey", "subscriptions_sim", "subscriptions_order",
		"subscriptions_carrier_order", "subscriptions_carrier_user"} {
		if !strings.Contains(got, " "+index+" ") && !strings.HasSuffix(got, " "+index) && !strings.Contains(got, " "+index+"\n") {
			t.Errorf("FindSubscriptions does not use index %s:\n%s", index, got)
		}
	}
	query, args = s.SmartHubEventsQueryForTest(store.SmartHubEventFilter{Status: store.EventUnmatched, GIccid: "8986"})
	if got := plan("pushes", query, args); strings.Contains(got, "Seq Scan") || !strings.Contains(got, "smarthub_events_sim") {
		t.Errorf("the unmatched pushes of a SIM are not found by index smarthub_events_sim:\n%s", got)
	}
}
