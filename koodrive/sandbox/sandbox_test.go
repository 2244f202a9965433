package sandbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/koodrive/sandbox"
)

func setup(t *testing.T, clientNow func() time.Time) (*sandbox.Sandbox, *koodrive.Client, *httptest.Server) {
	sb := sandbox.New(sandbox.Options{AccessToken: "tok", UserID: "kd-user"})
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	c, err := koodrive.New(koodrive.Config{BaseURL: srv.URL, AccessToken: "tok", UserID: "kd-user", Now: clientNow})
	if err != nil {
		t.Fatal(err)
	}
	return sb, c, srv
}

func TestNotifyAccepted(t *testing.T) {
	sb, c, _ := setup(t, nil)
	if err := c.NotifyPackageExpire(context.Background(), "u1", "p1"); err != nil {
		t.Fatal(err)
	}
	got := sb.Notifications()
	if len(got) != 1 || got[0].CarrierUserID != "u1" || got[0].PackageID != "p1" || got[0].Type != 2 || len(got[0].TraceID) != 58 {
		t.Fatalf("notifications = %+v", got)
	}
	if r := sb.Rejections(); len(r) != 0 {
		t.Fatalf("rejections = %+v", r)
	}
}

func TestSandboxEnforcesHeaderRules(t *testing.T) {
	for name, now := range map[string]func() time.Time{
		"future X-Date": func() time.Time { return time.Now().Add(2 * time.Minute) },
		"stale X-Date":  func() time.Time { return time.Now().Add(-16 * time.Minute) },
	} {
		sb, c, _ := setup(t, now)
		err := c.NotifyPackageExpire(context.Background(), "u1", "p1")
		if err == nil || koodrive.IsRetryable(err) {
			t.Errorf("%s: err = %v, want a non-retryable rejection", name, err)
		}
		if len(sb.Notifications()) != 0 || len(sb.Rejections()) != 1 {
			t.Errorf("%s: notifications %d rejections %d", name, len(sb.Notifications()), len(sb.Rejections()))
		}
	}

	sb, _, srv := setup(t, nil)
	good := func() *http.Request {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+koodrive.NotifyPackageExpirePath, strings.NewReader(`{"carrierUserId":"u","type":2,"packageId":"p"}`))
		req.Header.Set("Authorization", "Bearer tok")
		req.Header.Set("X-Date", time.Now().UTC().Format(koodrive.XDateLayout))
		req.Header.Set("X-User-Id", "kd-user")
		req.Header.Set("Content-Type", "application/json")
		return req
	}
	cases := map[string]func(*http.Request){
		"wrong token":     func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") },
		"no bearer":       func(r *http.Request) { r.Header.Set("Authorization", "tok") },
		"no X-Date":       func(r *http.Request) { r.Header.Del("X-Date") },
		"RFC3339 X-Date":  func(r *http.Request) { r.Header.Set("X-Date", time.Now().UTC().Format(time.RFC3339)) },
		"wrong user":      func(r *http.Request) { r.Header.Set("X-User-Id", "other") },
		"short trace":     func(r *http.Request) { r.Header.Set("x-traceid", "abc") },
		"type as string":  func(r *http.Request) { setBody(r, `{"carrierUserId":"u","type":"2","packageId":"p"}`) },
		"type 1":          func(r *http.Request) { setBody(r, `{"carrierUserId":"u","type":1,"packageId":"p"}`) },
		"missing package": func(r *http.Request) { setBody(r, `{"carrierUserId":"u","type":2}`) },
		"extra field":     func(r *http.Request) { setBody(r, `{"carrierUserId":"u","type":2,"packageId":"p","x":1}`) },
		"form body":       func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") },
	}
	for name, mutate := range cases {
		req := good()
		mutate(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("%s: status %d, want a rejection", name, resp.StatusCode)
		}
	}
	if n := len(sb.Notifications()); n != 0 {
		t.Fatalf("%d notifications accepted from bad requests", n)
	}
}

func setBody(r *http.Request, body string) {
	r.Body = http.NoBody
	req, _ := http.NewRequest(r.Method, r.URL.String(), strings.NewReader(body))
	r.Body, r.ContentLength = req.Body, req.ContentLength
}

