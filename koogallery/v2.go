package koogallery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// V2Window is how far a V2 request's timestamp may be from now (spec §4.1).
const V2Window = 60 * time.Second

// MaxV2Body bounds a V2 request body.
const MaxV2Body = 64 << 10

// V2Signature computes a V2 request signature (spec §4.2):
// hex(HMAC(key, key + nonce + timestamp + lowerhex(HMAC(key, body)))), upper-case.
func V2Signature(key, nonce, timestamp string, body []byte) string {
	inner := hmac.New(sha256.New, []byte(key))
	inner.Write(body)
	canonical := key + nonce + timestamp + hex.EncodeToString(inner.Sum(nil))
	outer := hmac.New(sha256.New, []byte(key))
	outer.Write([]byte(canonical))
	return strings.ToUpper(hex.EncodeToString(outer.Sum(nil)))
}

// V2Auth is the authentication part of a V2 request's query string.
type V2Auth struct {
	Signature string
	Timestamp string
	Nonce     string
}

// ParseV2Timestamp reads a V2 timestamp. UNCONFIRMED (spec §4.1): pages disagree between
// seconds and milliseconds and every example has 13 digits, so 13 digits are read as
// milliseconds and 10 as seconds.
func ParseV2Timestamp(ts string) (time.Time, error) {
	n, err := strconv.ParseInt(ts, 10, 64)
	switch {
	case err != nil || n <= 0:
		return time.Time{}, fmt.Errorf("timestamp %q is not a Unix time", ts)
	case len(ts) == 13:
		return time.UnixMilli(n), nil
	case len(ts) == 10:
		return time.Unix(n, 0), nil
	}
	return time.Time{}, fmt.Errorf("timestamp %q is neither Unix seconds (10 digits) nor milliseconds (13 digits)", ts)
}

// ErrStale means a V2 timestamp is outside the 60-second window.
var ErrStale = errors.New("timestamp is outside the 60-second window")

// VerifyV2 checks a V2 request's signature (case-insensitive hex, constant time) and
// timestamp window. The nonce's freshness is the caller's job (it needs shared state).
func VerifyV2(key string, auth V2Auth, body []byte, now time.Time) error {
	if auth.Signature == "" || auth.Timestamp == "" || auth.Nonce == "" {
		return fmt.Errorf("signature, timestamp and nonce are required: %w", ErrBadToken)
	}
	if len(auth.Nonce) > 128 {
		return fmt.Errorf("nonce is longer than 128 characters: %w", ErrBadToken)
	}
	ts, err := ParseV2Timestamp(auth.Timestamp)
	if err != nil {
		return fmt.Errorf("%v: %w", err, ErrBadToken)
	}
	if d := now.Sub(ts); d > V2Window || d < -V2Window {
		return fmt.Errorf("timestamp %s is %s from now: %w", auth.Timestamp, d.Round(time.Second), ErrStale)
	}
	want := V2Signature(key, auth.Nonce, auth.Timestamp, body)
	if !hmac.Equal([]byte(want), []byte(strings.ToUpper(auth.Signature))) {
		return ErrBadToken
	}
	return nil
}

// V2Request is the JSON body of a V2 call; fields not used by an activity stay empty.
type V2Request struct {
	Activity    string `json:"activity"`
	InstanceID  string `json:"instanceId"`
	OrderID     string `json:"orderId"`
	OrderLineID string `json:"orderLineId"`
	BusinessID  string `json:"businessId"`
	Scene       string `json:"scene"`
	ProductID   string `json:"productId"`
	ExpireTime  string `json:"expireTime"`
	Status      string `json:"status"`
	TestFlag    string `json:"testFlag"`
}

// DecodeV2 reads a V2 body. Unknown fields are allowed: KooGallery adds fields over time.
func DecodeV2(body []byte) (V2Request, error) {
	if len(body) > MaxV2Body {
		return V2Request{}, &ParamError{Reason: fmt.Sprintf("body is larger than %d bytes", MaxV2Body)}
	}
	var req V2Request
	if err := json.Unmarshal(body, &req); err != nil {
		return V2Request{}, &ParamError{Reason: "body is not a JSON object with string fields: " + err.Error()}
	}
	if req.Activity == "" {
		return V2Request{}, &ParamError{Param: "activity", Reason: "is required"}
	}
	return req, nil
}

// ExpireTimeLayout is KooGallery's yyyyMMddHHmmss (UTC).
const ExpireTimeLayout = "20060102150405"

// ParseExpireTime reads a KooGallery expireTime (UTC).
func ParseExpireTime(v string) (time.Time, error) {
	t, err := time.Parse(ExpireTimeLayout, v)
	if err != nil {
		return time.Time{}, &ParamError{Param: "expireTime", Reason: "must be yyyyMMddHHmmss (UTC)"}
	}
	return t, nil
}

// CheckID validates an identifier parameter (1-64 safe characters).
func CheckID(name, value string) error { return checkID(name, value) }
