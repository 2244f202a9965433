package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kooflow/kooflow/koogallery"
	"github.com/kooflow/kooflow/store"
)

func TestExpirationEndToEnd(t *testing.T) {
	e := newEnv(t)
	expire := time.Date(2026, 10, 31, 16, 0, 0, 0, time.UTC)
	e.importSubscriptions(store.Subscription{InstanceID: "inst-e2e-1", OrderID: "CS-inst-e2e-1", CarrierUserID: "user-e2e-1", PackageID: "pkg-50GB", ExpireTime: expire})
	const workflowID = "expire/koogallery/inst-e2e-1/20261031160000"

	// KooDrive fails the first attempts, so the duplicates below arrive mid-run.
	e.kd.FailNext(3, 503)
	first := e.expire("inst-e2e-1", nil)
	if first.HTTPStatus != 200 || first.Result.ResultCode != koogallery.Success {
		t.Fatalf("first delivery: %+v", first)
	}
	var wg sync.WaitGroup
	dups := make([]answer, 3)
	for i := range dups {
		wg.Add(1)
		go func() { defer wg.Done(); dups[i] = e.expire("inst-e2e-1", nil) }()
	}
	wg.Wait()
	rec := e.waitState(workflowID, store.StateReserved, 60*time.Second)
	dups = append(dups, e.expire("inst-e2e-1", nil), e.expire("inst-e2e-1", nil))
	for i, a := range dups {
		if a.Result.ResultCode != koogallery.Success {
			t.Errorf("duplicate %d: %+v", i, a)
		}
	}

	got := e.notificationsFor("user-e2e-1")
	if len(got) != 1 || got[0].PackageID != "pkg-50GB" || got[0].Type != 2 {
		t.Fatalf("KooDrive notifications = %+v, want exactly one type-2 for pkg-50GB", got)
	}
	if n := e.frozenEvents("inst-e2e-1"); n != 1 {
		t.Fatalf("subscription frozen %d times, want 1", n)
	}
	if rec.Attempts != 4 {
		t.Errorf("attempts = %d, want 4 (3 injected failures + 1)", rec.Attempts)
	}
	status, err := e.app.Starter.Status(context.Background(), workflowID)
	if err != nil || status.State != store.StateReserved || status.Attempts != 4 {
		t.Fatalf("query = %+v, %v", status, err)
	}
	// One workflow execution for the expiry, however many deliveries.
	if execs := e.waitListed(`WorkflowId = "`+workflowID+`"`, 30*time.Second); len(execs) != 1 {
		t.Fatalf("executions = %v", execs)
	}
	deliveries, err := e.app.Store.Deliveries(context.Background(), store.DeliveryFilter{Subjects: []string{"inst-e2e-1"}, Limit: 100})
	if err != nil || len(deliveries) != 6 {
		t.Fatalf("deliveries = %d, %v", len(deliveries), err)
	}
	for _, d := range deliveries {
		if strings.Contains(d.Request, "authToken") {
			t.Fatalf("stored delivery keeps the authToken: %s", d.Request)
		}
	}
	e.recordHistory(workflowID, "expiration-retried-activity")
	if logs := e.logs.String(); strings.Contains(logs, testKey) || strings.Contains(logs, kooDriveToken) {
		t.Fatal("a secret reached the logs")
	}
}

