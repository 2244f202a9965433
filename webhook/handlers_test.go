package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kooflow/kooflow/koogallery"
	"github.com/kooflow/kooflow/metrics"
	"github.com/kooflow/kooflow/smarthub"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
	"github.com/kooflow/kooflow/webhook"
)

const (
	kooGalleryKey = "seller-key"
	smartHubKey   = "smarthub-api-key"
	iccid         = "8986000000000000042"
)

// recordingIntake is the real intake, with a count of what the handlers hand it and, when
// fail is set, an intake whose store has gone away.
type recordingIntake struct {
	real        *starter.Intake
	fail        error
	expiries    []string // workflow IDs handed to AcceptExpiry and AcceptSmartHubExpiry
	smartHubIDs []string // event IDs handed to AcceptSmartHubExpiry
	stops       []string // subject:reason handed to AcceptStop
}

// AcceptExpiry hands the expiry to the real intake unless fail is set.
func (i *recordingIntake) AcceptExpiry(ctx context.Context, v starter.Verdict, d store.Delivery, eventID string) (store.Acceptance, error) {
	i.expiries = append(i.expiries, v.WorkflowID)
	if i.fail != nil {
		return store.Acceptance{}, i.fail
	}
	return i.real.AcceptExpiry(ctx, v, d, eventID)
}

// AcceptStop hands the stop to the real intake unless fail is set.
func (i *recordingIntake) AcceptStop(ctx context.Context, source, subject, reason, detail string) (store.StopAcceptance, error) {
	i.stops = append(i.stops, subject+":"+reason)
	if i.fail != nil {
		return store.StopAcceptance{}, i.fail
	}
	return i.real.AcceptStop(ctx, source, subject, reason, detail)
}

// AcceptSmartHubExpiry hands the push to the real intake unless fail is set.
func (i *recordingIntake) AcceptSmartHubExpiry(ctx context.Context, ev store.SmartHubEvent, d store.Delivery) (starter.Verdict, store.Acceptance, error) {
	i.smartHubIDs = append(i.smartHubIDs, ev.EventID)
	if i.fail != nil {
		return starter.Verdict{}, store.Acceptance{}, i.fail
	}
	return i.real.AcceptSmartHubExpiry(ctx, ev, d)
}

// intakeWorld is the webhook's router on a real SQLite store whose registry holds the
// KooGallery instance inst-1 and the SIM package iccid/PKG-1, both expiring now.
type intakeWorld struct {
	// dbPath is the SQLite file of store.
	dbPath string
	store  *store.Store
	intake *recordingIntake
	router http.Handler
	// records is the store as the router sees it; records.down makes the delivery log's
	// writes fail as if the store had gone away.
	records *outageStore
	metrics *metrics.Metrics
}

// outageStore is the real store, whose delivery-log writes fail while down is set.
type outageStore struct {
	*store.Store
	down atomic.Bool
}

// RecordDelivery writes d unless the store is down.
func (s *outageStore) RecordDelivery(ctx context.Context, d store.Delivery) (int64, error) {
	if s.down.Load() {
		return 0, errors.New("database is unavailable")
	}
	return s.Store.RecordDelivery(ctx, d)
}

func newIntakeWorld(t *testing.T) *intakeWorld {
	t.Helper()
	dsn := storetest.SQLiteDSN(t)
	st := storetest.Open(t, dsn)
	now := time.Now().UTC().Truncate(time.Second)
	if _, err := st.UpsertSubscriptions(context.Background(), []store.Subscription{
		{InstanceID: "inst-1", CarrierUserID: "user-1", PackageID: "pkg-1", ExpireTime: now},
		{GIccid: iccid, PackageCode: "PKG-1", CarrierUserID: "user-2", PackageID: "pkg-2", ExpireTime: now},
	}); err != nil {
		t.Fatal(err)
	}
	in := &recordingIntake{real: &starter.Intake{Store: st}}
	records, m := &outageStore{Store: st}, metrics.New()
	router := webhook.NewRouter(webhook.Config{KooGalleryKey: kooGalleryKey, SmartHubAPIKey: smartHubKey,
		SmartHubSignatureMode: smarthub.SignatureEnforce, Store: records, Intake: in, Metrics: m, Logger: slog.New(slog.DiscardHandler)})
	return &intakeWorld{dbPath: strings.TrimPrefix(dsn, "sqlite:"), store: st, intake: in, router: router, records: records, metrics: m}
}

