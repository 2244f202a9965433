package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/kooflow/kooflow/koogallery"
	"github.com/kooflow/kooflow/store"
)

// lifecycleAnswer is a KooGallery answer with the activity-specific fields.
type lifecycleAnswer struct {
	ResultCode koogallery.ResultCode `json:"resultCode"`
	ResultMsg  string                `json:"resultMsg"`
	InstanceID string                `json:"instanceId"`
	Info       []struct {
		InstanceID string `json:"instanceId"`
	} `json:"info"`
}

// v1 sends a signed V1 GET with params (timeStamp added) and returns the verified answer.
func (e *env) v1(params koogallery.Params) lifecycleAnswer {
	e.t.Helper()
	params["timeStamp"] = time.Now().UTC().Format("20060102150405") + "000"
	return e.decode(http.Get(e.app.WebhookURL + "/koogallery/produce?" + koogallery.SignedQuery(testKey, params)))
}

var nonceSeq int

// v2 sends a signed V2 POST; nonce and timestamp default to fresh values.
func (e *env) v2(body map[string]string, nonce string, ts time.Time) lifecycleAnswer {
	e.t.Helper()
	raw, _ := json.Marshal(body)
	if nonce == "" {
		nonceSeq++
		nonce = fmt.Sprintf("nonce-%d-%d", time.Now().UnixNano(), nonceSeq)
	}
	stamp := strconv.FormatInt(ts.UnixMilli(), 10)
	url := fmt.Sprintf("%s/koogallery/produce?signature=%s&timestamp=%s&nonce=%s", e.app.WebhookURL,
		koogallery.V2Signature(testKey, nonce, stamp, raw), stamp, nonce)
	return e.decode(http.Post(url, "application/json;charset=utf8", bytes.NewReader(raw)))
}

func (e *env) decode(resp *http.Response, err error) lifecycleAnswer {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := koogallery.VerifyBodySignHeader(testKey, resp.Header.Get("Body-Sign"), body); err != nil {
		e.t.Fatalf("answer %s: %v", body, err)
	}
	var a lifecycleAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		e.t.Fatalf("answer %s: %v", body, err)
	}
	return a
}

func (e *env) mustSucceed(what string, a lifecycleAnswer) lifecycleAnswer {
	e.t.Helper()
	if a.ResultCode != koogallery.Success {
		e.t.Fatalf("%s: %+v", what, a)
	}
	return a
}

func (e *env) subscription(instance string) store.Subscription {
	e.t.Helper()
	sub, err := e.app.Store.SubscriptionByInstance(context.Background(), instance)
	if err != nil {
		e.t.Fatal(err)
	}
	return sub
}

