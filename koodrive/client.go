// Package koodrive is a client for the KooDrive OSE carrier API (spec koodrive-carrier.md):
// the headers every call needs, the calls kooflow makes, and a classification of every
// failure as retryable or not, which the workflows' retry policies rely on.
package koodrive

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Paths of the KooDrive endpoints kooflow calls.
const (
	NotifyPackageExpirePath = "/koodrive/ose/v1/carrier/users/notifyPackageExpire"
)

// TypeReservationPeriod is the only documented notifyPackageExpire type: the user has
// entered the reservation period.
const TypeReservationPeriod = 2

// XDateLayout is the X-Date format: UTC yyyyMMdd'T'HHmmss'Z'.
const XDateLayout = "20060102T150405Z"

// TraceIDLength is the length KooDrive requires of x-traceid.
const TraceIDLength = 58

// Config says where KooDrive is and who kooflow is there.
type Config struct {
	// BaseURL is the scheme and host, e.g. https://intl.myhuaweicloud-koodrive.com.
	BaseURL string
	// Auth gives every request its credentials: NewAppSignature (KOODRIVE_AUTH=app),
	// NewTokenFile or NewStaticToken (KOODRIVE_AUTH=token). ConfigFromEnv sets it.
	Auth Signer
	// AccessToken, when Auth is nil, is sent as a static bearer token (NewStaticToken).
	AccessToken string
	// UserID is sent as X-User-Id.
	UserID string
	// HTTPClient defaults to a client with a 15 s timeout (the notify activity allows 20 s).
	HTTPClient *http.Client
	// Now defaults to time.Now; X-Date is derived from it on every attempt.
	Now func() time.Time
	// Observe, when set, is told of every call: the endpoint path, its outcome
	// (OutcomeSuccess, OutcomeRetryable, OutcomeRejected or OutcomeAuthFailed) and its
	// duration in seconds. A call refused with 401 and sent again after a refresh counts once,
	// with the outcome of its second try.
	Observe func(endpoint, outcome string, seconds float64)
	// Report, when set, is told of every call as Observe is, with what KooDrive answered
	// a failed call (Call): the worker keeps it as KooDrive's health for the console.
	Report func(Call)
}

// Call is one KooDrive call as told to Config.Report. It holds no credential: the
// credentials a request carried are removed from whatever KooDrive's answer quoted (see
// withoutCredentials), and a signer's errors never hold a secret (Signer).
type Call struct {
	// Endpoint is the path called; Outcome is OutcomeSuccess, OutcomeRetryable,
	// OutcomeRejected or OutcomeAuthFailed; Seconds is how long the call took.
	Endpoint string
	Outcome  string
	Seconds  float64
	// HTTPStatus is the status of a failed call's answer, 0 when none arrived (or the
	// call succeeded).
	HTTPStatus int
	// Code is KooDrive's error code, when its answer had one.
	Code string
	// Message says why the call failed: KooDrive's message (or the start of an answer
	// that was not KooDrive's JSON), the transport's error when no answer arrived, or why
	// kooflow had no credentials to send. Empty for a success.
	Message string
}

// Outcomes of a KooDrive call, as told to Config.Observe.
const (
	OutcomeSuccess    = "success"
	OutcomeRetryable  = "retryable_error"
	OutcomeRejected   = "rejected"
	OutcomeAuthFailed = "auth_failed"
)

// Client calls KooDrive. It is safe for concurrent use.
type Client struct {
	cfg Config
}

// New checks cfg and returns a client.
func New(cfg Config) (*Client, error) {
	var missing []string
	if cfg.BaseURL == "" {
		missing = append(missing, "base URL (KOODRIVE_BASE_URL)")
	}
	if cfg.Auth == nil && cfg.AccessToken == "" {
		missing = append(missing, "credentials (KOODRIVE_ACCESS_TOKEN, KOODRIVE_ACCESS_TOKEN_FILE, or KOODRIVE_APP_ID and KOODRIVE_APP_SECRET or KOODRIVE_APP_SECRET_FILE)")
	}
	if cfg.UserID == "" {
		missing = append(missing, "user ID (KOODRIVE_USER_ID)")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("KooDrive client: missing %s", strings.Join(missing, ", "))
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.Auth == nil {
		cfg.Auth = NewStaticToken(cfg.AccessToken)
	}
	cfg.AccessToken = ""
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg}, nil
}

