package koodrive

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
)

// Signer gives one HTTP request kooflow's KooDrive credentials. The client calls Sign for
// every request it sends — each attempt and each retry after a refresh is a new request —
// after it has set the Host, X-Date and X-User-Id the request goes out with; body is the
// exact bytes of the request's body (nil when it has none). Sign sets the Authorization
// header. Signers must be safe for concurrent use, and must never put a secret in an
// error or in their String form.
type Signer interface {
	Sign(req *http.Request, body []byte) error
}

// Refresher is implemented by signers whose credentials another party renews (an access
// token kept in a file). When KooDrive answers 401, the client calls Refresh; if it reports
// that the credentials changed, the request is sent once more, at once.
type Refresher interface {
	Refresh(ctx context.Context) (changed bool, err error)
}

// The app-signature scheme of spec koodrive-carrier.md §7 (the Huawei API Gateway's app
// authentication).
const (
	// AppSignatureAlgorithm names the scheme in the Authorization header and the string to sign.
	AppSignatureAlgorithm = "HMAC-SHA256"
	// AppSignedHeaders are the headers kooflow signs, lower-case, sorted, joined with ";".
	AppSignedHeaders = "host;x-date;x-user-id"
)

// The choices §7 leaves open. Everything the signature depends on that the vendor text does
// not state is decided here, in one place, so it can be changed when KooDrive confirms it.
//
//   - ASSUMED (§7 "HashedRequestPayload ... assumed, by analogy with Huawei APIG; text not
//     retrieved"): the payload hash is the lower-hex SHA-256 of the exact bytes of the body
//     as sent — for the multipart statement upload, the whole multipart body with its
//     boundaries — and the SHA-256 of the empty string when there is no body. (APIG also
//     accepts "UNSIGNED-PAYLOAD" with an x-sdk-content-sha256 header; kooflow never uses it.)
//   - ASSUMED (§7 says "sorted by name in code-point order" without saying whether before
//     or after encoding): query parameters are ordered by their decoded names, then by
//     decoded value for a repeated name — what the APIG SDKs do. kooflow's own queries are
//     ASCII, where both readings agree.
func hashedPayload(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// sortQueryParams orders canonical query parameters (see the assumptions above).
func sortQueryParams(params [][2]string) {
	sort.Slice(params, func(i, j int) bool {
		if params[i][0] != params[j][0] {
			return params[i][0] < params[j][0]
		}
		return params[i][1] < params[j][1]
	})
}

// AppSignature signs requests with an app ID and app secret (KOODRIVE_AUTH=app).
type AppSignature struct {
	appID  string
	secret []byte
}

// NewAppSignature returns a signer for appID and its secret.
func NewAppSignature(appID, secret string) *AppSignature {
	return &AppSignature{appID: appID, secret: []byte(secret)}
}

// String describes the signer without its secret.
func (s *AppSignature) String() string { return "app signature (KOODRIVE_APP_ID " + s.appID + ")" }

// Sign sets "Authorization: HMAC-SHA256 AppId=<id>,SignedHeaders=host;x-date;x-user-id,
// Signature=<sig>" over the request as it will be sent.
func (s *AppSignature) Sign(req *http.Request, body []byte) error {
	creq, err := CanonicalRequest(req, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", AppSignatureAlgorithm+" AppId="+s.appID+",SignedHeaders="+AppSignedHeaders+
		",Signature="+s.signature(creq))
	return nil
}

// signature is lower-hex HMAC-SHA256(secret, StringToSign).
func (s *AppSignature) signature(canonicalRequest string) string {
	mac := hmac.New(sha256.New, s.secret)
	mac.Write([]byte(StringToSign(canonicalRequest)))
	return hex.EncodeToString(mac.Sum(nil))
}

// StringToSign is "HMAC-SHA256\n" + lower-hex SHA-256 of the canonical request.
func StringToSign(canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return AppSignatureAlgorithm + "\n" + hex.EncodeToString(sum[:])
}

// CanonicalRequest renders req (with body, its exact bytes) as §7's canonical request:
// method, canonical URI, canonical query string, canonical headers, signed headers and
// payload hash, each on its own line. req must carry X-Date and X-User-Id.
func CanonicalRequest(req *http.Request, body []byte) (string, error) {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	values := map[string]string{"host": host, "x-date": req.Header.Get("X-Date"), "x-user-id": req.Header.Get("X-User-Id")}
	var headers strings.Builder
	for _, name := range strings.Split(AppSignedHeaders, ";") {
		v := strings.TrimSpace(values[name])
		if v == "" {
			return "", fmt.Errorf("sign %s %s: header %s is empty", req.Method, req.URL.Path, name)
		}
		headers.WriteString(name + ":" + v + "\n")
	}
	query, err := canonicalQuery(req.URL.RawQuery)
	if err != nil {
		return "", fmt.Errorf("sign %s %s: %w", req.Method, req.URL.Path, err)
	}
	return strings.Join([]string{req.Method, canonicalURI(req.URL.Path), query, headers.String(), AppSignedHeaders, hashedPayload(body)}, "\n"), nil
}

// canonicalURI encodes each segment of the decoded path and appends the trailing "/"
// §7 requires when it is missing.
func canonicalURI(path string) string {
	segments := strings.Split(path, "/")
	for i, s := range segments {
		segments[i] = uriEncode(s)
	}
	uri := strings.Join(segments, "/")
	if !strings.HasSuffix(uri, "/") {
		uri += "/"
	}
	return uri
}

// canonicalQuery decodes a raw query and re-encodes it canonically (see encodeParams);
// "" for no query.
func canonicalQuery(rawQuery string) (string, error) {
	if rawQuery == "" {
		return "", nil
	}
	parsed, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", fmt.Errorf("query %q: %w", rawQuery, err)
	}
	return encodeParams(parsed), nil
}