func TestLifecyclePurchaseExpireStallRenew(t *testing.T) {
	e := newEnv(t)
	expired := time.Now().UTC().Add(-time.Minute).Format(koogallery.ExpireTimeLayout)
	purchase := koogallery.Params{"activity": "newInstance", "orderId": "CS-life-1", "businessId": "biz-life-1",
		"customerId": "cust-1", "productId": "prod-50GB", "expireTime": expired}
	first := e.mustSucceed("newInstance", e.v1(purchase))
	again := e.mustSucceed("newInstance again", e.v1(koogallery.Params{"activity": "newInstance", "orderId": "CS-life-1",
		"businessId": "biz-retry", "customerId": "cust-1", "productId": "prod-50GB", "expireTime": expired}))
	if first.InstanceID != "biz-life-1" || again.InstanceID != first.InstanceID {
		t.Fatalf("instance IDs %q then %q", first.InstanceID, again.InstanceID)
	}

	e.kd.RejectWith("10020001", "not whitelisted")
	expire := koogallery.Params{"activity": "expireInstance", "instanceId": "biz-life-1", "orderId": "CS-life-1"}
	e.mustSucceed("expire", e.v1(copyParams(expire)))
	e.mustSucceed("expire again", e.v1(copyParams(expire)))
	sub := e.subscription("biz-life-1")
	id := fmt.Sprintf("expire/koogallery/biz-life-1/%s", store.PeriodOf(sub))
	e.waitState(id, store.StateStalled, 30*time.Second)
	if got := e.subscription("biz-life-1"); got.Status != store.StatusFrozen || got.CarrierUserID != "cust-1" || got.PackageID != "prod-50GB" {
		t.Fatalf("after the expiry: %+v", got)
	}

	renewal := koogallery.Params{"activity": "refreshInstance", "instanceId": "biz-life-1", "orderId": "CS-renew-1",
		"expireTime": time.Now().UTC().AddDate(0, 1, 0).Format(koogallery.ExpireTimeLayout)}
	e.mustSucceed("refresh", e.v1(copyParams(renewal)))
	e.mustSucceed("refresh again", e.v1(copyParams(renewal)))
	e.waitState(id, store.StateRenewed, 30*time.Second)
	e.recordHistory(id, "expiration-renewed-while-stalled")
	if got := e.subscription("biz-life-1"); got.Status != store.StatusActive {
		t.Fatalf("after the renewal: %+v", got)
	}

	// A retry of the old expiry arriving now must not freeze the renewed instance.
	late := e.mustSucceed("late expiry", e.v1(copyParams(expire)))
	time.Sleep(time.Second)
	if got := e.subscription("biz-life-1"); got.Status != store.StatusActive || e.frozenEvents("biz-life-1") != 1 {
		t.Fatalf("after a late expiry (%s): %+v, frozen %d times", late.ResultMsg, got, e.frozenEvents("biz-life-1"))
	}
	if n := len(e.kd.Notifications()); n != 0 {
		t.Fatalf("KooDrive was notified %d times", n)
	}
	if a := e.v1(copyParams(koogallery.Params{"activity": "refreshInstance", "instanceId": "nope", "orderId": "o", "expireTime": renewal["expireTime"]})); a.ResultCode != koogallery.InstanceNotFound {
		t.Fatalf("refresh of an unknown instance: %+v", a)
	}
}

func TestLifecycleExpireReserveRelease(t *testing.T) {
	e := newEnv(t)
	expired := time.Now().UTC().Add(-time.Minute).Format(koogallery.ExpireTimeLayout)
	e.mustSucceed("newInstance", e.v1(koogallery.Params{"activity": "newInstance", "orderId": "CS-life-2", "businessId": "biz-life-2",
		"customerId": "cust-2", "productId": "prod-200GB", "expireTime": expired}))
	expire := koogallery.Params{"activity": "expireInstance", "instanceId": "biz-life-2", "orderId": "CS-life-2"}
	e.mustSucceed("expire", e.v1(copyParams(expire)))
	e.mustSucceed("expire again", e.v1(copyParams(expire)))
	e.waitState(fmt.Sprintf("expire/koogallery/biz-life-2/%s", store.PeriodOf(e.subscription("biz-life-2"))), store.StateReserved, 30*time.Second)
	release := koogallery.Params{"activity": "releaseInstance", "instanceId": "biz-life-2", "orderId": "CS-life-2"}
	e.mustSucceed("release", e.v1(copyParams(release)))
	e.mustSucceed("release again", e.v1(copyParams(release)))
	if got := e.subscription("biz-life-2"); got.Status != store.StatusReleased {
		t.Fatalf("after release: %+v", got)
	}
	if got := e.notificationsFor("cust-2"); len(got) != 1 || got[0].PackageID != "prod-200GB" {
		t.Fatalf("notifications = %+v", got)
	}
	events, _ := e.app.Store.Events(context.Background(), e.subscription("biz-life-2").ID)
	var released int
	for _, ev := range events {
		if ev.Event == "released" {
			released++
		}
	}
	if released != 1 {
		t.Fatalf("released %d times: %+v", released, events)
	}
}