// Error is a failed KooDrive call.
type Error struct {
	// Endpoint is the path called.
	Endpoint string
	// HTTPStatus is the status answered, 0 when no answer arrived.
	HTTPStatus int
	// Code and Msg are KooDrive's own, when it answered with a body.
	Code string
	Msg  string
	// Retryable says whether the same call may succeed later.
	Retryable bool
	// RetryAfter is the delay KooDrive asked for (429 Retry-After), or 0.
	RetryAfter time.Duration
	// Unauthorized is set when KooDrive refused kooflow's credentials (HTTP 401, after one
	// refresh where the credentials can be refreshed), or when kooflow had none to send (an
	// unreadable token file). It is retryable: credentials are fixed or rotated within the
	// hour.
	Unauthorized bool
	// Credentials describes the credentials used (mode, app ID or token source), never a secret.
	Credentials string
	// Err is the transport error, if any.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.Unauthorized && e.HTTPStatus == http.StatusUnauthorized:
		// Leads with the cause: it becomes the stall reason operators read.
		b.WriteString(UnauthorizedReason + " (" + e.Credentials + "): ")
	case e.Unauthorized:
		b.WriteString("kooflow has no usable KooDrive credentials (" + e.Credentials + "): ")
	}
	b.WriteString("KooDrive " + e.Endpoint)
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	if e.HTTPStatus != 0 {
		b.WriteString(": HTTP " + strconv.Itoa(e.HTTPStatus))
	}
	if e.Code != "" || e.Msg != "" {
		fmt.Fprintf(&b, ": code %s: %s", e.Code, e.Msg)
	}
	if !e.Retryable {
		b.WriteString(" (will not succeed on retry)")
	}
	return b.String()
}

// Unwrap returns the transport error.
func (e *Error) Unwrap() error { return e.Err }

// UnauthorizedReason starts the message of every Error for which KooDrive refused
// kooflow's credentials.
const UnauthorizedReason = "KooDrive refused kooflow's credentials"

// IsUnauthorized reports whether err is a credentials failure (see Error.Unauthorized).
func IsUnauthorized(err error) bool {
	var kerr *Error
	return errors.As(err, &kerr) && kerr.Unauthorized
}

// IsRetryable reports whether err may succeed if the call is made again.
func IsRetryable(err error) bool {
	var kerr *Error
	if errors.As(err, &kerr) {
		return kerr.Retryable
	}
	return true
}

// NewTraceID returns a random x-traceid of exactly TraceIDLength characters.
func NewTraceID() string {
	buf := make([]byte, TraceIDLength/2)
	_, _ = rand.Read(buf)
	return hex.EncodeToString(buf)
}

// NotifyPackageExpire tells KooDrive that carrierUserID's package packageID expired and
// the user entered the reservation period (type 2).
func (c *Client) NotifyPackageExpire(ctx context.Context, carrierUserID, packageID string) error {
	body, err := json.Marshal(struct {
		CarrierUserID string `json:"carrierUserId"`
		Type          int    `json:"type"`
		PackageID     string `json:"packageId"`
	}{carrierUserID, TypeReservationPeriod, packageID})
	if err != nil {
		return err
	}
	_, err = c.call(ctx, http.MethodPost, NotifyPackageExpirePath, nil, "application/json", body)
	return err
}

// result is the common {code,msg} envelope of carrier API answers.
type result struct {
	Code json.RawMessage `json:"code"`
	Msg  string          `json:"msg"`
}

