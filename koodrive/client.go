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
	// AccessToken is sent as "Authorization: Bearer <token>".
	AccessToken string
	// UserID is sent as X-User-Id.
	UserID string
	// HTTPClient defaults to a client with a 15 s timeout (the notify activity allows 20 s).
	HTTPClient *http.Client
	// Now defaults to time.Now; X-Date is derived from it on every attempt.
	Now func() time.Time
	// Observe, when set, is told of every call: the endpoint path, its outcome
	// (success, retryable_error or rejected) and its duration in seconds.
	Observe func(endpoint, outcome string, seconds float64)
}

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
	if cfg.AccessToken == "" {
		missing = append(missing, "access token (KOODRIVE_ACCESS_TOKEN)")
	}
	if cfg.UserID == "" {
		missing = append(missing, "user ID (KOODRIVE_USER_ID)")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("KooDrive client: missing %s", strings.Join(missing, ", "))
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
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
	// Err is the transport error, if any.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
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
	_, err = c.call(ctx, http.MethodPost, NotifyPackageExpirePath, "application/json", bytes.NewReader(body))
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

// call performs one request with fresh headers and classifies its outcome. It returns the
// raw body of a successful answer.
func (c *Client) call(ctx context.Context, method, path, contentType string, body io.Reader) ([]byte, error) {
	start := time.Now()
	raw, err := c.do(ctx, method, path, contentType, body)
	if c.cfg.Observe != nil {
		endpoint, _, _ := strings.Cut(path, "?")
		outcome := "success"
		switch {
		case err != nil && IsRetryable(err):
			outcome = "retryable_error"
		case err != nil:
			outcome = "rejected"
		}
		c.cfg.Observe(endpoint, outcome, time.Since(start).Seconds())
	}
	return raw, err
}

func (c *Client) do(ctx context.Context, method, path, contentType string, body io.Reader) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.BaseURL+path, body)
	if err != nil {
		return nil, &Error{Endpoint: path, Err: err}
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.AccessToken)
	// X-Date must never be later than KooDrive's clock: truncating to the second keeps it
	// at or before now, and it is made fresh for every attempt.
	req.Header.Set("X-Date", c.cfg.Now().UTC().Truncate(time.Second).Format(XDateLayout))
	req.Header.Set("X-User-Id", c.cfg.UserID)
	req.Header.Set("x-traceid", NewTraceID())
	req.Header.Set("Accept", "application/json")

	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, &Error{Endpoint: path, Err: err, Retryable: true}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, &Error{Endpoint: path, HTTPStatus: resp.StatusCode, Err: fmt.Errorf("read answer: %w", err), Retryable: true}
	}
	var res result
	_ = json.Unmarshal(raw, &res)
	if resp.StatusCode != http.StatusOK {
		kerr := &Error{Endpoint: path, HTTPStatus: resp.StatusCode, Code: codeString(res.Code), Msg: res.Msg,
			Retryable: retryableStatus(resp.StatusCode)}
		if resp.StatusCode == http.StatusTooManyRequests {
			kerr.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), c.cfg.Now())
		}
		if kerr.Msg == "" {
			kerr.Msg = truncate(string(raw), 200)
		}
		return nil, kerr
	}
	if len(res.Code) > 0 && !isSuccessCode(res.Code) {
		// KooDrive understood the call and refused it (not whitelisted, unknown user or
		// package, ...): the same call will be refused again.
		return nil, &Error{Endpoint: path, HTTPStatus: resp.StatusCode, Code: codeString(res.Code), Msg: res.Msg}
	}
	if len(res.Code) == 0 && path == NotifyPackageExpirePath {
		return nil, &Error{Endpoint: path, HTTPStatus: resp.StatusCode, Msg: "answer has no code: " + truncate(string(raw), 200), Retryable: true}
	}
	return raw, nil
}

// retryableStatus classifies an HTTP status: overload, outages and credential problems
// (a token may be rotated within the hour) are worth retrying; a malformed request is not.
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