func TestInjectedFaultsAndClassification(t *testing.T) {
	sb, c, _ := setup(t, nil)
	ctx := context.Background()

	sb.FailNext(2, 0)
	for i := 0; i < 2; i++ {
		if err := c.NotifyPackageExpire(ctx, "u", "p"); err == nil || !koodrive.IsRetryable(err) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	if err := c.NotifyPackageExpire(ctx, "u", "p"); err != nil {
		t.Fatalf("after faults: %v", err)
	}

	sb.Throttle(1, 7*time.Second)
	err := c.NotifyPackageExpire(ctx, "u", "p")
	var kerr *koodrive.Error
	if !errors.As(err, &kerr) || !kerr.Retryable || kerr.RetryAfter != 7*time.Second {
		t.Fatalf("throttled: %#v", err)
	}

	sb.RejectWith("10020001", "carrier is not whitelisted")
	err = c.NotifyPackageExpire(ctx, "u", "p")
	if !errors.As(err, &kerr) || kerr.Retryable || kerr.Code != "10020001" || !strings.Contains(err.Error(), "whitelisted") {
		t.Fatalf("rejected: %v", err)
	}
	sb.ClearFaults()

	var down atomic.Bool
	down.Store(true)
	sb.FailWhile(down.Load, http.StatusBadGateway)
	if err := c.NotifyPackageExpire(ctx, "u", "p"); err == nil || !koodrive.IsRetryable(err) {
		t.Fatalf("outage: %v", err)
	}
	down.Store(false)
	if err := c.NotifyPackageExpire(ctx, "u", "p"); err != nil {
		t.Fatalf("after outage: %v", err)
	}
	if n := len(sb.Notifications()); n != 2 {
		t.Fatalf("accepted %d, want 2", n)
	}
}

func TestTransportErrorIsRetryable(t *testing.T) {
	_, c, srv := setup(t, nil)
	srv.Close()
	if err := c.NotifyPackageExpire(context.Background(), "u", "p"); err == nil || !koodrive.IsRetryable(err) {
		t.Fatalf("err = %v", err)
	}
}

func TestNewRequiresConfig(t *testing.T) {
	_, err := koodrive.New(koodrive.Config{BaseURL: "http://x"})
	if err == nil || !strings.Contains(err.Error(), "KOODRIVE_ACCESS_TOKEN") || !strings.Contains(err.Error(), "KOODRIVE_USER_ID") {
		t.Fatalf("err = %v", err)
	}
}

// TestFaultsCanBeSeen: GET /sandbox/faults shows the faults in force, POST answers with
// them, a body that sets no fault is refused with what to send, and another method is
// answered 405 naming the methods the path takes.
func TestFaultsCanBeSeen(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	sb := sandbox.New(sandbox.Options{AccessToken: "tok", UserID: "kd-user", Now: func() time.Time { return now }})
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	call := func(method, body string) (int, http.Header, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+"/sandbox/faults", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got map[string]any
		json.NewDecoder(resp.Body).Decode(&got)
		return resp.StatusCode, resp.Header, got
	}

	if status, _, got := call(http.MethodGet, ""); status != http.StatusOK || got["active"] != false || got["status"] != nil {
		t.Fatalf("no faults: %d %v", status, got)
	}
	status, _, got := call(http.MethodPost, `{"failForSeconds":120}`)
	if status != http.StatusOK || got["active"] != true || got["failSecondsLeft"] != 120.0 || got["status"] != 503.0 || got["failUntil"] != "2026-11-24T12:02:00Z" {
		t.Fatalf("POST an outage: %d %v", status, got)
	}
	call(http.MethodPost, `{"rejectCode":"10020001","rejectMsg":"not whitelisted"}`)
	status, _, got = call(http.MethodGet, "")
	if status != http.StatusOK || got["rejectCode"] != "10020001" || got["rejectMsg"] != "not whitelisted" || got["failSecondsLeft"] != 120.0 {
		t.Fatalf("GET both faults: %d %v", status, got)
	}
	for body, want := range map[string]string{
		`{}`:                          "no fault given",
		`{"failForSecond":120}`:       `unknown field "failForSecond"`,
		`{"failNext":-1}`:             "must not be negative",
		`{"failNext":1,"status":200}`: "not an HTTP error status",
		`{"rejectMsg":"x"}`:           "rejectMsg needs a rejectCode",
	} {
		if status, _, got := call(http.MethodPost, body); status != http.StatusBadRequest || !strings.Contains(fmt.Sprint(got["error"]), want) {
			t.Errorf("POST %s: %d %v, want 400 saying %q", body, status, got, want)
		}
	}
	if status, header, _ := call(http.MethodPut, `{}`); status != http.StatusMethodNotAllowed || !strings.Contains(header.Get("Allow"), "GET") || !strings.Contains(header.Get("Allow"), "DELETE") {
		t.Fatalf("PUT: %d, Allow %q", status, header.Get("Allow"))
	}
	if status, _, _ := call(http.MethodDelete, ""); status != http.StatusNoContent {
		t.Fatalf("DELETE: %d", status)
	}
	if status, _, got := call(http.MethodGet, ""); status != http.StatusOK || got["active"] != false || got["rejectCode"] != nil || got["status"] != nil {
		t.Fatalf("after DELETE: %d %v", status, got)
	}
}