// expireQuery is a V1 expireInstance call for instance, signed with key.
func expireQuery(key, instance string) string {
	ts := strings.ReplaceAll(time.Now().UTC().Format("20060102150405.000"), ".", "")
	return koogallery.SignedQuery(key, koogallery.Params{"activity": "expireInstance", "instanceId": instance, "orderId": "order-1", "timeStamp": ts})
}

// kooGallery sends a V1 call and returns its result code, checking the answer is HTTP 200
// with a Body-Sign that verifies under the seller key.
func (w *intakeWorld) kooGallery(t *testing.T, rawQuery string) (koogallery.ResultCode, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	w.router.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/koogallery/produce?"+rawQuery, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("HTTP %d %s, KooGallery always gets 200", rec.Code, rec.Body)
	}
	if err := koogallery.VerifyBodySignHeader(kooGalleryKey, rec.Header().Get(koogallery.BodySignHeaderName), rec.Body.Bytes()); err != nil {
		t.Fatalf("Body-Sign of %s: %v", rec.Body, err)
	}
	var answer struct {
		ResultCode koogallery.ResultCode `json:"resultCode"`
		ResultMsg  string                `json:"resultMsg"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
		t.Fatalf("answer %s: %v", rec.Body, err)
	}
	return answer.ResultCode, answer.ResultMsg
}

// TestKooGallerySignedExpiryIsAcceptedOnce: a correctly signed expireInstance is handed to
// the intake once and committed (000000); its repeat is answered 000000 too and queues
// nothing more.
func TestKooGallerySignedExpiryIsAcceptedOnce(t *testing.T) {
	w := newIntakeWorld(t)
	q := expireQuery(kooGalleryKey, "inst-1")
	if code, msg := w.kooGallery(t, q); code != koogallery.Success {
		t.Fatalf("answer %s %q, want %s", code, msg, koogallery.Success)
	}
	if len(w.intake.expiries) != 1 || !strings.HasPrefix(w.intake.expiries[0], "expire/koogallery/inst-1/") {
		t.Fatalf("handed to the intake: %v, want one expiry of inst-1", w.intake.expiries)
	}
	rec, err := w.store.Expiration(context.Background(), w.intake.expiries[0])
	if err != nil || rec.State != store.StateAccepted || rec.CarrierUserID != "user-1" {
		t.Fatalf("store row = %+v, %v", rec, err)
	}
	if code, _ := w.kooGallery(t, expireQuery(kooGalleryKey, "inst-1")); code != koogallery.Success {
		t.Fatalf("repeat answered %s", code)
	}
	backlog, err := w.store.Backlog(context.Background())
	if err != nil || backlog.Pending != 1 {
		t.Fatalf("backlog after the repeat = %+v, %v; want one pending intent", backlog, err)
	}
}

// TestKooGalleryBadSignatureIsRefused: an authToken made with another key is answered
// 000001 and nothing reaches the intake.
func TestKooGalleryBadSignatureIsRefused(t *testing.T) {
	w := newIntakeWorld(t)
	if code, _ := w.kooGallery(t, expireQuery("another-key", "inst-1")); code != koogallery.AuthFailed {
		t.Fatalf("answer %s, want %s", code, koogallery.AuthFailed)
	}
	if len(w.intake.expiries) != 0 {
		t.Fatalf("handed to the intake: %v", w.intake.expiries)
	}
}

// TestKooGalleryIntakeFailureAsksForARetry: when the intake cannot commit, KooGallery
// gets 000005, so it retries.
func TestKooGalleryIntakeFailureAsksForARetry(t *testing.T) {
	w := newIntakeWorld(t)
	w.intake.fail = errors.New("database is locked")
	if code, msg := w.kooGallery(t, expireQuery(kooGalleryKey, "inst-1")); code != koogallery.InternalError || !strings.Contains(msg, "retry") {
		t.Fatalf("answer %s %q, want %s asking for a retry", code, msg, koogallery.InternalError)
	}
	if len(w.intake.expiries) != 1 {
		t.Fatalf("handed to the intake: %v", w.intake.expiries)
	}
}

// TestKooGalleryMalformedCallsAreRefused: calls that are not well-formed are answered
// 000002 (or 000003 for an unknown instance) and never reach the intake.
func TestKooGalleryMalformedCallsAreRefused(t *testing.T) {
	w := newIntakeWorld(t)
	ts := strings.ReplaceAll(time.Now().UTC().Format("20060102150405.000"), ".", "")
	for name, c := range map[string]struct {
		query string
		want  koogallery.ResultCode
	}{
		"bad timeStamp":    {koogallery.SignedQuery(kooGalleryKey, koogallery.Params{"activity": "expireInstance", "instanceId": "inst-1", "orderId": "o", "timeStamp": "2026-11-01"}), koogallery.InvalidParam},
		"bad testFlag":     {koogallery.SignedQuery(kooGalleryKey, koogallery.Params{"activity": "expireInstance", "instanceId": "inst-1", "orderId": "o", "timeStamp": ts, "testFlag": "2"}), koogallery.InvalidParam},
		"no orderId":       {koogallery.SignedQuery(kooGalleryKey, koogallery.Params{"activity": "expireInstance", "instanceId": "inst-1", "timeStamp": ts}), koogallery.InvalidParam},
		"bad instanceId":   {koogallery.SignedQuery(kooGalleryKey, koogallery.Params{"activity": "expireInstance", "instanceId": "inst 1/..", "orderId": "o", "timeStamp": ts}), koogallery.InvalidParam},
		"unknown activity": {koogallery.SignedQuery(kooGalleryKey, koogallery.Params{"activity": "deleteEverything", "instanceId": "inst-1", "timeStamp": ts}), koogallery.InvalidParam},
		"unknown instance": {expireQuery(kooGalleryKey, "inst-404"), koogallery.InstanceNotFound},
		"broken query":     {"activity=expireInstance&instanceId=%zz", koogallery.InvalidParam},
	} {
		t.Run(name, func(t *testing.T) {
			if code, msg := w.kooGallery(t, c.query); code != c.want {
				t.Fatalf("answer %s %q, want %s", code, msg, c.want)
			}
		})
	}
	if len(w.intake.expiries) != 0 {
		t.Fatalf("handed to the intake: %v", w.intake.expiries)
	}
}

// TestKooGalleryReleaseStopsTheQueuedExpiry: a signed releaseInstance hands a stop to the
// intake, which cancels the expiry still queued for the instance; when the intake cannot
// commit the stop, KooGallery gets 000005 and retries.
func TestKooGalleryReleaseStopsTheQueuedExpiry(t *testing.T) {
	w := newIntakeWorld(t)
	if code, _ := w.kooGallery(t, expireQuery(kooGalleryKey, "inst-1")); code != koogallery.Success {
		t.Fatalf("expiry answered %s", code)
	}
	ts := strings.ReplaceAll(time.Now().UTC().Format("20060102150405.000"), ".", "")
	release := koogallery.SignedQuery(kooGalleryKey, koogallery.Params{"activity": "releaseInstance", "instanceId": "inst-1", "orderId": "order-1", "timeStamp": ts})

	w.intake.fail = errors.New("database is locked")
	if code, msg := w.kooGallery(t, release); code != koogallery.InternalError || !strings.Contains(msg, "retry") {
		t.Fatalf("release with the intake failing answered %s %q, want %s", code, msg, koogallery.InternalError)
	}
	w.intake.fail = nil
	if code, msg := w.kooGallery(t, release); code != koogallery.Success {
		t.Fatalf("release answered %s %q", code, msg)
	}
	if got := strings.Join(w.intake.stops, ","); got != "inst-1:released,inst-1:released" {
		t.Fatalf("stops handed to the intake: %s", got)
	}
	rec, err := w.store.Expiration(context.Background(), w.intake.expiries[0])
	if err != nil || rec.State != store.StateReleased {
		t.Fatalf("queued expiry after the release = %+v, %v; want released", rec, err)
	}
	if backlog, err := w.store.Backlog(context.Background()); err != nil || backlog.Pending != 0 {
		t.Fatalf("backlog = %+v, %v; want nothing left to start", backlog, err)
	}
}

// expiredPush is a SmartHub package-expired push for the registered SIM package.
func expiredPush(eventID string) map[string]any {
	datePush := "2026-11-01T08:00:00.000Z"
	return map[string]any{"eventId": eventID, "datePush": datePush, "eventType": "RULE_TRIGGERED",
		"signature": smarthub.Sign(smartHubKey, eventID, datePush),
		"data": map[string]string{"triggerType": smarthub.TriggerPackageExpired, "gIccid": iccid, "packageCode": "PKG-1",
			"validThru": "2026-11-01T08:00:00+0000"}}
}

// smartHub posts body (JSON-encoded unless it is []byte) with apiKey and returns the
// status and the answer's body.
func (w *intakeWorld) smartHub(t *testing.T, apiKey string, body any) (int, string) {
	t.Helper()
	raw, ok := body.([]byte)
	if !ok {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req := httptest.NewRequest(http.MethodPost, "/smarthub/events", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", apiKey)
	rec := httptest.NewRecorder()
	w.router.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// TestSmartHubSignedExpiryIsAcceptedOnce: a signed package-expired push is answered 200 and
// handed to the intake once; the re-delivered push is recognised by its eventId.
func TestSmartHubSignedExpiryIsAcceptedOnce(t *testing.T) {
	w := newIntakeWorld(t)
	if status, body := w.smartHub(t, smartHubKey, expiredPush("evt-1")); status != http.StatusOK || body != "{}" {
		t.Fatalf("answer %d %s, want 200 {}", status, body)
	}
	if status, _ := w.smartHub(t, smartHubKey, expiredPush("evt-1")); status != http.StatusOK {
		t.Fatalf("re-delivery answered %d", status)
	}
	if got := strings.Join(w.intake.smartHubIDs, ","); got != "evt-1" {
		t.Fatalf("handed to the intake: %s, want evt-1 once", got)
	}
	exps, err := w.store.Expirations(context.Background(), store.ExpirationFilter{Subject: iccid + "/PKG-1", Limit: 10})
	if err != nil || len(exps) != 1 || exps[0].State != store.StateAccepted {
		t.Fatalf("expirations = %+v, %v", exps, err)
	}
}

// TestSmartHubRefusesBadCredentials: a wrong API key or (in enforce mode) a body
// signature that does not verify is answered 401, and nothing reaches the intake.
func TestSmartHubRefusesBadCredentials(t *testing.T) {
	w := newIntakeWorld(t)
	forged := expiredPush("evt-2")
	forged["signature"] = smarthub.Sign("another-key", "evt-2", "2026-11-01T08:00:00.000Z")
	for name, c := range map[string]struct {
		key  string
		body any
	}{
		"wrong API key":    {"another-key", expiredPush("evt-1")},
		"forged signature": {smartHubKey, forged},
	} {
		t.Run(name, func(t *testing.T) {
			if status, body := w.smartHub(t, c.key, c.body); status != http.StatusUnauthorized {
				t.Fatalf("answer %d %s, want 401", status, body)
			}
		})
	}
	if len(w.intake.smartHubIDs) != 0 {
		t.Fatalf("handed to the intake: %v", w.intake.smartHubIDs)
	}
}

// TestSmartHubIntakeFailureAsksForARetry: when the intake cannot commit, SmartHub gets 503
// and retries; the push itself was stored first.
func TestSmartHubIntakeFailureAsksForARetry(t *testing.T) {
	w := newIntakeWorld(t)
	w.intake.fail = errors.New("database is locked")
	if status, body := w.smartHub(t, smartHubKey, expiredPush("evt-1")); status != http.StatusServiceUnavailable || !strings.Contains(body, "retry") {
		t.Fatalf("answer %d %s, want 503 asking for a retry", status, body)
	}
	if len(w.intake.smartHubIDs) != 1 {
		t.Fatalf("handed to the intake: %v", w.intake.smartHubIDs)
	}
}

// TestSmartHubMalformedBodiesAreRefused: bodies that are not a valid push get 400 with a
// problem naming what is wrong, and never reach the intake.
func TestSmartHubMalformedBodiesAreRefused(t *testing.T) {
	w := newIntakeWorld(t)
	noValidThru := expiredPush("evt-3")
	delete(noValidThru["data"].(map[string]string), "validThru")
	noEventID := expiredPush("")
	for name, c := range map[string]struct {
		body   any
		detail string
	}{
		"not JSON":      {[]byte(`{"eventId":`), "not a JSON object"},
		"no eventId":    {noEventID, "eventId"},
		"no data":       {map[string]any{"eventId": "evt-4"}, "data"},
		"no validThru":  {noValidThru, "data.validThru"},
		"over 64 KiB":   {bytes.Repeat([]byte(" "), smarthub.MaxBodyBytes+1), "larger than"},
		"trailing data": {[]byte(`{"eventId":"evt-5","data":{}} {}`), "after the JSON object"},
	} {
		t.Run(name, func(t *testing.T) {
			status, body := w.smartHub(t, smartHubKey, c.body)
			if status != http.StatusBadRequest || !strings.Contains(body, c.detail) {
				t.Fatalf("answer %d %s, want 400 naming %q", status, body, c.detail)
			}
		})
	}
	if len(w.intake.smartHubIDs) != 0 {
		t.Fatalf("handed to the intake: %v", w.intake.smartHubIDs)
	}
}
