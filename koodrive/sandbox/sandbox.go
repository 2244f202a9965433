// Package sandbox is a local KooDrive for dev mode and tests. It serves the carrier
// endpoints kooflow calls and enforces the published rules strictly — credentials (access
// tokens that die 20 minutes after their last use, or §7 app signatures checked by the
// sandbox's own canonicalisation, written apart from the client's), X-Date format and its
// 15-minute, never-in-the-future window, X-User-Id, a 58-character x-traceid, exact body
// types — so that a client bug fails a test instead of reaching KooDrive. Faults can be
// injected: the next N calls, a time window, throttling, or a business rejection.
package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kooflow/kooflow/koodrive"
)

// Notification is one notifyPackageExpire call the sandbox accepted.
type Notification struct {
	CarrierUserID string    `json:"carrierUserId"`
	Type          int       `json:"type"`
	PackageID     string    `json:"packageId"`
	TraceID       string    `json:"traceId"`
	At            time.Time `json:"at"`
}

// Rejection is a call the sandbox refused because it broke the API rules.
type Rejection struct {
	Path string `json:"path"`
	// Status is the HTTP status answered; 401 for refused credentials.
	Status int       `json:"status"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// DefaultTokenLifetime is how long a KooDrive access token stays valid after its last
// use (spec koodrive-carrier.md §7: 20 minutes, extended by each call).
const DefaultTokenLifetime = 20 * time.Minute

// Options configure a sandbox.
type Options struct {
	// AccessToken, when set, is a token the sandbox has issued: like every token from
	// IssueToken it dies TokenLifetime after its last use.
	AccessToken string
	// UserID is the KooDrive user callers must name in X-User-Id.
	UserID string
	// Apps maps app IDs to the app secrets whose §7 signatures the sandbox accepts.
	Apps map[string]string
	// TokenLifetime is an access token's sliding lifetime; default DefaultTokenLifetime.
	TokenLifetime time.Duration
	// Now is the sandbox's clock for X-Date checks, token lifetimes and fault windows;
	// default time.Now.
	Now func() time.Time
}

// Sandbox is the fake KooDrive. Use Handler to serve it.
type Sandbox struct {
	opts Options

	mu            sync.Mutex
	tokens        map[string]time.Time // access token → last use
	verified      Verified
	notifications []Notification
	rejections    []Rejection
	calls         int
	failNext      int
	failStatus    int
	failUntil     time.Time
	failWhile     func() bool
	failPath      map[string]int
	throttleNext  int
	retryAfter    time.Duration
	rejectCode    string
	rejectMsg     string

	kdRecords       []KooDriveRecord
	batches         map[string]*batch
	batchSeq        int
	uploads         []Upload
	processingPolls int
	processingWhile func() bool
	serviceFrozen   bool
}

// New returns a sandbox accepting opts' credentials.
func New(opts Options) *Sandbox {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = DefaultTokenLifetime
	}
	s := &Sandbox{opts: opts, tokens: map[string]time.Time{}}
	if opts.AccessToken != "" {
		s.tokens[opts.AccessToken] = opts.Now()
	}
	return s
}

// Handler serves the KooDrive endpoints and, under /sandbox/, a control API:
// GET /sandbox/notifications, GET /sandbox/rejections, GET /sandbox/faults (the faults in
// force, JSON ActiveFaults), POST /sandbox/faults (JSON Faults; answers the faults now in
// force), DELETE /sandbox/faults, and POST /sandbox/tokens, which issues an access token
// ({"accessToken":…,"expiresIn":seconds}). Another method on a control path is answered
// 405 with an Allow header naming the methods it takes.
func (s *Sandbox) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(koodrive.NotifyPackageExpirePath, s.notify)
	mux.HandleFunc(koodrive.ServicePath, s.service)
	mux.HandleFunc(koodrive.DataVerifyPath, s.verifyData)
	mux.HandleFunc(koodrive.DiffGetListPath, s.diffList)
	mux.HandleFunc("GET /sandbox/notifications", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Notifications())
	})
	mux.HandleFunc("GET /sandbox/rejections", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Rejections())
	})
	mux.HandleFunc("POST /sandbox/faults", s.postFaults)
	mux.HandleFunc("GET /sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.ActiveFaults())
	})
	mux.HandleFunc("POST /sandbox/tokens", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"accessToken": s.IssueToken(), "expiresIn": int(s.opts.TokenLifetime.Seconds())})
	})
	mux.HandleFunc("DELETE /sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// Faults is the control API's body for POST /sandbox/faults.
type Faults struct {
	// FailNext makes the next N calls fail with Status (default 503).
	FailNext int `json:"failNext"`
	// FailForSeconds makes every call fail with Status for that long.
	FailForSeconds int `json:"failForSeconds"`
	Status         int `json:"status"`
	// RejectCode and RejectMsg make every call a business rejection until cleared.
	RejectCode string `json:"rejectCode"`
	RejectMsg  string `json:"rejectMsg"`
}

// ActiveFaults are the faults in force, as GET /sandbox/faults shows them.
type ActiveFaults struct {
	// Active says whether any call would be failed, throttled or rejected now.
	Active bool `json:"active"`
	// FailNext calls still fail with Status.
	FailNext int `json:"failNext"`
	// FailUntil is the end of a failForSeconds outage, and FailSecondsLeft its rest;
	// absent when there is none.
	FailUntil       *time.Time `json:"failUntil,omitempty"`
	FailSecondsLeft int        `json:"failSecondsLeft,omitempty"`
	// FailWhile says a test set a conditional outage (FailWhile) that holds now.
	FailWhile bool `json:"failWhile,omitempty"`
	// FailNextOn counts the failures still due per endpoint path.
	FailNextOn map[string]int `json:"failNextOn,omitempty"`
	// Status is the HTTP status injected failures answer; absent when none is set.
	Status int `json:"status,omitempty"`
	// ThrottleNext calls are still answered 429 with Retry-After RetryAfterSeconds.
	ThrottleNext      int `json:"throttleNext"`
	RetryAfterSeconds int `json:"retryAfterSeconds,omitempty"`
	// RejectCode and RejectMsg are the business rejection every call gets until cleared.
	RejectCode string `json:"rejectCode,omitempty"`
	RejectMsg  string `json:"rejectMsg,omitempty"`
}

// ActiveFaults returns the faults in force now.
func (s *Sandbox) ActiveFaults() ActiveFaults {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := ActiveFaults{FailNext: s.failNext, ThrottleNext: s.throttleNext, RejectCode: s.rejectCode, RejectMsg: s.rejectMsg}
	if left := s.failUntil.Sub(s.opts.Now()); left > 0 {
		until := s.failUntil.UTC()
		f.FailUntil, f.FailSecondsLeft = &until, int((left+time.Second-1)/time.Second)
	}
	f.FailWhile = s.failWhile != nil && s.failWhile()
	for path, n := range s.failPath {
		if n > 0 {
			if f.FailNextOn == nil {
				f.FailNextOn = map[string]int{}
			}
			f.FailNextOn[path] = n
		}
	}
	if s.throttleNext > 0 {
		f.RetryAfterSeconds = int(s.retryAfter.Seconds())
	}
	if f.FailNext > 0 || f.FailUntil != nil || f.FailWhile || len(f.FailNextOn) > 0 {
		f.Status = orDefault(s.failStatus, http.StatusServiceUnavailable)
	}
	f.Active = f.FailNext > 0 || f.FailUntil != nil || f.FailWhile || len(f.FailNextOn) > 0 || f.ThrottleNext > 0 || f.RejectCode != ""
	return f
}

func (s *Sandbox) postFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body is not a JSON fault (" + err.Error() + `); for example {"failForSeconds":120} or {"rejectCode":"10020001","rejectMsg":"not whitelisted"}`})
		return
	}
	switch {
	case f.FailNext < 0 || f.FailForSeconds < 0:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "failNext and failForSeconds must not be negative"})
		return
	case f.Status != 0 && (f.Status < 400 || f.Status > 599):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("status %d is not an HTTP error status (400-599)", f.Status)})
		return
	case f.RejectCode == "" && f.RejectMsg != "":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "rejectMsg needs a rejectCode"})
		return
	case f.FailNext == 0 && f.FailForSeconds == 0 && f.RejectCode == "":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "no fault given: set failNext, failForSeconds or rejectCode (DELETE /sandbox/faults clears them)"})
		return
	}
	if f.FailNext > 0 {
		s.FailNext(f.FailNext, f.Status)
	}
	if f.FailForSeconds > 0 {
		s.FailFor(time.Duration(f.FailForSeconds)*time.Second, f.Status)
	}
	if f.RejectCode != "" {
		s.RejectWith(f.RejectCode, f.RejectMsg)
	}
	writeJSON(w, http.StatusOK, s.ActiveFaults())
}

// FailNext makes the next n calls fail with HTTP status (503 when 0).
func (s *Sandbox) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext, s.failStatus = n, orDefault(status, http.StatusServiceUnavailable)
}

// FailNextOn makes the next n calls to one endpoint path fail with status (503 when 0).
func (s *Sandbox) FailNextOn(path string, n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failPath == nil {
		s.failPath = map[string]int{}
	}
	s.failPath[path] = n
	s.failStatus = orDefault(status, http.StatusServiceUnavailable)
}

// FailFor makes every call fail with status (503 when 0) for d from now on the sandbox clock.
func (s *Sandbox) FailFor(d time.Duration, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failUntil, s.failStatus = s.opts.Now().Add(d), orDefault(status, http.StatusServiceUnavailable)
}

// FailWhile makes calls fail with status (503 when 0) while cond reports true; tests pass
// a condition on their own (possibly simulated) clock.
func (s *Sandbox) FailWhile(cond func() bool, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failWhile, s.failStatus = cond, orDefault(status, http.StatusServiceUnavailable)
}

// Throttle answers the next n calls with 429 and a Retry-After of d.
func (s *Sandbox) Throttle(n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttleNext, s.retryAfter = n, d
}

// RejectWith answers every call with a business rejection until ClearFaults.
func (s *Sandbox) RejectWith(code, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectCode, s.rejectMsg = code, msg
}

// ClearFaults removes every injected fault.
func (s *Sandbox) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext, s.failUntil, s.failWhile, s.throttleNext, s.rejectCode, s.rejectMsg = 0, time.Time{}, nil, 0, "", ""
	s.failPath = nil
}

// Notifications returns every accepted notifyPackageExpire call, in order.
func (s *Sandbox) Notifications() []Notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Notification(nil), s.notifications...)
}

// Rejections returns every call refused for breaking the API rules, in order.
func (s *Sandbox) Rejections() []Rejection {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Rejection(nil), s.rejections...)
}

// Calls counts every request to a KooDrive endpoint, failed or not.
func (s *Sandbox) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

type answer struct {
	status int
	code   string
	msg    string
	header http.Header
}

func (s *Sandbox) reject(w http.ResponseWriter, path string, status int, code, reason string) {
	s.refuse(w, path, status, code, reason, reason)
}

// refuse records a rejection with reason and answers msg, which may say less (the sandbox
// keeps its canonical request for /sandbox/rejections, not for the caller's error).
func (s *Sandbox) refuse(w http.ResponseWriter, path string, status int, code, reason, msg string) {
	s.mu.Lock()
	s.rejections = append(s.rejections, Rejection{Path: path, Status: status, Reason: reason, At: s.opts.Now()})
	s.mu.Unlock()
	writeJSON(w, status, map[string]string{"code": code, "msg": msg})
}

// admit refuses a request with the wrong method, headers or credentials, recording why;
// it reports whether the request may go on.
func (s *Sandbox) admit(w http.ResponseWriter, r *http.Request, method, endpoint string) bool {
	if r.Method != method {
		s.reject(w, r.URL.Path, http.StatusMethodNotAllowed, "405", endpoint+" takes "+method)
		return false
	}
	if status, code, reason := s.checkHeaders(r); status != 0 {
		s.reject(w, r.URL.Path, status, code, reason)
		return false
	}
	if reason, detail := s.authenticate(r); reason != "" {
		full := reason
		if detail != "" {
			full += "; " + detail
		}
		s.refuse(w, r.URL.Path, http.StatusUnauthorized, "401", full, reason)
		return false
	}
	return true
}

// xDateLayout is X-Date's format, yyyyMMdd'T'HHmmss'Z' (spec §1).
const xDateLayout = "20060102T150405Z"

// checkHeaders enforces the common carrier headers (spec §1).
func (s *Sandbox) checkHeaders(r *http.Request) (int, string, string) {
	xdate := r.Header.Get("X-Date")
	if xdate == "" {
		return http.StatusBadRequest, "13000102", "X-Date is required"
	}
	signed, err := time.Parse(xDateLayout, xdate)
	if err != nil {
		return http.StatusBadRequest, "13000102", fmt.Sprintf("X-Date %q is not yyyyMMdd'T'HHmmss'Z'", xdate)
	}
	now := s.opts.Now().UTC()
	if signed.After(now) {
		return http.StatusBadRequest, "13000102", fmt.Sprintf("X-Date %s is later than the server time %s", xdate, now.Format(xDateLayout))
	}
	if now.Sub(signed) > 15*time.Minute {
		return http.StatusBadRequest, "13000102", fmt.Sprintf("X-Date %s is more than 15 minutes old", xdate)
	}
	if user := r.Header.Get("X-User-Id"); user == "" || user != s.opts.UserID {
		return http.StatusUnauthorized, "401", "X-User-Id is missing or unknown"
	}
	if trace, ok := r.Header["X-Traceid"]; ok && len(trace[0]) != koodrive.TraceIDLength {
		return http.StatusBadRequest, "13000102", fmt.Sprintf("x-traceid must be %d characters, got %d", koodrive.TraceIDLength, len(trace[0]))
	}
	return 0, "", ""
}

// injected returns the fault to answer with, if any, consuming one-shot faults.
func (s *Sandbox) injected(path string) *answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.failPath[path] > 0 {
		s.failPath[path]--
		return &answer{status: s.failStatus, code: fmt.Sprint(s.failStatus), msg: "injected failure on " + path}
	}
	if s.throttleNext > 0 {
		s.throttleNext--
		h := http.Header{}
		h.Set("Retry-After", fmt.Sprint(int(s.retryAfter.Seconds())))
		return &answer{status: http.StatusTooManyRequests, code: "429", msg: "too many requests", header: h}
	}
	if s.failNext > 0 {
		s.failNext--
		return &answer{status: s.failStatus, code: fmt.Sprint(s.failStatus), msg: "injected failure"}
	}
	if s.opts.Now().Before(s.failUntil) || (s.failWhile != nil && s.failWhile()) {
		return &answer{status: s.failStatus, code: fmt.Sprint(s.failStatus), msg: "injected outage"}
	}
	if s.rejectCode != "" {
		return &answer{status: http.StatusOK, code: s.rejectCode, msg: s.rejectMsg}
	}
	return nil
}

func (s *Sandbox) notify(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if !s.admit(w, r, http.MethodPost, "notifyPackageExpire") {
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		s.reject(w, path, http.StatusBadRequest, "13000102", fmt.Sprintf("Content-Type must be application/json, got %q", ct))
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		s.reject(w, path, http.StatusBadRequest, "13000102", "unreadable body")
		return
	}
	var body struct {
		CarrierUserID *string `json:"carrierUserId"`
		Type          *int    `json:"type"`
		PackageID     *string `json:"packageId"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		s.reject(w, path, http.StatusBadRequest, "13000102", "body is not the documented JSON: "+err.Error())
		return
	}
	switch {
	case body.CarrierUserID == nil || *body.CarrierUserID == "":
		s.reject(w, path, http.StatusBadRequest, "13000102", "carrierUserId is required")
		return
	case body.PackageID == nil || *body.PackageID == "":
		s.reject(w, path, http.StatusBadRequest, "13000102", "packageId is required")
		return
	case body.Type == nil:
		s.reject(w, path, http.StatusBadRequest, "13000102", "type is required")
		return
	case *body.Type != koodrive.TypeReservationPeriod:
		s.reject(w, path, http.StatusBadRequest, "13000102", fmt.Sprintf("type %d is not supported; only 2 (reservation period) is", *body.Type))
		return
	}
	if a := s.injected(path); a != nil {
		writeAnswer(w, a)
		return
	}
	s.mu.Lock()
	s.notifications = append(s.notifications, Notification{
		CarrierUserID: *body.CarrierUserID, Type: *body.Type, PackageID: *body.PackageID,
		TraceID: r.Header.Get("x-traceid"), At: s.opts.Now(),
	})
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"code": "0", "msg": "Success."})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
