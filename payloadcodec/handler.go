package payloadcodec

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.temporal.io/sdk/converter"
)

// Environment variables and files for the codec server's token.
const (
	// EnvCodecToken holds the codec server's bearer token inline.
	EnvCodecToken = "KOOFLOW_CODEC_TOKEN"
	// EnvCodecTokenFile names a file holding the codec server's bearer token.
	EnvCodecTokenFile = "KOOFLOW_CODEC_TOKEN_FILE"
	// DevTokenFile is the name of the token file `kooflow dev` keeps in its data directory.
	DevTokenFile = "codec-token"
	// SessionCookie is the cookie /login sets for browsers (the Temporal UI cannot send a
	// static bearer token; with codec.includeCredentials it sends this cookie).
	SessionCookie = "kooflow_codec_session"
)

// minTokenLen is the shortest token accepted: 128 bits as hex.
const minTokenLen = 32

// maxBodyBytes bounds an /encode or /decode request body.
const maxBodyBytes = 8 << 20

// HandlerOptions configure NewHandler.
type HandlerOptions struct {
	// Codec encodes and decodes; required.
	Codec *Codec
	// Token is the bearer token a request must present, in the Authorization header or
	// through the session cookie /login sets; required, at least 32 characters.
	Token string
	// AllowedOrigins are the browser origins (scheme://host:port, e.g. the Temporal UI's
	// http://127.0.0.1:8233) whose CORS requests are answered; others get no CORS headers.
	AllowedOrigins []string
	// Logger records refused requests (never tokens or payloads); nil: slog.Default().
	Logger *slog.Logger
}