func TestBadRequestsGetSpecificCodes(t *testing.T) {
	e := newEnv(t)
	e.importSubscriptions(store.Subscription{InstanceID: "inst-known", CarrierUserID: "u", PackageID: "p"})
	good := koogallery.Params{"activity": "expireInstance", "instanceId": "inst-known", "orderId": "CS1", "timeStamp": "20261123083000123"}

	cases := []struct {
		name string
		path string
		want koogallery.ResultCode
	}{
		{"wrong key", "/koogallery/produce?" + koogallery.SignedQuery("not-the-key", good), koogallery.AuthFailed},
		{"no token", "/koogallery/produce?activity=expireInstance&instanceId=inst-known&orderId=CS1&timeStamp=20261123083000123", koogallery.AuthFailed},
		{"tampered", "/koogallery/produce?" + strings.Replace(koogallery.SignedQuery(testKey, good), "inst-known", "inst-other", 1), koogallery.AuthFailed},
		{"unsupported activity", "/koogallery/produce?" + koogallery.SignedQuery(testKey, with(good, "activity", "upgradeInstance")), koogallery.InvalidParam},
		{"duplicate parameter", "/koogallery/produce?" + koogallery.SignedQuery(testKey, good) + "&instanceId=x", koogallery.InvalidParam},
		{"oversize query", "/koogallery/produce?" + koogallery.SignedQuery(testKey, good) + "&pad=" + strings.Repeat("a", koogallery.MaxQueryBytes), koogallery.InvalidParam},
		{"sql-looking id", "/koogallery/produce?" + koogallery.SignedQuery(testKey, with(good, "instanceId", "x' OR '1'='1")), koogallery.InvalidParam},
		{"invalid UTF-8", "/koogallery/produce?" + koogallery.SignedQuery(testKey, with(good, "instanceId", "inst-\xff")), koogallery.InvalidParam},
		{"space for plus in token", "/koogallery/produce?" + strings.ReplaceAll(koogallery.SignedQuery(testKey, good), "%2B", "%20"), koogallery.AuthFailed},
		{"timestamp not a time", "/koogallery/produce?" + koogallery.SignedQuery(testKey, with(good, "timeStamp", "not-a-time")), koogallery.InvalidParam},
		{"V2 without signature", "/koogallery/produce", koogallery.AuthFailed},
	}
	subsBefore, _ := e.app.Store.SubscriptionByInstance(context.Background(), "inst-known")
	for _, c := range cases {
		if c.name == "V2 without signature" {
			continue
		}
		before := e.deliveryCount()
		if a := e.get(c.path); a.Result.ResultCode != c.want || a.HTTPStatus != 200 {
			t.Errorf("%s: %+v, want %s", c.name, a, c.want)
		}
		// Every refusal leaves exactly one row in the delivery log, saying so.
		if after := e.deliveryCount(); after != before+1 {
			t.Errorf("%s: %d delivery rows written, want 1", c.name, after-before)
		} else if d := e.newestDelivery(); d.Outcome != store.DeliveryRefused || d.Reason == "" || d.Answer != string(c.want) {
			t.Errorf("%s: delivery = %+v, want refused with its kind and answer %s", c.name, d, c.want)
		}
	}
	// V2 requests whose timestamp is far in the past or future, or unsigned, or oversized.
	body := []byte(`{"activity":"updateInstanceStatus","instanceId":"inst-known","status":"FREEZE"}`)
	for name, ts := range map[string]string{"an hour ago": stampMillis(time.Now().Add(-time.Hour)), "tomorrow": stampMillis(time.Now().Add(24 * time.Hour)), "year 1970": "0000000001000"} {
		url := fmt.Sprintf("/koogallery/produce?signature=%s&timestamp=%s&nonce=n-%s", koogallery.V2Signature(testKey, "n-"+strings.ReplaceAll(name, " ", ""), ts, body), ts, strings.ReplaceAll(name, " ", ""))
		if a := e.post(url, body); a.Result.ResultCode != koogallery.AuthFailed {
			t.Errorf("V2 timestamp %s: %+v", name, a)
		}
	}
	if a := e.post("/koogallery/produce", body); a.Result.ResultCode != koogallery.AuthFailed {
		t.Errorf("unsigned V2: %+v", a)
	}
	if a := e.post("/koogallery/produce", bytes.Repeat([]byte("x"), koogallery.MaxV2Body+1)); a.Result.ResultCode != koogallery.InvalidParam {
		t.Errorf("oversized body: %+v", a)
	}
	if subsAfter, _ := e.app.Store.SubscriptionByInstance(context.Background(), "inst-known"); subsAfter != subsBefore {
		t.Errorf("hostile requests changed the registry: %+v -> %+v", subsBefore, subsAfter)
	}
	if a := e.expire("", map[string]string{"instanceId": ""}); a.Result.ResultCode != koogallery.InvalidParam || !strings.Contains(a.Result.ResultMsg, "instanceId") {
		t.Errorf("missing instanceId: %+v", a)
	}
	if a := e.expire("inst-unknown", nil); a.Result.ResultCode != koogallery.InstanceNotFound {
		t.Errorf("unknown instance: %+v", a)
	}
	exps, _ := e.app.Store.Expirations(context.Background(), store.ExpirationFilter{})
	if len(exps) != 0 || e.kd.Calls() != 0 {
		t.Fatalf("bad requests started %d expirations and %d KooDrive calls", len(exps), e.kd.Calls())
	}
	e.assertNoCredentialStored(testKey)
}

