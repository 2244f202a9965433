// Package smarthub reads SmartHub's push notifications: the event envelope, its time
// formats, API-key authentication and the (unconfirmed) body signature
// (spec smarthub-push.md).
package smarthub

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxBodyBytes bounds one push; the documented envelope is well under 2 KB.
const MaxBodyBytes = 64 << 10

// TriggerPackageExpired is the triggerType of "Prepaid Service Package Expired" pushes.
const TriggerPackageExpired = "SERVICE_PACKAGE_EXPIRED"

// Envelope is a SmartHub push. Data is kept raw: only package-expired events are decoded
// further, and every event is stored as received.
type Envelope struct {
	EventID   string          `json:"eventId"`
	DatePush  string          `json:"datePush"`
	Signature string          `json:"signature"`
	EventType string          `json:"eventType"`
	Data      json.RawMessage `json:"data"`
}

// EventData is the data object of a rule-triggered push.
type EventData struct {
	RuleName     string `json:"ruleName"`
	TriggerDate  string `json:"triggerDate"`
	GIccid       string `json:"gIccid"`
	TriggerType  string `json:"triggerType"`
	PackageCode  string `json:"packageCode"`
	PackageName  string `json:"packageName"`
	ActivateDate string `json:"activateDate"`
	ValidThru    string `json:"validThru"`
}

// Event is a decoded, validated push.
type Event struct {
	Envelope
	Data     EventData
	PushedAt time.Time
	// ValidThru is set for package-expired events.
	ValidThru time.Time
}

// IsPackageExpired reports whether the push is a "Prepaid Service Package Expired" event.
func (e Event) IsPackageExpired() bool { return e.Data.TriggerType == TriggerPackageExpired }

// FieldError says which field of a push is wrong. It maps to HTTP 400.
type FieldError struct {
	Field  string
	Reason string
}

// Error implements error.
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

var (
	idPattern = regexp.MustCompile(`^[A-Za-z0-9._:\-]{1,128}$`)
	// simPattern bounds gIccid and packageCode: they become parts of workflow IDs.
	simPattern = regexp.MustCompile(`^[A-Za-z0-9._\-]{1,64}$`)
)

// Decode parses and validates a push body. Every error is a *FieldError.
func Decode(body []byte) (Event, error) {
	if len(body) > MaxBodyBytes {
		return Event{}, &FieldError{Reason: fmt.Sprintf("body is larger than %d bytes", MaxBodyBytes)}
	}
	if !utf8.Valid(body) {
		return Event{}, &FieldError{Reason: "body is not valid UTF-8"}
	}
	var env Envelope
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&env); err != nil {
		return Event{}, &FieldError{Reason: "body is not a JSON object: " + jsonError(err)}
	}
	if dec.More() {
		return Event{}, &FieldError{Reason: "body has data after the JSON object"}
	}
	ev := Event{Envelope: env}
	switch {
	case env.EventID == "":
		return Event{}, &FieldError{Field: "eventId", Reason: "is required"}
	case !idPattern.MatchString(env.EventID):
		return Event{}, &FieldError{Field: "eventId", Reason: "must be 1-128 letters, digits or . _ : -"}
	case len(env.Data) == 0 || string(env.Data) == "null":
		return Event{}, &FieldError{Field: "data", Reason: "is required"}
	}
	if env.DatePush != "" {
		t, err := ParseTime(env.DatePush)
		if err != nil {
			return Event{}, &FieldError{Field: "datePush", Reason: err.Error()}
		}
		ev.PushedAt = t
	}
	if err := json.Unmarshal(env.Data, &ev.Data); err != nil {
		return Event{}, &FieldError{Field: "data", Reason: "must be an object with string fields: " + jsonError(err)}
	}
	if ev.IsPackageExpired() {
		for _, f := range []struct{ name, value string }{{"data.gIccid", ev.Data.GIccid}, {"data.packageCode", ev.Data.PackageCode}} {
			if f.value == "" {
				return Event{}, &FieldError{Field: f.name, Reason: "is required for " + TriggerPackageExpired}
			}
			if !simPattern.MatchString(f.value) {
				return Event{}, &FieldError{Field: f.name, Reason: "must be 1-64 letters, digits or . _ -"}
			}
		}
		if ev.Data.ValidThru == "" {
			return Event{}, &FieldError{Field: "data.validThru", Reason: "is required for " + TriggerPackageExpired}
		}
		t, err := ParseTime(ev.Data.ValidThru)
		if err != nil {
			return Event{}, &FieldError{Field: "data.validThru", Reason: err.Error()}
		}
		ev.ValidThru = t
	}
	return ev, nil
}

func jsonError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %s has the wrong type (%s)", typ.Field, typ.Value)
	default:
		return err.Error()
	}
}

// timeLayouts are SmartHub's documented yyyy-MM-dd'T'HH:mm:ssZ (offset without colon),
// RFC 3339, and the space-separated form its examples also show.
var timeLayouts = []string{
	"2006-01-02T15:04:05-0700", "2006-01-02T15:04:05.999999999-0700", time.RFC3339Nano, "2006-01-02 15:04:05",
}

// ParseTime reads a SmartHub time; a time without zone is taken as UTC.
func ParseTime(v string) (time.Time, error) {
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q is not yyyy-MM-ddTHH:mm:ss±hhmm or RFC 3339", v)
}

// ValidAPIKey compares the X-API-Key header with the configured key in constant time.
func ValidAPIKey(configured, got string) bool {
	if configured == "" {
		return false
	}
	a := sha256.Sum256([]byte(configured))
	b := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// SignatureMode says what to do with the body signature.
type SignatureMode string

// Signature modes (SMARTHUB_SIGNATURE_MODE).
const (
	SignatureOff     SignatureMode = "off"
	SignatureLog     SignatureMode = "log"
	SignatureEnforce SignatureMode = "enforce"
)

// ParseSignatureMode reads SMARTHUB_SIGNATURE_MODE; empty means log.
func ParseSignatureMode(v string) (SignatureMode, error) {
	switch SignatureMode(strings.ToLower(v)) {
	case "", SignatureLog:
		return SignatureLog, nil
	case SignatureOff:
		return SignatureOff, nil
	case SignatureEnforce:
		return SignatureEnforce, nil
	}
	return "", fmt.Errorf("SMARTHUB_SIGNATURE_MODE %q: want off, log or enforce", v)
}

// Sign computes the candidate signature of a push.
// ASSUMPTION (spec smarthub-push.md §4, unconfirmed): SmartHub does not publish its
// signature algorithm. The vendor example is 64 hex characters, consistent with SHA-256;
// our candidate is lower-case hex HMAC-SHA256 keyed with the API key over eventId +
// datePush. Keep SMARTHUB_SIGNATURE_MODE at "log" (the default) until a real push
// confirms it; change it here, and only here, when it is known.
func Sign(key, eventID, datePush string) string {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(eventID + datePush))
	return hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature checks a push's signature against the candidate algorithm.
func VerifySignature(key string, env Envelope) bool {
	want := Sign(key, env.EventID, env.DatePush)
	got := strings.ToLower(env.Signature)
	return hmac.Equal([]byte(want), []byte(got))
}
