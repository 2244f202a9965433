// Package koogallery implements the seller side of KooGallery's SaaS "produce" interface:
// verification of V1 request tokens, the Body-Sign response signature, parsing of the
// activities kooflow handles, and the shared result-code table (spec koogallery-saas.md).
package koogallery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// Limits on what a V1 request may carry. KooGallery's longest documented parameter is 100
// characters and a request carries a handful of them, so anything much larger is hostile.
const (
	// MaxQueryBytes bounds the raw query string of a V1 GET request.
	MaxQueryBytes = 8 << 10
	// MaxParams bounds the number of query parameters of a V1 GET request.
	MaxParams = 64
	// MaxValueBytes bounds one decoded parameter value.
	MaxValueBytes = 1024
)

// ErrBadToken means the authToken is missing or does not match the request.
var ErrBadToken = errors.New("authToken does not match the request")

// Params are the decoded query parameters of a V1 request, one value per name.
type Params map[string]string

// ParamError reports a query string that cannot be read as KooGallery sends it. It maps
// to result code 000002.
type ParamError struct {
	// Param names the offending parameter, empty when the query as a whole is at fault.
	Param string
	// Reason says what is wrong with it.
	Reason string
}

// Error implements error.
func (e *ParamError) Error() string {
	if e.Param == "" {
		return e.Reason
	}
	return fmt.Sprintf("parameter %s: %s", e.Param, e.Reason)
}

// ParseQuery decodes a raw V1 query string. Values are URL-decoded the way KooGallery's
// Java reference does (form decoding, so '+' is a space), except authToken: it is Base64,
// and older KooGallery requests send its '+' characters unencoded, so its '+' are kept.
// A parameter given twice is refused rather than silently taking one of the values,
// because the signature covers only one of them.
func ParseQuery(rawQuery string) (Params, error) {
	if len(rawQuery) > MaxQueryBytes {
		return nil, &ParamError{Reason: fmt.Sprintf("query string is %d bytes, the limit is %d", len(rawQuery), MaxQueryBytes)}
	}
	params := Params{}
	if rawQuery == "" {
		return params, nil
	}
	for _, pair := range strings.Split(rawQuery, "&") {
		if pair == "" {
			continue
		}
		if len(params) >= MaxParams {
			return nil, &ParamError{Reason: fmt.Sprintf("more than %d parameters", MaxParams)}
		}
		rawName, rawValue, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil || name == "" {
			return nil, &ParamError{Param: rawName, Reason: "name is not URL-encoded correctly"}
		}
		var value string
		if name == "authToken" {
			value, err = url.PathUnescape(rawValue)
		} else {
			value, err = url.QueryUnescape(rawValue)
		}
		if err != nil {
			return nil, &ParamError{Param: name, Reason: "value is not URL-encoded correctly"}
		}
		if len(value) > MaxValueBytes {
			return nil, &ParamError{Param: name, Reason: fmt.Sprintf("value is longer than %d bytes", MaxValueBytes)}
		}
		if _, dup := params[name]; dup {
			return nil, &ParamError{Param: name, Reason: "given more than once"}
		}
		params[name] = value
	}
	return params, nil
}

// CanonicalString is the message KooGallery signs: every parameter except authToken,
// sorted by name in code-point order, joined as name=value with '&', values not encoded.
func (p Params) CanonicalString() string {
	names := make([]string, 0, len(p))
	for name := range p {
		if name != "authToken" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for i, name := range names {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(p[name])
	}
	return b.String()
}

// AuthToken computes the V1 authToken for p: Base64(HMAC-SHA256(key+timeStamp, canonical)).
func AuthToken(key string, p Params) string {
	mac := hmac.New(sha256.New, []byte(key+p["timeStamp"]))
	mac.Write([]byte(p.CanonicalString()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// VerifyAuthToken checks p's authToken against key in constant time.
func VerifyAuthToken(key string, p Params) error {
	got, ok := p["authToken"]
	if !ok || got == "" {
		return fmt.Errorf("authToken is missing: %w", ErrBadToken)
	}
	if _, ok := p["timeStamp"]; !ok {
		return fmt.Errorf("timeStamp is missing: %w", ErrBadToken)
	}
	want := AuthToken(key, p)
	if !hmac.Equal([]byte(got), []byte(want)) {
		return ErrBadToken
	}
	return nil
}

// SignedQuery builds a V1 query string the way KooGallery sends it: every value
// percent-encoded, with the authToken for key appended. Used by kooflow's own sender
// and by tests.
func SignedQuery(key string, p Params) string {
	values := url.Values{}
	for name, value := range p {
		if name != "authToken" {
			values.Set(name, value)
		}
	}
	values.Set("authToken", AuthToken(key, p))
	return values.Encode()
}

// BodySignature is the Base64 HMAC-SHA256 of body under key (no timeStamp), spec §3.3.
func BodySignature(key string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// BodySignHeader formats the Body-Sign header value exactly as the vendor sample writes it.
func BodySignHeader(key string, body []byte) string {
	return `sign_type="HMAC-SHA256", signature= "` + BodySignature(key, body) + `"`
}

// BodySignHeaderName is the response header that carries the body signature.
const BodySignHeaderName = "Body-Sign"

// VerifyBodySignHeader checks a Body-Sign header value against body: what KooGallery
// does with every answer. Used by kooflow's sender and by tests.
func VerifyBodySignHeader(key, header string, body []byte) error {
	const prefix = `sign_type="HMAC-SHA256", signature= "`
	if !strings.HasPrefix(header, prefix) || !strings.HasSuffix(header, `"`) || len(header) < len(prefix)+1 {
		return fmt.Errorf("Body-Sign header %q is not in the vendor format", header)
	}
	got := header[len(prefix) : len(header)-1]
	if !hmac.Equal([]byte(got), []byte(BodySignature(key, body))) {
		return errors.New("Body-Sign signature does not match the body")
	}
	return nil
}
