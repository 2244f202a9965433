package sandbox

// The sandbox's side of KooDrive authentication (spec koodrive-carrier.md §7). This file is
// written apart from the client's signer on purpose and shares no code with it: when the
// two disagree about the canonical request, a test fails.

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// Verified counts the calls whose credentials the sandbox checked and accepted.
type Verified struct {
	// AppSignatures counts calls with a valid §7 app signature.
	AppSignatures int
	// Tokens counts calls with a live access token.
	Tokens int
}

// Verified returns how many calls passed each kind of credential check.
func (s *Sandbox) Verified() Verified {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.verified
}

// IssueToken issues a new access token, valid for the sandbox's TokenLifetime after its
// last use.
func (s *Sandbox) IssueToken() string {
	buf := make([]byte, 24)
	_, _ = rand.Read(buf)
	token := "sbx-" + hex.EncodeToString(buf)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = s.opts.Now()
	return token
}

// authenticate checks the Authorization header. It returns "" when the credentials are
// good, else the reason to answer and a detail kept only in the sandbox's rejection list.
func (s *Sandbox) authenticate(r *http.Request) (reason, detail string) {
	scheme, rest, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return s.checkToken(rest), ""
	case scheme == "HMAC-SHA256":
		return s.checkAppSignature(r, rest)
	default:
		return "Authorization must be Bearer <access token> or HMAC-SHA256 AppId=…,SignedHeaders=…,Signature=…", ""
	}
}

// checkToken accepts a live token and extends its life (sliding lifetime).
func (s *Sandbox) checkToken(presented string) string {
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var match string
	for token := range s.tokens {
		// Every issued token is compared in full, in constant time.
		if subtle.ConstantTimeCompare([]byte(token), []byte(presented)) == 1 {
			match = token
		}
	}
	if match == "" {
		return "access token is not one KooDrive issued"
	}
	if now.Sub(s.tokens[match]) > s.opts.TokenLifetime {
		delete(s.tokens, match)
		return fmt.Sprintf("access token expired: unused for more than %s", s.opts.TokenLifetime)
	}
	s.tokens[match] = now
	s.verified.Tokens++
	return ""
}

// checkAppSignature recomputes the §7 signature of the request as received.
func (s *Sandbox) checkAppSignature(r *http.Request, params string) (reason, detail string) {
	fields := map[string]string{}
	for _, kv := range strings.Split(params, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if _, dup := fields[k]; !ok || dup || v == "" {
			return "malformed HMAC-SHA256 Authorization: want AppId=…,SignedHeaders=…,Signature=…", ""
		}
		fields[k] = v
	}
	appID, signedHeaders, signature := fields["AppId"], fields["SignedHeaders"], fields["Signature"]
	if len(fields) != 3 || appID == "" || signedHeaders == "" || signature == "" {
		return "malformed HMAC-SHA256 Authorization: want exactly AppId, SignedHeaders and Signature", ""
	}
	secret, known := s.opts.Apps[appID]
	if !known {
		return "unknown AppId", ""
	}
	names := strings.Split(signedHeaders, ";")
	if !sort.StringsAreSorted(names) {
		return "SignedHeaders must be sorted", ""
	}
	has := map[string]bool{}
	for _, n := range names {
		if n != strings.ToLower(n) || n == "" || has[n] {
			return "SignedHeaders must be distinct lower-case header names", ""
		}
		has[n] = true
	}
	if !has["x-date"] || !has["x-user-id"] {
		return "SignedHeaders must include x-date and x-user-id", ""
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxSignedBody+1))
	if err != nil || len(body) > maxSignedBody {
		return "unreadable or oversized body", ""
	}
	r.Body = io.NopCloser(bytes.NewReader(body))

	var canonical strings.Builder
	canonical.WriteString(r.Method + "\n")
	canonical.WriteString(sandboxCanonicalPath(r.URL.Path) + "\n")
	query, err := sandboxCanonicalQuery(r.URL.RawQuery)
	if err != nil {
		return "query string cannot be decoded", err.Error()
	}
	canonical.WriteString(query + "\n")
	for _, n := range names {
		value := r.Header.Get(n)
		if n == "host" {
			value = r.Host
		}
		if value == "" {
			return "signed header " + n + " is not in the request", ""
		}
		canonical.WriteString(n + ":" + strings.TrimSpace(value) + "\n")
	}
	canonical.WriteString("\n" + signedHeaders + "\n")
	bodyHash := sha256.Sum256(body)
	canonical.WriteString(hex.EncodeToString(bodyHash[:]))

	requestHash := sha256.Sum256([]byte(canonical.String()))
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "HMAC-SHA256\n%x", requestHash)
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return "app signature does not match", fmt.Sprintf("sandbox canonical request: %q", canonical.String())
	}
	s.mu.Lock()
	s.verified.AppSignatures++
	s.mu.Unlock()
	return "", ""
}

// maxSignedBody bounds what the sandbox reads to check an app signature.
const maxSignedBody = 256 << 20

// sandboxCanonicalPath percent-encodes each segment of the decoded path and makes it end
// with "/".
func sandboxCanonicalPath(path string) string {
	var b strings.Builder
	for i, segment := range strings.Split(path, "/") {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(percentEncode(segment))
	}
	out := b.String()
	if out == "" || out[len(out)-1] != '/' {
		out += "/"
	}
	return out
}

// sandboxCanonicalQuery decodes the raw query parameter by parameter and rebuilds it:
// encoded names and values, sorted by decoded name (then value), "=" always present.
func sandboxCanonicalQuery(raw string) (string, error) {
	type param struct{ name, value string }
	var params []param
	for _, piece := range strings.Split(raw, "&") {
		if piece == "" {
			continue
		}
		rawName, rawValue, _ := strings.Cut(piece, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			return "", fmt.Errorf("parameter name %q: %w", rawName, err)
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return "", fmt.Errorf("parameter %s value %q: %w", name, rawValue, err)
		}
		params = append(params, param{name, value})
	}
	sort.SliceStable(params, func(i, j int) bool {
		if params[i].name == params[j].name {
			return params[i].value < params[j].value
		}
		return params[i].name < params[j].name
	})
	encoded := make([]string, 0, len(params))
	for _, p := range params {
		encoded = append(encoded, percentEncode(p.name)+"="+percentEncode(p.value))
	}
	return strings.Join(encoded, "&"), nil
}

// percentEncode keeps RFC 3986's unreserved characters and writes every other byte as %XY
// (upper-case hex).
func percentEncode(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("-_.~", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