// EncodeQuery renders q the way the client sends it: canonically (§7), so the query on the
// wire is the one that was signed. Spaces become %20, never "+".
func EncodeQuery(q url.Values) string { return encodeParams(q) }

// encodeParams is §7's canonical query string: every name and value percent-encoded,
// parameters sorted, "name=value" joined with "&" ("=" kept for an empty value).
func encodeParams(q url.Values) string {
	var params [][2]string
	for name, vs := range q {
		for _, v := range vs {
			params = append(params, [2]string{name, v})
		}
	}
	sortQueryParams(params)
	parts := make([]string, len(params))
	for i, p := range params {
		parts[i] = uriEncode(p[0]) + "=" + uriEncode(p[1])
	}
	return strings.Join(parts, "&")
}

// uriEncode percent-encodes every byte except RFC 3986's unreserved A-Z a-z 0-9 - _ . ~,
// with upper-case hex digits.
func uriEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// StaticToken sends one access token as "Authorization: Bearer <token>" for the client's
// whole life (KOODRIVE_AUTH=token with KOODRIVE_ACCESS_TOKEN). KooDrive's tokens expire 20
// minutes after their last use, so this suits only a token kept alive by steady traffic;
// prefer TokenFile or the app signature.
type StaticToken struct{ token string }

// NewStaticToken returns a signer that always sends token.
func NewStaticToken(token string) *StaticToken { return &StaticToken{token: token} }

// String describes the signer without its token.
func (s *StaticToken) String() string { return "access token from KOODRIVE_ACCESS_TOKEN" }

// Sign sets the bearer token.
func (s *StaticToken) Sign(req *http.Request, _ []byte) error {
	req.Header.Set("Authorization", "Bearer "+s.token)
	return nil
}

// TokenFile sends the access token kept in a file that another process renews — a mounted
// Kubernetes secret, a sidecar (KOODRIVE_AUTH=token with KOODRIVE_ACCESS_TOKEN_FILE). The
// file holds the token alone (surrounding white space is ignored). It is read again
// whenever it changed since the last read (another file, size or modification time) and,
// through Refresh, whenever KooDrive refuses the token — which also catches a rewrite the
// file's metadata does not show (equal length, coarse modification times).
type TokenFile struct {
	path string

	mu    sync.Mutex
	token string
	info  os.FileInfo
}

// NewTokenFile returns a signer reading its token from path. The file is first read when
// the first request is signed, so a sidecar may write it after kooflow starts.
func NewTokenFile(path string) *TokenFile { return &TokenFile{path: path} }

// String describes the signer without its token.
func (f *TokenFile) String() string { return "access token from KOODRIVE_ACCESS_TOKEN_FILE " + f.path }

// Sign sets the current token as a bearer token.
func (f *TokenFile) Sign(req *http.Request, _ []byte) error {
	token, err := f.current()
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return nil
}

// Refresh reads the file again and reports whether the token changed.
func (f *TokenFile) Refresh(context.Context) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.token
	if err := f.readLocked(); err != nil {
		return false, err
	}
	return f.token != old, nil
}

func (f *TokenFile) current() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	info, err := os.Stat(f.path)
	if err != nil {
		return "", fmt.Errorf("read the KooDrive access token file: %w", err)
	}
	if f.info != nil && os.SameFile(f.info, info) && info.Size() == f.info.Size() && info.ModTime().Equal(f.info.ModTime()) {
		return f.token, nil
	}
	if err := f.readLocked(); err != nil {
		return "", err
	}
	return f.token, nil
}