// isSuccessCode decides whether a carrier answer's code means success.
// UNCONFIRMED (spec koodrive-carrier.md §2): the documented type of `code` is String but
// the vendor's example answers the integer 0, and the success value is not stated. We
// accept "0" and 0 — and, for the sandbox's sake, nothing else — until KooDrive confirms.
func isSuccessCode(code json.RawMessage) bool {
	s := strings.TrimSpace(string(code))
	return s == `"0"` || s == "0"
}

func codeString(code json.RawMessage) string {
	var s string
	if json.Unmarshal(code, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(code))
}

// call performs one KooDrive call and classifies its outcome. It returns the raw body of
// a successful answer. A 401 gives a refreshable signer one chance to renew the
// credentials; when they changed, the request is sent again at once, freshly dated and
// signed.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, contentType string, body []byte) ([]byte, error) {
	start := time.Now()
	raw, err := c.send(ctx, method, path, query, contentType, body)
	if refresher, ok := c.cfg.Auth.(Refresher); ok && refusedCredentials(err) {
		changed, rerr := refresher.Refresh(ctx)
		switch {
		case rerr != nil:
			err = &Error{Endpoint: path, Err: fmt.Errorf("refresh after HTTP 401: %w", rerr), Retryable: true, Unauthorized: true,
				Credentials: describe(c.cfg.Auth)}
		case changed:
			raw, err = c.send(ctx, method, path, query, contentType, body)
		}
	}
	// A call kooflow itself abandoned (its context cancelled: a worker stopping, a
	// renewal overtaking a notification) says nothing about KooDrive: it is not told.
	abandoned := err != nil && errors.Is(ctx.Err(), context.Canceled)
	if (c.cfg.Observe != nil || c.cfg.Report != nil) && !abandoned {
		outcome, seconds := outcomeOf(err), time.Since(start).Seconds()
		if c.cfg.Observe != nil {
			c.cfg.Observe(path, outcome, seconds)
		}
		if c.cfg.Report != nil {
			c.cfg.Report(reportOf(path, outcome, seconds, err))
		}
	}
	return raw, err
}

// outcomeOf classifies a call's error as told to Config.Observe.
func outcomeOf(err error) string {
	switch {
	case err == nil:
		return OutcomeSuccess
	case IsUnauthorized(err):
		return OutcomeAuthFailed
	case IsRetryable(err):
		return OutcomeRetryable
	default:
		return OutcomeRejected
	}
}

// reportOf is the Call told to Config.Report: for a failure, the answer's status, code
// and message, or, when no answer arrived, the transport's or the signer's error without
// the URL the transport names.
func reportOf(endpoint, outcome string, seconds float64, err error) Call {
	call := Call{Endpoint: endpoint, Outcome: outcome, Seconds: seconds}
	var kerr *Error
	if !errors.As(err, &kerr) {
		return call
	}
	call.HTTPStatus, call.Code, call.Message = kerr.HTTPStatus, kerr.Code, kerr.Msg
	if call.Message == "" && kerr.Err != nil {
		cause := kerr.Err
		var uerr *url.Error
		if errors.As(cause, &uerr) {
			cause = uerr.Err
		}
		call.Message = cause.Error()
	}
	return call
}

// refusedCredentials reports whether KooDrive answered err with 401.
func refusedCredentials(err error) bool {
	var kerr *Error
	return errors.As(err, &kerr) && kerr.Unauthorized && kerr.HTTPStatus == http.StatusUnauthorized
}

// describe names a signer's credentials without their secret.
func describe(s Signer) string {
	if d, ok := s.(fmt.Stringer); ok {
		return d.String()
	}
	return fmt.Sprintf("%T", s)
}

