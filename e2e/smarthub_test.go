package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kooflow/kooflow/devapp"
	"github.com/kooflow/kooflow/smarthub"
	"github.com/kooflow/kooflow/store"
)

type push struct {
	EventID   string            `json:"eventId"`
	DatePush  string            `json:"datePush"`
	Signature string            `json:"signature"`
	EventType string            `json:"eventType"`
	Data      map[string]string `json:"data"`
}

func expiredPush(eventID, iccid, pkg string) push {
	p := push{EventID: eventID, DatePush: "2026-11-01T08:00:00.000Z", EventType: "RULE_TRIGGERED", Data: map[string]string{
		"ruleName": "expiry", "triggerDate": "2026-11-01 08:00:00", "gIccid": iccid, "triggerType": "SERVICE_PACKAGE_EXPIRED",
		"packageCode": pkg, "packageName": pkg, "activateDate": "2026-10-01T08:00:00+0000", "validThru": "2026-11-01T08:00:00+0000",
	}}
	p.Signature = smarthub.Sign(smartHubKey, p.EventID, p.DatePush)
	return p
}

// sendPush posts body with apiKey and returns the status and decoded answer.
func (e *env) sendPush(apiKey string, body any) (int, map[string]any) {
	e.t.Helper()
	raw, ok := body.([]byte)
	if !ok {
		raw, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest(http.MethodPost, e.app.WebhookURL+"/smarthub/events", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if apiKey != "" {
		req.Header.Set("X-API-Key", apiKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	var decoded map[string]any
	if err := json.Unmarshal(answer, &decoded); err != nil {
		e.t.Fatalf("answer %q is not JSON", answer)
	}
	return resp.StatusCode, decoded
}

// simWorkflowID is the workflow ID of a SIM package's expiry: it names the registry
// subscription, not the ICCID (a workflow ID is stored in clear in Temporal).
func (e *env) simWorkflowID(iccid, pkg, period string) string {
	e.t.Helper()
	sub, err := e.app.Store.SubscriptionBySIM(context.Background(), iccid, pkg)
	if err != nil {
		e.t.Fatal(err)
	}
	id := fmt.Sprintf("expire/smarthub/sub%d/%s", sub.ID, period)
	if strings.Contains(id, iccid) {
		e.t.Fatalf("workflow ID %s carries the ICCID", id)
	}
	return id
}

func TestSmartHubExpiryStartsOneExpiration(t *testing.T) {
	e := newEnv(t)
	e.importSubscriptions(store.Subscription{GIccid: "8986000000000000042", PackageCode: "PKG-60M", CarrierUserID: "user-sim", PackageID: "pkg-sim"})
	simWorkflowID := e.simWorkflowID("8986000000000000042", "PKG-60M", "20261101080000")
	p := expiredPush("ev-1", "8986000000000000042", "PKG-60M")
	for i := 0; i < 6; i++ {
		if status, body := e.sendPush(smartHubKey, p); status != 200 || len(body) != 0 {
			t.Fatalf("delivery %d: %d %v", i, status, body)
		}
	}
	e.waitState(simWorkflowID, store.StateReserved, 30*time.Second)
	// Another eventId for the same expiry (SmartHub re-fired the rule) is recognised too.
	if status, _ := e.sendPush(smartHubKey, expiredPush("ev-1b", "8986000000000000042", "PKG-60M")); status != 200 {
		t.Fatalf("second event: %d", status)
	}
	if got := e.notificationsFor("user-sim"); len(got) != 1 || got[0].PackageID != "pkg-sim" {
		t.Fatalf("notifications = %+v", got)
	}
	ev, err := e.app.Store.SmartHubEvent(context.Background(), "ev-1")
	if err != nil || ev.Status != store.EventStarted || ev.WorkflowID != simWorkflowID {
		t.Fatalf("event = %+v, %v", ev, err)
	}
}

func TestSmartHubRejectsBadCredentials(t *testing.T) {
	e := newEnv(t)
	e.importSubscriptions(store.Subscription{GIccid: "8986000000000000042", PackageCode: "PKG-60M", CarrierUserID: "u", PackageID: "p"})
	for _, key := range []string{"", "wrong-key"} {
		status, body := e.sendPush(key, expiredPush("ev-auth", "8986000000000000042", "PKG-60M"))
		if status != 401 || body["status"] != float64(401) || body["title"] == "" {
			t.Fatalf("key %q: %d %v", key, status, body)
		}
	}
	if events, _ := e.app.Store.SmartHubEvents(context.Background(), "", 10); len(events) != 0 {
		t.Fatalf("a refused push was stored: %+v", events)
	}
	if got := testutil.ToFloat64(e.app.Metrics.DeliveriesRejected.WithLabelValues("smarthub", "auth")); got != 2 {
		t.Fatalf("rejected-auth metric = %v", got)
	}
	exps, _ := e.app.Store.Expirations(context.Background(), store.ExpirationFilter{})
	if len(exps) != 0 {
		t.Fatal("a refused push started an expiration")
	}
}

func TestSmartHubEnforcedSignature(t *testing.T) {
	e := newEnvWith(t, func(o *devapp.Options) { o.SmartHubSignatureMode = smarthub.SignatureEnforce })
	e.importSubscriptions(store.Subscription{GIccid: "8986000000000000042", PackageCode: "PKG-60M", CarrierUserID: "u", PackageID: "p"})
	bad := expiredPush("ev-sig", "8986000000000000042", "PKG-60M")
	bad.Signature = strings.Repeat("0", 64)
	if status, _ := e.sendPush(smartHubKey, bad); status != 401 {
		t.Fatalf("bad signature: %d", status)
	}
	if status, _ := e.sendPush(smartHubKey, expiredPush("ev-sig", "8986000000000000042", "PKG-60M")); status != 200 {
		t.Fatalf("good signature: %d", status)
	}
}

func TestSmartHubUnmatchedThenReplayed(t *testing.T) {
	e := newEnv(t)
	if status, _ := e.sendPush(smartHubKey, expiredPush("ev-un", "8986000000000000099", "PKG-60M")); status != 200 {
		t.Fatalf("unmatched push: %d", status)
	}
	ctx := context.Background()
	unmatched, err := e.app.Store.SmartHubEvents(ctx, store.EventUnmatched, 10)
	if err != nil || len(unmatched) != 1 || unmatched[0].EventID != "ev-un" {
		t.Fatalf("unmatched = %+v, %v", unmatched, err)
	}
	if got := testutil.ToFloat64(e.app.Metrics.SmartHubUnmatched); got != 1 {
		t.Fatalf("unmatched metric = %v", got)
	}
	e.importSubscriptions(store.Subscription{GIccid: "8986000000000000099", PackageCode: "PKG-60M", CarrierUserID: "user-late", PackageID: "pkg-late"})
	_, res, err := e.app.Intake.AcceptSmartHubExpiry(ctx, unmatched[0], store.Delivery{})
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	e.waitState(res.WorkflowID, store.StateReserved, 30*time.Second)
	// SmartHub re-delivering the same push afterwards changes nothing.
	if status, _ := e.sendPush(smartHubKey, expiredPush("ev-un", "8986000000000000099", "PKG-60M")); status != 200 {
		t.Fatalf("re-delivery: %d", status)
	}
	if n := len(e.notificationsFor("user-late")); n != 1 {
		t.Fatalf("notifications = %d", n)
	}
}

func TestSmartHubOtherEventsAreStoredOnly(t *testing.T) {
	e := newEnv(t)
	p := push{EventID: "ev-imei", DatePush: "2026-11-01T16:00:00+0800", EventType: "RULE_TRIGGERED",
		Data: map[string]string{"triggerType": "IMEI_CHANGE", "gIccid": "8986000000000000042", "oldImei": "1", "newImei": "2"}}
	p.Signature = smarthub.Sign(smartHubKey, p.EventID, p.DatePush)
	if status, _ := e.sendPush(smartHubKey, p); status != 200 {
		t.Fatalf("status %d", status)
	}
	ev, err := e.app.Store.SmartHubEvent(context.Background(), "ev-imei")
	if err != nil || ev.Status != store.EventStored || !strings.Contains(ev.Raw, `"newImei":"2"`) {
		t.Fatalf("event = %+v, %v", ev, err)
	}
	if exps, _ := e.app.Store.Expirations(context.Background(), store.ExpirationFilter{}); len(exps) != 0 || e.kd.Calls() != 0 {
		t.Fatal("a non-expiry event started something")
	}
}

func TestSmartHubBadBodiesGet400NamingTheField(t *testing.T) {
	e := newEnv(t)
	cases := map[string][]byte{
		"JSON":      []byte(`{"eventId":`),
		"eventId":   []byte(`{"data":{}}`),
		"data":      []byte(`{"eventId":"e1"}`),
		"validThru": []byte(`{"eventId":"e1","data":{"triggerType":"SERVICE_PACKAGE_EXPIRED","gIccid":"1","packageCode":"P","validThru":"soon"}}`),
		"larger":    bytes.Repeat([]byte(" "), smarthub.MaxBodyBytes+10),
	}
	for field, body := range cases {
		status, answer := e.sendPush(smartHubKey, body)
		if status != 400 || !strings.Contains(answer["detail"].(string), field) {
			t.Errorf("%s: %d %v", field, status, answer)
		}
	}
}

func TestSmartHubAcceptsWhileTemporalIsDown(t *testing.T) {
	e := newEnv(t)
	e.importSubscriptions(store.Subscription{GIccid: "8986000000000000042", PackageCode: "PKG-60M", CarrierUserID: "u-down", PackageID: "p"})
	e.stopTemporal()
	if status, _ := e.sendPush(smartHubKey, expiredPush("ev-down", "8986000000000000042", "PKG-60M")); status != 200 {
		t.Fatalf("status %d, want 200: the expiry is queued in kooflow's store", status)
	}
	ev, err := e.app.Store.SmartHubEvent(context.Background(), "ev-down")
	if err != nil || ev.Status != store.EventStarted || ev.WorkflowID == "" {
		t.Fatalf("the push was not accepted: %+v, %v", ev, err)
	}
	e.startTemporal()
	e.waitState(ev.WorkflowID, store.StateReserved, 60*time.Second)
	if n := len(e.notificationsFor("u-down")); n != 1 {
		t.Fatalf("notifications = %d, want 1", n)
	}
}

// TestSmartHubOrderingGuardThroughTheWebhook: a late push for an older validThru period of
// a SIM package whose newer period was already reserved is answered success, starts
// nothing, freezes nothing again, tells KooDrive nothing, keeps the registry's frozen
// period and leaves an "ignored" event in the subscription's history; a duplicate of the
// newest period runs nothing twice; a genuinely newer period is a new expiration.
func TestSmartHubOrderingGuardThroughTheWebhook(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const iccid, pkg, user = "8986000000000000077", "PKG-ORD", "user-ordered"
	e.importSubscriptions(store.Subscription{InstanceID: "sim-ordered", GIccid: iccid, PackageCode: pkg, CarrierUserID: user, PackageID: "pkg-ordered"})
	pushFor := func(eventID, validThru string) push {
		p := expiredPush(eventID, iccid, pkg)
		p.Data["validThru"] = validThru
		return p
	}
	send := func(p push) {
		t.Helper()
		if status, body := e.sendPush(smartHubKey, p); status != 200 || len(body) != 0 {
			t.Fatalf("push %s: %d %v, want 200 {}", p.EventID, status, body)
		}
	}

	newest := e.simWorkflowID(iccid, pkg, "20261101080000")
	send(pushFor("ev-ord-nov", "2026-11-01T08:00:00+0000"))
	e.waitState(newest, store.StateReserved, 30*time.Second)
	frozenFor := func() string {
		t.Helper()
		sub, err := e.app.Store.SubscriptionBySIM(ctx, iccid, pkg)
		if err != nil {
			t.Fatal(err)
		}
		return sub.FrozenPeriod
	}
	if got := frozenFor(); got != "20261101080000" || e.frozenEvents("sim-ordered") != 1 || len(e.notificationsFor(user)) != 1 {
		t.Fatalf("after the November push: frozen for %q, %d frozen events, %d notifications", got, e.frozenEvents("sim-ordered"), len(e.notificationsFor(user)))
	}

	// October arrives late (SmartHub retried an old push).
	send(pushFor("ev-ord-oct", "2026-10-01T08:00:00+0000"))
	ev, err := e.app.Store.SmartHubEvent(ctx, "ev-ord-oct")
	if err != nil || ev.Status != store.EventStored || ev.WorkflowID != "" ||
		!strings.HasPrefix(ev.Detail, "ignored: validThru period 20261001080000 is older than this SIM package's latest known period 20261101080000") {
		t.Fatalf("the late push: %+v, %v", ev, err)
	}
	if exps, err := e.app.Store.Expirations(ctx, store.ExpirationFilter{Subject: iccid + "/" + pkg}); err != nil || len(exps) != 1 || exps[0].WorkflowID != newest {
		t.Fatalf("expirations after the late push: %+v, %v", exps, err)
	}
	if queued, err := e.app.Store.PendingIntents(ctx, iccid+"/"+pkg, 10); err != nil || len(queued) != 0 {
		t.Fatalf("the late push queued %+v, %v", queued, err)
	}
	if _, err := e.app.Client.DescribeWorkflowExecution(ctx, e.simWorkflowID(iccid, pkg, "20261001080000"), ""); err == nil {
		t.Fatal("a workflow was started for the older period")
	}
	sub, err := e.app.Store.SubscriptionBySIM(ctx, iccid, pkg)
	if err != nil {
		t.Fatal(err)
	}
	events, err := e.app.Store.Events(ctx, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	ignored := 0
	for _, h := range events {
		if h.Event == "ignored" && strings.Contains(h.Detail, "SmartHub event ev-ord-oct: validThru period 20261001080000 is older") {
			ignored++
		}
	}
	if ignored != 1 {
		t.Fatalf("history has %d ignored events for the late push: %+v", ignored, events)
	}

	// November again under another eventId: a duplicate, nothing runs twice.
	send(pushFor("ev-ord-nov-again", "2026-11-01T08:00:00+0000"))
	if ev, err := e.app.Store.SmartHubEvent(ctx, "ev-ord-nov-again"); err != nil || ev.WorkflowID != newest {
		t.Fatalf("the duplicate of the newest period: %+v, %v", ev, err)
	}

	// December is genuinely newer: a new expiration, frozen for December, told once more.
	december := e.simWorkflowID(iccid, pkg, "20261201080000")
	send(pushFor("ev-ord-dec", "2026-12-01T08:00:00+0000"))
	e.waitState(december, store.StateReserved, 30*time.Second)
	if got := frozenFor(); got != "20261201080000" {
		t.Fatalf("frozen for %q after December, want 20261201080000", got)
	}
	if n, f := len(e.notificationsFor(user)), e.frozenEvents("sim-ordered"); n != 2 || f != 2 {
		t.Fatalf("after November, a late October, a repeated November and December: %d notifications and %d frozen events, want 2 and 2", n, f)
	}
	if exps, err := e.app.Store.Expirations(ctx, store.ExpirationFilter{Subject: iccid + "/" + pkg}); err != nil || len(exps) != 2 {
		t.Fatalf("expirations: %+v, %v", exps, err)
	}
}
