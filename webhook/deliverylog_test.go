package webhook_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kooflow/kooflow/koogallery"
	"github.com/kooflow/kooflow/store"
)

// lastDeliveries returns the newest n rows of the delivery log.
func (w *intakeWorld) lastDeliveries(t *testing.T, n int) []store.Delivery {
	t.Helper()
	got, err := w.store.Deliveries(context.Background(), store.DeliveryFilter{Limit: n})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func (w *intakeWorld) deliveryCount(t *testing.T) int {
	t.Helper()
	return len(w.lastDeliveries(t, 1_000_000))
}

// TestEveryCallLeavesOneDeliveryRow: each call, hostile or not, KooGallery or SmartHub,
// leaves exactly one row in the delivery log with what kooflow made of it, and no
// credential reaches the store (the SQLite file is searched for the keys and tokens).
func TestEveryCallLeavesOneDeliveryRow(t *testing.T) {
	w := newIntakeWorld(t)
	ts := strings.ReplaceAll(time.Now().UTC().Format("20060102150405.000"), ".", "")
	signed := func(p koogallery.Params) string { return koogallery.SignedQuery(kooGalleryKey, p) }
	good := expireQuery(kooGalleryKey, "inst-1")
	forged := expiredPush("evt-forged")
	forged["signature"] = "0000"
	far := time.Now().AddDate(4, 0, 0).UTC()
	if _, err := w.store.UpsertSubscriptions(context.Background(), []store.Subscription{
		{InstanceID: "inst-2030", CarrierUserID: "user-3", PackageID: "pkg-3", ExpireTime: far},
	}); err != nil {
		t.Fatal(err)
	}
	var secrets []string
	kg := func(q string) func() {
		if v := strings.SplitN(q, "authToken=", 2); len(v) == 2 {
			secrets = append(secrets, strings.SplitN(v[1], "&", 2)[0])
		}
		return func() { w.kooGallery(t, q) }
	}
	sh := func(key string, body any) func() { return func() { w.smartHub(t, key, body) } }
	cases := []struct {
		name             string
		call             func()
		outcome, reason  string
		source, activity string
	}{
		{"accepted expiry", kg(good), store.DeliveryAccepted, "", "koogallery", "expireInstance"},
		{"duplicate expiry", kg(expireQuery(kooGalleryKey, "inst-1")), store.DeliveryDuplicate, "", "koogallery", "expireInstance"},
		{"registry says 2030", kg(expireQuery(kooGalleryKey, "inst-2030")), store.DeliveryConflict, "registry-date-conflict", "koogallery", "expireInstance"},
		{"wrong key", kg(expireQuery("another-key", "inst-1")), store.DeliveryRefused, store.RefusedAuth, "koogallery", "expireInstance"},
		{"malformed", kg(signed(koogallery.Params{"activity": "expireInstance", "instanceId": "inst-1", "orderId": "o", "timeStamp": "2026-11-01"})), store.DeliveryRefused, store.RefusedMalformed, "koogallery", "expireInstance"},
		{"unknown instance", kg(expireQuery(kooGalleryKey, "inst-404")), store.DeliveryRefused, store.RefusedUnknownInstance, "koogallery", "expireInstance"},
		{"oversize query", kg(good + "&pad=" + strings.Repeat("a", koogallery.MaxQueryBytes)), store.DeliveryRefused, store.RefusedOversize, "koogallery", ""},
		{"unknown activity", kg(signed(koogallery.Params{"activity": "deleteEverything", "instanceId": "inst-1", "timeStamp": ts})), store.DeliveryRefused, store.RefusedMalformed, "koogallery", "deleteEverything"},
		{"smarthub accepted", sh(smartHubKey, expiredPush("evt-1")), store.DeliveryAccepted, "", "smarthub", "SERVICE_PACKAGE_EXPIRED"},
		{"smarthub duplicate", sh(smartHubKey, expiredPush("evt-1")), store.DeliveryDuplicate, "", "smarthub", "SERVICE_PACKAGE_EXPIRED"},
		{"smarthub wrong key", sh("another-key", expiredPush("evt-2")), store.DeliveryRefused, store.RefusedAuth, "smarthub", ""},
		{"smarthub forged signature", sh(smartHubKey, forged), store.DeliveryRefused, store.RefusedAuth, "smarthub", "SERVICE_PACKAGE_EXPIRED"},
		{"smarthub malformed", sh(smartHubKey, []byte(`{"eventId":`)), store.DeliveryRefused, store.RefusedMalformed, "smarthub", ""},
		{"smarthub oversize", sh(smartHubKey, bytes.Repeat([]byte(" "), 64<<10+1)), store.DeliveryRefused, store.RefusedOversize, "smarthub", ""},
	}
	for _, c := range cases {
		before := w.deliveryCount(t)
		c.call()
		if after := w.deliveryCount(t); after != before+1 {
			t.Fatalf("%s: %d delivery rows written, want 1", c.name, after-before)
		}
		d := w.lastDeliveries(t, 1)[0]
		if d.Outcome != c.outcome || d.Reason != c.reason || d.Source != c.source || d.Activity != c.activity || d.Answer == "" || d.ReceivedAt.IsZero() {
			t.Errorf("%s: delivery = %+v, want outcome %q reason %q source %s activity %q", c.name, d, c.outcome, c.reason, c.source, c.activity)
		}
	}

	db, err := os.ReadFile(w.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if wal, err := os.ReadFile(w.dbPath + "-wal"); err == nil {
		db = append(db, wal...)
	}
	for _, secret := range append(secrets, kooGalleryKey, smartHubKey) {
		if secret != "" && bytes.Contains(db, []byte(secret)) {
			t.Errorf("the store holds a credential: %q", secret)
		}
	}
	if len(secrets) < 6 {
		t.Fatalf("only %d authTokens collected; the search proves nothing", len(secrets))
	}
}

// TestDeliveriesAreCountedBySourceAndOutcome: kooflow_deliveries_total counts each call
// once, under its outcome.
func TestDeliveriesAreCountedBySourceAndOutcome(t *testing.T) {
	w := newIntakeWorld(t)
	w.kooGallery(t, expireQuery(kooGalleryKey, "inst-1"))
	w.kooGallery(t, expireQuery(kooGalleryKey, "inst-1"))
	w.kooGallery(t, expireQuery("another-key", "inst-1"))
	w.smartHub(t, "another-key", expiredPush("evt-1"))
	for _, c := range []struct {
		source, outcome string
		want            float64
	}{
		{"koogallery", store.DeliveryAccepted, 1}, {"koogallery", store.DeliveryDuplicate, 1},
		{"koogallery", store.DeliveryRefused, 1}, {"smarthub", store.DeliveryRefused, 1},
		{"smarthub", store.DeliveryAccepted, 0}, {"koogallery", store.DeliveryConflict, 0},
	} {
		if got := w.counter(t, "kooflow_deliveries_total", c.source, c.outcome); got != c.want {
			t.Errorf("kooflow_deliveries_total{source=%q,outcome=%q} = %v, want %v", c.source, c.outcome, got, c.want)
		}
	}
}

// TestDeliveriesKeptWhileTheStoreIsDownAreRecordedWhenItIsBack: a row the store refuses is
// kept and written, with its original time, before the next row once the store answers.
func TestDeliveriesKeptWhileTheStoreIsDownAreRecordedWhenItIsBack(t *testing.T) {
	w := newIntakeWorld(t)
	w.records.down.Store(true)
	sent := time.Now()
	w.kooGallery(t, expireQuery("another-key", "inst-1"))
	if n := w.deliveryCount(t); n != 0 {
		t.Fatalf("%d rows written while the store refused them", n)
	}
	w.records.down.Store(false)
	w.kooGallery(t, expireQuery("another-key", "inst-1"))
	got := w.lastDeliveries(t, 10)
	if len(got) != 2 || got[1].ReceivedAt.Before(sent.Add(-time.Second)) || got[1].Outcome != store.DeliveryRefused {
		t.Fatalf("deliveries = %+v", got)
	}
}

// counter reads a counter of the router's metrics.
func (w *intakeWorld) counter(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	switch name {
	case "kooflow_deliveries_total":
		return testutil.ToFloat64(w.metrics.Deliveries.WithLabelValues(labels...))
	}
	t.Fatalf("no such counter %s", name)
	return 0
}