func (f *TokenFile) readLocked() error {
	file, err := os.Open(f.path)
	if err != nil {
		return fmt.Errorf("read the KooDrive access token file: %w", err)
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return fmt.Errorf("read the KooDrive access token file: %w", err)
	}
	if info.Size() > 64<<10 {
		return fmt.Errorf("the KooDrive access token file %s holds %d bytes, more than a token", f.path, info.Size())
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(file); err != nil {
		return fmt.Errorf("read the KooDrive access token file %s: %w", f.path, err)
	}
	token := strings.TrimSpace(buf.String())
	if token == "" {
		return fmt.Errorf("the KooDrive access token file %s is empty", f.path)
	}
	if strings.ContainsAny(token, "\r\n") {
		return fmt.Errorf("the KooDrive access token file %s holds more than one line; it must hold the token alone", f.path)
	}
	f.token, f.info = token, info
	return nil
}

// Variables that configure kooflow's KooDrive client (see ConfigFromEnv).
const (
	EnvBaseURL         = "KOODRIVE_BASE_URL"
	EnvUserID          = "KOODRIVE_USER_ID"
	EnvAuth            = "KOODRIVE_AUTH"
	EnvAppID           = "KOODRIVE_APP_ID"
	EnvAppSecret       = "KOODRIVE_APP_SECRET"
	EnvAppSecretFile   = "KOODRIVE_APP_SECRET_FILE"
	EnvAccessToken     = "KOODRIVE_ACCESS_TOKEN"
	EnvAccessTokenFile = "KOODRIVE_ACCESS_TOKEN_FILE"
)

// Authentication modes, the values of KOODRIVE_AUTH.
const (
	AuthApp   = "app"
	AuthToken = "token"
)

// ConfigFromEnv reads the client's configuration through getenv (os.Getenv in the worker):
// KOODRIVE_BASE_URL and KOODRIVE_USER_ID, and the credentials KOODRIVE_AUTH selects — "app":
// KOODRIVE_APP_ID and KOODRIVE_APP_SECRET or KOODRIVE_APP_SECRET_FILE (a file holding the
// secret alone, read here once, surrounding white space trimmed); "token":
// KOODRIVE_ACCESS_TOKEN or KOODRIVE_ACCESS_TOKEN_FILE. Unset, the mode is app when
// KOODRIVE_APP_ID is set and token otherwise. The error names every missing or conflicting
// variable at once, never a value.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{BaseURL: getenv(EnvBaseURL), UserID: getenv(EnvUserID)}
	var missing, problems []string
	if cfg.BaseURL == "" {
		missing = append(missing, EnvBaseURL)
	}
	if cfg.UserID == "" {
		missing = append(missing, EnvUserID)
	}
	mode := getenv(EnvAuth)
	if mode == "" {
		mode = AuthToken
		if getenv(EnvAppID) != "" {
			mode = AuthApp
		}
	}
	switch mode {
	case AuthApp:
		id, secret, file := getenv(EnvAppID), getenv(EnvAppSecret), strings.TrimSpace(getenv(EnvAppSecretFile))
		if id == "" {
			missing = append(missing, EnvAppID)
		}
		switch {
		case secret == "" && file == "":
			missing = append(missing, EnvAppSecret+" or "+EnvAppSecretFile)
		case secret != "" && file != "":
			problems = append(problems, "set only one of "+EnvAppSecret+" and "+EnvAppSecretFile)
		case file != "":
			var err error
			if secret, err = readAppSecret(file); err != nil {
				problems = append(problems, err.Error())
			}
		}
		cfg.Auth = NewAppSignature(id, secret)
	case AuthToken:
		token, file := getenv(EnvAccessToken), getenv(EnvAccessTokenFile)
		switch {
		case token == "" && file == "":
			missing = append(missing, EnvAccessToken+" or "+EnvAccessTokenFile)
		case token != "" && file != "":
			problems = append(problems, "set only one of "+EnvAccessToken+" and "+EnvAccessTokenFile)
		case file != "":
			cfg.Auth = NewTokenFile(file)
		default:
			cfg.Auth = NewStaticToken(token)
		}
	default:
		problems = append(problems, fmt.Sprintf("%s=%q is neither %s nor %s", EnvAuth, mode, AuthApp, AuthToken))
	}
	if len(missing) > 0 {
		problems = append([]string{"missing required environment variable(s): " + strings.Join(missing, ", ")}, problems...)
	}
	if len(problems) > 0 {
		return Config{}, errors.New("KooDrive (" + EnvAuth + "=" + mode + "): " + strings.Join(problems, "; "))
	}
	return cfg, nil
}

// readAppSecret reads the app secret from path (KOODRIVE_APP_SECRET_FILE): the file holds
// the secret alone, surrounding white space ignored. Errors name the variable and the path,
// never the file's content.
func readAppSecret(path string) (string, error) {
	file, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s: read the app secret: %w", EnvAppSecretFile, err)
	}
	defer file.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(file, 64<<10+1)); err != nil {
		return "", fmt.Errorf("%s: read the app secret %s: %w", EnvAppSecretFile, path, err)
	}
	if buf.Len() > 64<<10 {
		return "", fmt.Errorf("%s: the file %s holds more than 64 KiB, more than an app secret", EnvAppSecretFile, path)
	}
	secret := strings.TrimSpace(buf.String())
	if secret == "" {
		return "", fmt.Errorf("%s: the file %s is empty; it must hold the app secret from the KooDrive console", EnvAppSecretFile, path)
	}
	if strings.ContainsAny(secret, "\r\n") {
		return "", fmt.Errorf("%s: the file %s holds more than one line; it must hold the app secret alone", EnvAppSecretFile, path)
	}
	return secret, nil
}
