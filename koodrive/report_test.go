package koodrive_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kooflow/kooflow/koodrive"
)

// reports keeps what a client tells Config.Report and Config.Observe.
type reports struct {
	mu       sync.Mutex
	calls    []koodrive.Call
	observed []string
}

func (r *reports) report(c koodrive.Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
}

func (r *reports) observe(endpoint, outcome string, _ float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observed = append(r.observed, endpoint+" "+outcome)
}

func (r *reports) only(t *testing.T) koodrive.Call {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) != 1 || len(r.observed) != 1 {
		t.Fatalf("reported %+v and observed %v, want one call each", r.calls, r.observed)
	}
	if want := r.calls[0].Endpoint + " " + r.calls[0].Outcome; r.observed[0] != want {
		t.Fatalf("observed %q, reported %q", r.observed[0], want)
	}
	return r.calls[0]
}

// answering serves every request with status and body, which may quote the request's
// Authorization header where the body holds {{auth}}.
func answering(t *testing.T, status int, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(strings.ReplaceAll(body, "{{auth}}", r.Header.Get("Authorization"))))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func reportingClient(t *testing.T, url string, auth koodrive.Signer, r *reports) *koodrive.Client {
	t.Helper()
	c, err := koodrive.New(koodrive.Config{BaseURL: url, UserID: "kd-user", Auth: auth, Observe: r.observe, Report: r.report})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const quotedToken = "tok-3f9a1c77e2b84d0e9d55a1b2c3d4e5f6"

// TestReportSaysWhatKooDriveAnswered: every call is reported once, as Observe is told of
// it, with the status, KooDrive's code and message of a failure, and nothing for a success.
func TestReportSaysWhatKooDriveAnswered(t *testing.T) {
	for _, tc := range []struct {
		name, body                string
		status                    int
		want                      koodrive.Call
		wantUnauthorized, wantErr bool
	}{
		{name: "accepted", status: http.StatusOK, body: `{"code":"0","msg":"Success."}`,
			want: koodrive.Call{Outcome: koodrive.OutcomeSuccess}},
		{name: "refused by KooDrive", status: http.StatusOK, body: `{"code":"10020001","msg":"carrier is not whitelisted"}`,
			want:    koodrive.Call{Outcome: koodrive.OutcomeRejected, HTTPStatus: http.StatusOK, Code: "10020001", Message: "carrier is not whitelisted"},
			wantErr: true},
		{name: "overloaded", status: http.StatusServiceUnavailable, body: `{"code":"503","msg":"service busy"}`,
			want:    koodrive.Call{Outcome: koodrive.OutcomeRetryable, HTTPStatus: http.StatusServiceUnavailable, Code: "503", Message: "service busy"},
			wantErr: true},
		{name: "credentials refused", status: http.StatusUnauthorized, body: `{"code":"401","msg":"token expired"}`,
			want:    koodrive.Call{Outcome: koodrive.OutcomeAuthFailed, HTTPStatus: http.StatusUnauthorized, Code: "401", Message: "token expired"},
			wantErr: true, wantUnauthorized: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r reports
			c := reportingClient(t, answering(t, tc.status, tc.body), koodrive.NewStaticToken(quotedToken), &r)
			err := c.NotifyPackageExpire(context.Background(), "user-1", "pkg-1")
			if (err != nil) != tc.wantErr || koodrive.IsUnauthorized(err) != tc.wantUnauthorized {
				t.Fatalf("error %v", err)
			}
			got := r.only(t)
			tc.want.Endpoint, tc.want.Seconds = koodrive.NotifyPackageExpirePath, got.Seconds
			if got != tc.want {
				t.Fatalf("reported %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestReportAndErrorNeverQuoteTheCredentials: an answer that quotes the request's
// Authorization header — in KooDrive's message or in a body that is not KooDrive's JSON —
// reaches neither the error (stall reasons, logs) nor the report (the store) with the
// bearer token or the app signature in it.
func TestReportAndErrorNeverQuoteTheCredentials(t *testing.T) {
	for _, tc := range []struct {
		name, body, secret string
		auth               koodrive.Signer
	}{
		{name: "token in KooDrive's message", body: `{"code":"401","msg":"token {{auth}} is not valid"}`, secret: quotedToken,
			auth: koodrive.NewStaticToken(quotedToken)},
		{name: "token in a gateway's page", body: `<html>refused: Authorization: {{auth}}</html>`, secret: quotedToken,
			auth: koodrive.NewStaticToken(quotedToken)},
		{name: "signature in KooDrive's message", body: `{"code":"401","msg":"bad signature in {{auth}}"}`, secret: "Signature=",
			auth: koodrive.NewAppSignature("kooflow-app", "app-secret-never-shown")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r reports
			c := reportingClient(t, answering(t, http.StatusUnauthorized, tc.body), tc.auth, &r)
			err := c.NotifyPackageExpire(context.Background(), "user-1", "pkg-1")
			got := r.only(t)
			if got.Outcome != koodrive.OutcomeAuthFailed || !strings.Contains(got.Message, "[credentials removed]") {
				t.Fatalf("reported %+v, want auth_failed with the credentials removed", got)
			}
			for what, text := range map[string]string{"report": got.Message, "error": err.Error()} {
				if strings.Contains(text, tc.secret) {
					t.Fatalf("the %s quotes the credentials: %s", what, text)
				}
				if sig := signatureIn(text); sig != "" {
					t.Fatalf("the %s quotes the signature %s: %s", what, sig, text)
				}
			}
		})
	}
}

// signatureIn finds a 64-digit hex run (an HMAC-SHA256 signature) in text.
func signatureIn(text string) string {
	run := 0
	for i, ch := range text {
		if strings.ContainsRune("0123456789abcdef", ch) {
			run++
			if run == 64 {
				return text[i-63 : i+1]
			}
			continue
		}
		run = 0
	}
	return ""
}

// TestReportOfACallWithoutAnswer: when KooDrive does not answer, the report says why with
// the transport's error, without the URL.
func TestReportOfACallWithoutAnswer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	var r reports
	c := reportingClient(t, url, koodrive.NewStaticToken(quotedToken), &r)
	if err := c.NotifyPackageExpire(context.Background(), "user-1", "pkg-1"); !koodrive.IsRetryable(err) {
		t.Fatalf("error %v, want retryable", err)
	}
	got := r.only(t)
	if got.Outcome != koodrive.OutcomeRetryable || got.HTTPStatus != 0 || !strings.Contains(got.Message, "connection refused") ||
		strings.Contains(got.Message, koodrive.NotifyPackageExpirePath) {
		t.Fatalf("reported %+v, want a retryable error saying the connection was refused, without the URL", got)
	}
}

// TestACallKooflowAbandonsIsNotReported: a call whose context kooflow cancelled (a worker
// stopping, a renewal overtaking the notification) is not KooDrive failing, so it is
// neither observed nor reported; a call that ran out of time is (KooDrive was slow).
func TestACallKooflowAbandonsIsNotReported(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	var r reports
	c := reportingClient(t, srv.URL, koodrive.NewStaticToken(quotedToken), &r)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if err := c.NotifyPackageExpire(ctx, "user-1", "pkg-1"); err == nil {
		t.Fatal("an abandoned call succeeded")
	}
	r.mu.Lock()
	reported, observed := len(r.calls), len(r.observed)
	r.mu.Unlock()
	if reported != 0 || observed != 0 {
		t.Fatalf("an abandoned call was reported %d and observed %d times", reported, observed)
	}
	timeout, stop := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer stop()
	if err := c.NotifyPackageExpire(timeout, "user-1", "pkg-1"); err == nil {
		t.Fatal("a call past its deadline succeeded")
	}
	if got := r.only(t); got.Outcome != koodrive.OutcomeRetryable {
		t.Fatalf("a call past its deadline was reported %+v, want a retryable error", got)
	}
}