// NewHandler serves Temporal's remote codec protocol for the Temporal UI and CLI:
//
//   - POST /encode and POST /decode take and return JSON `{"payloads":[…]}` (the SDK's
//     converter.NewPayloadCodecHTTPHandler does the work), only for requests
//     authenticated by `Authorization: Bearer <token>` or the session cookie; anything
//     else gets 401 and nothing is decoded;
//   - OPTIONS preflights are answered for AllowedOrigins only (headers Content-Type,
//     X-Namespace, Authorization, Authorization-Extras; credentials allowed);
//   - GET /login shows a form and POST /login, given the token, sets an HttpOnly
//     SameSite=Strict session cookie so a browser running the UI (codec.includeCredentials)
//     is authorised without the token ever appearing in a URL or the UI's settings;
//   - GET /healthz answers 200 for health checks.
//
// Tokens are compared in constant time.
func NewHandler(opts HandlerOptions) (http.Handler, error) {
	if opts.Codec == nil {
		return nil, errors.New("codec handler: no codec")
	}
	if len(opts.Token) < minTokenLen {
		return nil, fmt.Errorf("codec handler: token is %d characters; at least %d needed", len(opts.Token), minTokenLen)
	}
	origins := make([]string, 0, len(opts.AllowedOrigins))
	for _, o := range opts.AllowedOrigins {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		if o == "" {
			continue
		}
		if o == "*" || !(strings.HasPrefix(o, "http://") || strings.HasPrefix(o, "https://")) || strings.Count(o, "/") != 2 {
			return nil, fmt.Errorf("codec handler: allowed origin %q must be scheme://host[:port] (no wildcard, no path)", o)
		}
		origins = append(origins, o)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	tokenSum := sha256.Sum256([]byte(opts.Token))
	h := &handler{
		codec:    converter.NewPayloadCodecHTTPHandler(opts.Codec),
		tokenSum: tokenSum,
		session:  sessionValue(opts.Token),
		origins:  origins,
		logger:   logger,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("OPTIONS /encode", h.preflight)
	mux.HandleFunc("OPTIONS /decode", h.preflight)
	mux.HandleFunc("POST /encode", h.serveCodec)
	mux.HandleFunc("POST /decode", h.serveCodec)
	mux.HandleFunc("GET /login", h.loginForm)
	mux.HandleFunc("POST /login", h.login)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	return mux, nil
}

type handler struct {
	codec    http.Handler
	tokenSum [sha256.Size]byte
	session  string
	origins  []string
	logger   *slog.Logger
}

// sessionValue derives the cookie value from the token, so the cookie is not the token.
func sessionValue(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("kooflow codec session v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// cors sets the CORS response headers when the request's Origin is allowed and reports
// whether it is (a request without Origin is not a browser CORS request).
func (h *handler) cors(w http.ResponseWriter, r *http.Request) (origin string, allowed bool) {
	w.Header().Add("Vary", "Origin")
	origin = r.Header.Get("Origin")
	if origin == "" || !slices.Contains(h.origins, origin) {
		return origin, false
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Set("Access-Control-Allow-Credentials", "true")
	return origin, true
}

func (h *handler) preflight(w http.ResponseWriter, r *http.Request) {
	origin, ok := h.cors(w, r)
	if !ok {
		h.logger.Warn("codec server refused a CORS preflight from an origin not allowed", "origin", truncate(origin), "path", r.URL.Path)
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	w.Header().Set("Access-Control-Allow-Headers", "Content-Type, X-Namespace, Authorization, Authorization-Extras")
	w.Header().Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// authorised reports whether r carries the token as a bearer token or the session cookie.
func (h *handler) authorised(r *http.Request) bool {
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, tok, ok := strings.Cut(auth, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
			if subtle.ConstantTimeCompare(sum[:], h.tokenSum[:]) == 1 {
				return true
			}
		}
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		return subtle.ConstantTimeCompare([]byte(c.Value), []byte(h.session)) == 1
	}
	return false
}

func (h *handler) serveCodec(w http.ResponseWriter, r *http.Request) {
	if origin, ok := h.cors(w, r); origin != "" && !ok {
		h.logger.Warn("codec server refused a request from an origin not allowed", "origin", truncate(origin), "path", r.URL.Path)
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	if !h.authorised(r) {
		h.logger.Warn("codec server refused an unauthenticated request", "path", r.URL.Path, "remote", r.RemoteAddr,
			"origin", truncate(r.Header.Get("Origin")))
		w.Header().Set("WWW-Authenticate", `Bearer realm="kooflow-codec"`)
		http.Error(w, "unauthorized: send Authorization: Bearer <KOOFLOW_CODEC_TOKEN>, or sign in at /login", http.StatusUnauthorized)
		return
	}
	// Requiring JSON forces browsers to preflight, so a page from another origin cannot
	// make a credentialed "simple" request.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		http.Error(w, "Content-Type must be application/json", http.StatusUnsupportedMediaType)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	h.codec.ServeHTTP(w, r)
}

const loginPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>kooflow codec server</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:3em auto">
<h1>kooflow codec server</h1>
<p>%s</p>
<form method="post" action="/login">
<label>Codec token <input type="password" name="token" autocomplete="current-password" size="48" autofocus></label>
<button type="submit">Sign in</button>
</form>
<p>The Temporal UI decodes payloads through this server once this browser is signed in
(the UI's codec setting needs <em>include cross-origin credentials</em>).</p>
</body></html>`

func (h *handler) loginForm(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	fmt.Fprintf(w, loginPage, "Enter the codec token (KOOFLOW_CODEC_TOKEN, or the codec-token file of kooflow dev's data directory).")
}

func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	sum := sha256.Sum256([]byte(strings.TrimSpace(r.PostFormValue("token"))))
	if subtle.ConstantTimeCompare(sum[:], h.tokenSum[:]) != 1 {
		h.logger.Warn("codec server refused a sign-in with a wrong token", "remote", r.RemoteAddr)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, loginPage, html.EscapeString("Wrong token."))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: h.session, Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "Signed in: the Temporal UI in this browser now shows decoded payloads.")
}

// TokenFromEnv returns the codec server's token from KOOFLOW_CODEC_TOKEN or the file
// named by KOOFLOW_CODEC_TOKEN_FILE (surrounding whitespace trimmed), or an error saying
// what to set. Errors never include the token.
func TokenFromEnv(getenv func(string) string) (string, error) {
	inline, file := strings.TrimSpace(getenv(EnvCodecToken)), strings.TrimSpace(getenv(EnvCodecTokenFile))
	var tok string
	switch {
	case inline != "" && file != "":
		return "", fmt.Errorf("both %s and %s are set; use one", EnvCodecToken, EnvCodecTokenFile)
	case inline != "":
		tok = inline
	case file != "":
		data, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s: %w", EnvCodecTokenFile, err)
		}
		tok = strings.TrimSpace(string(data))
	default:
		return "", fmt.Errorf("the codec server needs a token: set %s (at least %d characters, e.g. `openssl rand -hex 32`) or %s=/path/to/token-file",
			EnvCodecToken, minTokenLen, EnvCodecTokenFile)
	}
	if len(tok) < minTokenLen {
		return "", fmt.Errorf("codec token is %d characters; at least %d needed (e.g. `openssl rand -hex 32`)", len(tok), minTokenLen)
	}
	return tok, nil
}

// EnsureDevToken returns the path of dataDir's codec token file (DevTokenFile), creating
// it with mode 0600 and a random 256-bit hex token the first time.
func EnsureDevToken(dataDir string) (string, error) {
	path := filepath.Join(dataDir, DevTokenFile)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("dev codec token: %w", err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("dev codec token: %w", err)
	}
	if err := writeNewSecret(path, hex.EncodeToString(b)+"\n"); err != nil {
		return "", fmt.Errorf("dev codec token: %w", err)
	}
	return path, nil
}