// deliveryCount is how many rows the delivery log holds.
func (e *env) deliveryCount() int {
	e.t.Helper()
	ds, err := e.app.Store.Deliveries(context.Background(), store.DeliveryFilter{Limit: 1_000_000})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(ds)
}

// newestDelivery is the delivery log's newest row.
func (e *env) newestDelivery() store.Delivery {
	e.t.Helper()
	ds, err := e.app.Store.Deliveries(context.Background(), store.DeliveryFilter{Limit: 1})
	if err != nil || len(ds) != 1 {
		e.t.Fatalf("newest delivery: %+v, %v", ds, err)
	}
	return ds[0]
}

// assertNoCredentialStored checks that no stored delivery keeps a credential: neither the
// key nor an authToken or signature parameter; on SQLite the database file itself is
// searched for the key.
func (e *env) assertNoCredentialStored(key string) {
	e.t.Helper()
	ds, err := e.app.Store.Deliveries(context.Background(), store.DeliveryFilter{Limit: 1_000_000})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, d := range ds {
		if strings.Contains(d.Request, key) || strings.Contains(d.Request, "authToken=") || strings.Contains(d.Request, "signature=") {
			e.t.Errorf("a stored delivery keeps a credential: %+v", d)
		}
	}
	if path, ok := strings.CutPrefix(e.db, "sqlite:"); ok {
		for _, f := range []string{path, path + "-wal"} {
			if data, err := os.ReadFile(f); err == nil && bytes.Contains(data, []byte(key)) {
				e.t.Errorf("%s holds the seller key", f)
			}
		}
	}
}