func TestReleaseEndsARunningExpiration(t *testing.T) {
	e := newEnv(t)
	e.importSubscriptions(store.Subscription{InstanceID: "inst-rel", OrderID: "CS-rel", CarrierUserID: "u-rel", PackageID: "p"})
	e.kd.FailWhile(func() bool { return true }, 503)
	e.mustSucceed("expire", e.v1(koogallery.Params{"activity": "expireInstance", "instanceId": "inst-rel", "orderId": "CS-rel"}))
	e.waitState("expire/koogallery/inst-rel/current", store.StateNotifying, 30*time.Second)
	e.mustSucceed("release", e.v1(koogallery.Params{"activity": "releaseInstance", "instanceId": "inst-rel", "orderId": "CS-rel"}))
	e.waitState("expire/koogallery/inst-rel/current", store.StateReleased, 30*time.Second)
	status, err := e.app.Starter.Status(context.Background(), "expire/koogallery/inst-rel/current")
	if err != nil || status.State != store.StateReleased {
		t.Fatalf("workflow = %+v, %v", status, err)
	}
}

func TestV2Interface(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	// newInstance: V2 carries no carrier user or package, so the order must be imported first.
	purchase := map[string]string{"activity": "newInstance", "orderId": "CS-v2", "orderLineId": "CS-v2-000001", "businessId": "biz-v2"}
	if a := e.v2(purchase, "", now); a.ResultCode != koogallery.InternalError {
		t.Fatalf("newInstance before the order is imported: %+v", a)
	}
	e.importSubscriptions(store.Subscription{OrderID: "CS-v2", CarrierUserID: "u-v2", PackageID: "p-v2"})
	if a := e.mustSucceed("newInstance", e.v2(purchase, "", now)); a.InstanceID != "biz-v2" {
		t.Fatalf("instanceId = %q", a.InstanceID)
	}
	if a := e.mustSucceed("queryInstance", e.v2(map[string]string{"activity": "queryInstance", "instanceId": "biz-v2,unknown"}, "", now)); len(a.Info) != 1 || a.Info[0].InstanceID != "biz-v2" {
		t.Fatalf("queryInstance = %+v", a)
	}

	// Replayed nonce and stale timestamps are refused as authentication failures.
	freeze := map[string]string{"activity": "updateInstanceStatus", "instanceId": "biz-v2", "status": "FREEZE"}
	e.mustSucceed("FREEZE", e.v2(freeze, "fixed-nonce-1", now))
	if a := e.v2(freeze, "fixed-nonce-1", now); a.ResultCode != koogallery.AuthFailed {
		t.Fatalf("replayed nonce: %+v", a)
	}
	for _, ts := range []time.Time{time.Now().Add(-2 * time.Minute), time.Now().Add(2 * time.Minute)} {
		if a := e.v2(freeze, "", ts); a.ResultCode != koogallery.AuthFailed {
			t.Fatalf("timestamp %s: %+v", ts, a)
		}
	}
	e.waitState("expire/koogallery/biz-v2/current", store.StateReserved, 30*time.Second)
	if got := e.subscription("biz-v2"); got.Status != store.StatusFrozen {
		t.Fatalf("after FREEZE: %+v", got)
	}
	// The expiry took its time: what follows is sent now, within KooGallery's 60-second window.
	now = time.Now()
	e.mustSucceed("UNFREEZE", e.v2(map[string]string{"activity": "updateInstanceStatus", "instanceId": "biz-v2", "status": "UNFREEZE"}, "", now))
	if got := e.subscription("biz-v2"); got.Status != store.StatusActive {
		t.Fatalf("after UNFREEZE: %+v", got)
	}
	e.mustSucceed("release", e.v2(map[string]string{"activity": "releaseInstance", "instanceId": "biz-v2"}, "", now))
	if a := e.v2(map[string]string{"activity": "upgradeInstance", "instanceId": "biz-v2"}, "", now); a.ResultCode != koogallery.InvalidParam {
		t.Fatalf("unsupported activity: %+v", a)
	}
	if n := len(e.notificationsFor("u-v2")); n != 1 {
		t.Fatalf("notifications = %d", n)
	}
}

func copyParams(p koogallery.Params) koogallery.Params {
	out := koogallery.Params{}
	for k, v := range p {
		out[k] = v
	}
	return out
}