// send makes one HTTP request with fresh X-Date, trace ID and credentials.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, contentType string, body []byte) ([]byte, error) {
	endpoint := path
	target := c.cfg.BaseURL + path
	if len(query) > 0 {
		endpoint = path + "?" + EncodeQuery(query)
		target = c.cfg.BaseURL + endpoint
	}
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, reader)
	if err != nil {
		return nil, &Error{Endpoint: endpoint, Err: err}
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	// X-Date must never be later than KooDrive's clock: truncating to the second keeps it
	// at or before now, and it is made fresh for every request — the app signature covers
	// it, so a retry is signed anew.
	req.Header.Set("X-Date", c.cfg.Now().UTC().Truncate(time.Second).Format(XDateLayout))
	req.Header.Set("X-User-Id", c.cfg.UserID)
	req.Header.Set("x-traceid", NewTraceID())
	req.Header.Set("Accept", "application/json")
	if err := c.cfg.Auth.Sign(req, body); err != nil {
		return nil, &Error{Endpoint: endpoint, Err: err, Retryable: true, Unauthorized: true, Credentials: describe(c.cfg.Auth)}
	}
	credentials := req.Header.Get("Authorization")

	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, &Error{Endpoint: endpoint, Err: err, Retryable: true}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, &Error{Endpoint: endpoint, HTTPStatus: resp.StatusCode, Err: fmt.Errorf("read answer: %w", err), Retryable: true}
	}
	var res result
	_ = json.Unmarshal(raw, &res)
	// What the answer says is kept in errors, logs, stall reasons and the store: a gateway
	// that quotes the refused token must not put it there.
	res.Msg = withoutCredentials(res.Msg, credentials)
	quoted := func() string { return truncate(withoutCredentials(string(raw), credentials), 200) }
	if resp.StatusCode != http.StatusOK {
		kerr := &Error{Endpoint: endpoint, HTTPStatus: resp.StatusCode, Code: codeString(res.Code), Msg: res.Msg,
			Retryable: retryableStatus(resp.StatusCode)}
		if resp.StatusCode == http.StatusUnauthorized {
			kerr.Unauthorized, kerr.Credentials = true, describe(c.cfg.Auth)
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			kerr.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), c.cfg.Now())
		}
		if kerr.Msg == "" {
			kerr.Msg = quoted()
		}
		return nil, kerr
	}
	if len(res.Code) > 0 && !isSuccessCode(res.Code) {
		// KooDrive understood the call and refused it (not whitelisted, unknown user or
		// package, ...): the same call will be refused again.
		return nil, &Error{Endpoint: endpoint, HTTPStatus: resp.StatusCode, Code: codeString(res.Code), Msg: res.Msg}
	}
	if len(res.Code) == 0 && path == NotifyPackageExpirePath {
		return nil, &Error{Endpoint: endpoint, HTTPStatus: resp.StatusCode, Msg: "answer has no code: " + quoted(), Retryable: true}
	}
	return raw, nil
}

// withoutCredentials removes from text, quoted from an answer, the credentials of the
// Authorization header the request carried: the whole value after its scheme (a bearer
// token) and an app signature's Signature. The app secret itself is never sent.
func withoutCredentials(text, authorization string) string {
	_, params, _ := strings.Cut(authorization, " ")
	params = strings.TrimSpace(params)
	if text == "" || params == "" {
		return text
	}
	text = strings.ReplaceAll(text, params, "[credentials removed]")
	for _, field := range strings.Split(params, ",") {
		if signature, ok := strings.CutPrefix(strings.TrimSpace(field), "Signature="); ok && signature != "" {
			text = strings.ReplaceAll(text, signature, "[credentials removed]")
		}
	}
	return text
}

// retryableStatus classifies an HTTP status: overload, outages and credential problems
// (a token may be rotated, a secret corrected within the hour) are worth retrying; a
// malformed request is not.
func retryableStatus(status int) bool {
	switch {
	case status == http.StatusTooManyRequests, status == http.StatusRequestTimeout, status == http.StatusTooEarly:
		return true
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return true
	case status >= 500:
		return true
	default:
		return false
	}
}

func parseRetryAfter(value string, now time.Time) time.Duration {
	if value == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(value)); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(value); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