func stampMillis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// post sends a V2-style POST and checks the answer's Body-Sign.
func (e *env) post(pathAndQuery string, body []byte) answer {
	e.t.Helper()
	resp, err := http.Post(e.app.WebhookURL+pathAndQuery, "application/json", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if err := koogallery.VerifyBodySignHeader(testKey, resp.Header.Get("Body-Sign"), raw); err != nil {
		e.t.Fatalf("answer %s: %v", raw, err)
	}
	a := answer{HTTPStatus: resp.StatusCode}
	if err := json.Unmarshal(raw, &a.Result); err != nil {
		e.t.Fatalf("answer %s: %v", raw, err)
	}
	return a
}

func with(p koogallery.Params, k, v string) koogallery.Params {
	out := koogallery.Params{}
	for key, val := range p {
		out[key] = val
	}
	out[k] = v
	return out
}

func TestTestFlagRunsWithoutTouchingKooDrive(t *testing.T) {
	e := newEnv(t)
	e.importSubscriptions(store.Subscription{InstanceID: "inst-test", CarrierUserID: "u-test", PackageID: "p"})
	if a := e.expire("inst-test", map[string]string{"testFlag": "1"}); a.Result.ResultCode != koogallery.Success {
		t.Fatalf("test call: %+v", a)
	}
	rec := e.waitState("expire/koogallery/inst-test/current/test", store.StateReserved, 30*time.Second)
	e.recordHistory("expire/koogallery/inst-test/current/test", "expiration-test-flag")
	if !rec.Test || e.kd.Calls() != 0 || e.frozenEvents("inst-test") != 0 {
		t.Fatalf("test run: record %+v, KooDrive calls %d, frozen %d", rec, e.kd.Calls(), e.frozenEvents("inst-test"))
	}
	// The real expiry afterwards is not blocked by the rehearsal.
	if a := e.expire("inst-test", nil); a.Result.ResultCode != koogallery.Success {
		t.Fatalf("real call: %+v", a)
	}
	e.waitState("expire/koogallery/inst-test/current", store.StateReserved, 30*time.Second)
	if n := len(e.notificationsFor("u-test")); n != 1 {
		t.Fatalf("notifications = %d", n)
	}
}

func TestRejectedExpirationStallsUntilOperatorRetry(t *testing.T) {
	e := newEnv(t)
	e.importSubscriptions(store.Subscription{InstanceID: "inst-stall", CarrierUserID: "u-stall", PackageID: "p"})
	e.kd.RejectWith("10020001", "carrier is not whitelisted")
	if a := e.expire("inst-stall", nil); a.Result.ResultCode != koogallery.Success {
		t.Fatalf("delivery: %+v", a)
	}
	const id = "expire/koogallery/inst-stall/current"
	rec := e.waitState(id, store.StateStalled, 30*time.Second)
	if !strings.Contains(rec.LastError, "not whitelisted") {
		t.Fatalf("stalled record = %+v", rec)
	}
	ctx := context.Background()
	// The store said stalled; Temporal's visibility indexes the search attribute after.
	if execs := e.waitListed(`KooflowState = "stalled" AND KooflowInstanceId = "inst-stall"`, 30*time.Second); len(execs) != 1 {
		t.Fatalf("search by KooflowState: %v", execs)
	}
	e.kd.ClearFaults()
	if err := e.app.Starter.Retry(ctx, id); err != nil {
		t.Fatal(err)
	}
	e.waitState(id, store.StateReserved, 30*time.Second)
	if err := e.app.Starter.Retry(ctx, id); err == nil {
		t.Fatal("retrying a reserved expiration was accepted")
	}
	e.recordHistory(id, "expiration-stalled-then-retried")
	if n := len(e.notificationsFor("u-stall")); n != 1 {
		t.Fatalf("notifications = %d", n)
	}
	// One log line per fact: the workflow's, with the reason.
	if n := strings.Count(e.logs.String(), "Expiration stalled; waiting for an operator's retry"); n != 1 {
		t.Fatalf("%d log lines about the stall, want 1", n)
	}
}

func TestRestartResumesWithoutSendingTwice(t *testing.T) {
	e := newEnv(t)
	e.importSubscriptions(store.Subscription{InstanceID: "inst-restart", CarrierUserID: "u-restart", PackageID: "p"})
	e.kd.FailWhile(func() bool { return true }, 503)
	if a := e.expire("inst-restart", nil); a.Result.ResultCode != koogallery.Success {
		t.Fatalf("delivery: %+v", a)
	}
	const id = "expire/koogallery/inst-restart/current"
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec, err := e.app.Store.Expiration(context.Background(), id)
		if err == nil && rec.Attempts >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed attempts recorded: %+v %v", rec, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.stop()
	e.kd.ClearFaults()
	e.start()
	e.waitState(id, store.StateReserved, 60*time.Second)
	if n := len(e.notificationsFor("u-restart")); n != 1 {
		t.Fatalf("notifications after restart = %d, want 1", n)
	}
	if n := e.frozenEvents("inst-restart"); n != 1 {
		t.Fatalf("frozen %d times", n)
	}
	// A late retry of the same delivery after the restart is still recognised.
	if a := e.expire("inst-restart", nil); a.Result.ResultCode != koogallery.Success {
		t.Fatalf("late duplicate: %+v", a)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(e.notificationsFor("u-restart")); n != 1 {
		t.Fatalf("notifications after late duplicate = %d", n)
	}
}
