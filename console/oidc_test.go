package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/console"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
)

// person is a user of the test identity provider (mockoidc), with the claims a carrier's
// provider would put in the ID token; audience and nonce, when set, replace the true ones
// (a token issued to another application, a token replayed from another sign-in).
type person struct {
	sub, username, email string
	groups               []string
	audience             []string
	azp                  string
	nonce                string
}

func (p *person) ID() string { return p.sub }

func (p *person) Userinfo([]string) ([]byte, error) {
	return json.Marshal(map[string]string{"sub": p.sub})
}

// personClaims are the ID token's claims: the registered ones, the nonce and the person's.
type personClaims struct {
	*mockoidc.IDTokenClaims
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Email             string   `json:"email,omitempty"`
	Groups            []string `json:"groups,omitempty"`
	AZP               string   `json:"azp,omitempty"`
}

func (p *person) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	if p.audience != nil {
		base.Audience = p.audience
	}
	if p.nonce != "" {
		base.Nonce = p.nonce
	}
	return &personClaims{IDTokenClaims: base, PreferredUsername: p.username, Email: p.email, Groups: p.groups, AZP: p.azp}, nil
}

// syncBuffer is a log destination safe for the servers' goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// oidcWorld is newWorld's store behind a console that signs in through a running test
// identity provider, served over real HTTP.
type oidcWorld struct {
	*world
	idp  *mockoidc.MockOIDC
	url  string
	logs *syncBuffer
	// authorize and token are the last requests the provider got at those endpoints.
	mu                       sync.Mutex
	authorizeForm, tokenForm url.Values
}

// roles is the mapping every OIDC test uses.
const roles = "viewer=kooflow-viewers,operator=kooflow-operators,admin=kooflow-admins"

func newOIDCWorld(t *testing.T) *oidcWorld {
	t.Helper()
	ow := &oidcWorld{world: newWorld(t), logs: &syncBuffer{}}
	idp, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Record what the console asks of the provider (PKCE, nonce), then let it answer.
	if err := idp.AddMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := r.ParseForm(); err == nil {
				ow.mu.Lock()
				switch r.URL.Path {
				case mockoidc.AuthorizationEndpoint:
					ow.authorizeForm = r.Form
				case mockoidc.TokenEndpoint:
					ow.tokenForm = r.Form
				}
				ow.mu.Unlock()
			}
			next.ServeHTTP(w, r)
		})
	}); err != nil {
		t.Fatal(err)
	}
	if err := idp.Start(listen(t), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Shutdown() })
	ow.idp = idp

	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	ow.url = srv.URL
	mapping, err := console.ParseRoles(roles)
	if err != nil {
		t.Fatal(err)
	}
	st := ow.store
	c, err := console.New(console.Config{
		Store: st, SessionKey: []byte("a-test-session-key-of-32-bytes-or-more"),
		Operator: func(a starter.Actor) console.Operator {
			return &starter.Operator{Store: st, Actor: a, Dial: func(context.Context) (client.Client, error) {
				return nil, errors.New("connect to Temporal at 127.0.0.1:1: connection refused")
			}}
		},
		Logger: slog.New(slog.NewTextHandler(ow.logs, nil)),
		Now:    ow.clock,
		OIDC: &console.OIDC{Issuer: idp.Issuer(), ClientID: idp.ClientID, ClientSecret: idp.ClientSecret, ConsoleURL: srv.URL,
			ProviderName: "Carrier SSO", Roles: mapping},
	})
	if err != nil {
		t.Fatal(err)
	}
	handler = c
	ow.console = c
	return ow
}

// browser is one browser: its own cookies; it follows redirects only when told.
type browser struct {
	t      *testing.T
	client *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// get sends one GET and returns the answer and its body.
func (b *browser) get(target string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.client.Get(target)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// toCallback starts a sign-in at the console and follows it through the provider to the
// console's callback URL, which it returns without calling.
func (b *browser) toCallback(consoleURL string) string {
	b.t.Helper()
	next := consoleURL + "/signin/oidc"
	for range 5 {
		resp, body := b.get(next)
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
			b.t.Fatalf("GET %s answered %d: %s", next, resp.StatusCode, body)
		}
		loc, err := resp.Location()
		if err != nil {
			b.t.Fatal(err)
		}
		if loc.Path == console.OIDCCallbackPath {
			return loc.String()
		}
		next = loc.String()
	}
	b.t.Fatal("the sign-in never came back to the console")
	return ""
}

// finish calls the callback and follows the console's redirect, if any, to the page.
func (b *browser) finish(callback string) (*http.Response, string) {
	b.t.Helper()
	resp, body := b.get(callback)
	if resp.StatusCode != http.StatusSeeOther {
		return resp, body
	}
	loc, err := resp.Location()
	if err != nil {
		b.t.Fatal(err)
	}
	return b.get(loc.String())
}

// signedIn reports whether the browser holds a console session.
func (b *browser) signedIn(consoleURL string) bool {
	resp, _ := b.get(consoleURL + "/")
	return resp.StatusCode == http.StatusOK
}

// TestOIDCSignIn: the sign-in page offers the provider; a sign-in goes to the provider with
// PKCE (S256), a state and a nonce, comes back, and starts a session with the role the
// groups claim maps to, named by preferred_username; it is logged and audited, and no
// secret reaches the log.
func TestOIDCSignIn(t *testing.T) {
	w := newOIDCWorld(t)
	b := newBrowser(t)
	if resp, body := b.get(w.url + "/"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin" {
		t.Fatalf("signed out, the overview answered %d: %s", resp.StatusCode, body)
	}
	if resp, body := b.get(w.url + "/signin"); resp.StatusCode != http.StatusOK || !strings.Contains(body, `href="/signin/oidc">Sign in with Carrier SSO</a>`) {
		t.Fatalf("sign-in page: %d %s", resp.StatusCode, body)
	}

	w.idp.QueueUser(&person{sub: "u-1001", username: "olga", email: "olga@carrier.example", groups: []string{"staff", "kooflow-operators"}})
	callback := b.toCallback(w.url)
	w.mu.Lock()
	auth := w.authorizeForm
	w.mu.Unlock()
	if auth.Get("code_challenge_method") != "S256" || auth.Get("code_challenge") == "" || len(auth.Get("nonce")) < 32 || len(auth.Get("state")) < 32 ||
		auth.Get("redirect_uri") != w.url+console.OIDCCallbackPath || !strings.Contains(auth.Get("scope"), "openid") {
		t.Fatalf("the provider was asked %v; want PKCE S256, a state, a nonce, openid and the callback", auth)
	}
	resp, body := b.finish(callback)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "olga · operator") {
		t.Fatalf("after sign-in: %d %s", resp.StatusCode, body)
	}
	w.mu.Lock()
	verifier := w.tokenForm.Get("code_verifier")
	w.mu.Unlock()
	if len(verifier) < 43 {
		t.Errorf("the code was exchanged with verifier %q; want a PKCE verifier", verifier)
	}
	u, _ := url.Parse(w.url)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == "kooflow_oidc" {
			t.Error("the sign-in's flow cookie outlived the sign-in")
		}
	}
	if !b.signedIn(w.url) {
		t.Fatal("no session after sign-in")
	}
	// The operator's page offers what an operator may do.
	if _, body := b.get(w.url + "/expiration?id=" + url.QueryEscape("expire/koogallery/inst-1/current")); !strings.Contains(body, "Retry…") {
		t.Error("an operator signed in through the provider is not offered the retry")
	}

	entries := w.auditEntries(t)
	if len(entries) != 1 || entries[0].Actor != "olga" || entries[0].Action != "console sign-in" || entries[0].Result != store.AuditOK ||
		entries[0].Via != starter.ViaConsole || !strings.Contains(entries[0].Detail, "operator") {
		t.Errorf("audit = %+v, want olga's sign-in as operator", entries)
	}
	logs := w.logs.String()
	if !strings.Contains(logs, "console sign-in") || !strings.Contains(logs, "actor=olga") {
		t.Errorf("the sign-in is not logged: %s", logs)
	}
	for _, secret := range []string{w.idp.ClientSecret, "a-test-session-key"} {
		if strings.Contains(logs, secret) {
			t.Errorf("a secret reached the log: %s", logs)
		}
	}

	// Without preferred_username the email names them; admins get admin.
	b2 := newBrowser(t)
	w.idp.QueueUser(&person{sub: "u-1002", email: "ada@carrier.example", groups: []string{"kooflow-viewers", "kooflow-admins"}})
	if _, body := b2.finish(b2.toCallback(w.url)); !strings.Contains(body, "ada@carrier.example · admin") {
		t.Errorf("an admin known by email: %s", body)
	}
}

// TestOIDCWrongState: a callback whose state is not the one this browser started, or
// that reaches a browser that started no sign-in (login CSRF), signs nobody in.
func TestOIDCWrongState(t *testing.T) {
	w := newOIDCWorld(t)
	b := newBrowser(t)
	w.idp.QueueUser(&person{sub: "u-1", username: "olga", groups: []string{"kooflow-admins"}})
	callback := b.toCallback(w.url)
	forged, _ := url.Parse(callback)
	q := forged.Query()
	q.Set("state", strings.Repeat("0", 64))
	forged.RawQuery = q.Encode()
	resp, body := b.finish(forged.String())
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "not started in this browser") {
		t.Fatalf("a wrong state answered %d: %s", resp.StatusCode, body)
	}
	if b.signedIn(w.url) {
		t.Fatal("a wrong state signed the browser in")
	}

	// The attacker's own callback, sent to a victim's browser that started nothing.
	attacker := newBrowser(t)
	w.idp.QueueUser(&person{sub: "u-666", username: "mallory", groups: []string{"kooflow-admins"}})
	callback = attacker.toCallback(w.url)
	victim := newBrowser(t)
	resp, body = victim.finish(callback)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "cookie is missing") {
		t.Fatalf("a callback in a browser that started no sign-in answered %d: %s", resp.StatusCode, body)
	}
	if victim.signedIn(w.url) {
		t.Fatal("the victim's browser was signed in as the attacker")
	}
}

// TestOIDCReplay: a completed sign-in's callback, replayed with its flow cookie, is
// refused by the console; an ID token carrying another sign-in's nonce is refused.
func TestOIDCReplay(t *testing.T) {
	w := newOIDCWorld(t)
	b := newBrowser(t)
	w.idp.QueueUser(&person{sub: "u-1", username: "olga", groups: []string{"kooflow-operators"}})
	callback := b.toCallback(w.url)
	u, _ := url.Parse(w.url + console.OIDCCallbackPath)
	flowCookies := b.client.Jar.Cookies(u)
	if len(flowCookies) == 0 {
		t.Fatal("no flow cookie for the callback")
	}
	if _, body := b.finish(callback); !strings.Contains(body, "olga · operator") {
		t.Fatalf("the first sign-in failed: %s", body)
	}

	// Someone who copied the callback URL and the flow cookie replays them.
	thief := newBrowser(t)
	thief.client.Jar.SetCookies(u, flowCookies)
	resp, body := thief.finish(callback)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "already used") {
		t.Fatalf("a replayed callback answered %d: %s", resp.StatusCode, body)
	}
	if thief.signedIn(w.url) {
		t.Fatal("a replayed callback signed in")
	}

	// The provider's answer carries the nonce of an earlier sign-in.
	w.mu.Lock()
	oldNonce := w.authorizeForm.Get("nonce")
	w.mu.Unlock()
	b2 := newBrowser(t)
	w.idp.QueueUser(&person{sub: "u-1", username: "olga", groups: []string{"kooflow-operators"}, nonce: oldNonce})
	resp, body = b2.finish(b2.toCallback(w.url))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "belongs to another sign-in") {
		t.Fatalf("a token with another sign-in's nonce answered %d: %s", resp.StatusCode, body)
	}
	if b2.signedIn(w.url) {
		t.Fatal("a token with another sign-in's nonce signed in")
	}
}

// TestOIDCUnmappedRoleIsRefused: a user the provider signs in whose groups map to no
// role is told so, logged and audited, and gets no session: there is no default role.
func TestOIDCUnmappedRoleIsRefused(t *testing.T) {
	w := newOIDCWorld(t)
	for name, p := range map[string]*person{
		"other groups": {sub: "u-7", username: "mark", groups: []string{"marketing", "kooflow-viewers-old"}},
		"no groups":    {sub: "u-8", username: "nina"},
	} {
		b := newBrowser(t)
		w.idp.QueueUser(p)
		resp, body := b.finish(b.toCallback(w.url))
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "signed you in as "+p.username+", but your account has no kooflow role") {
			t.Errorf("%s: answered %d: %s", name, resp.StatusCode, body)
		}
		if b.signedIn(w.url) {
			t.Errorf("%s: signed in without a role", name)
		}
	}
	if logs := w.logs.String(); !strings.Contains(logs, "no kooflow role") || !strings.Contains(logs, "actor=mark") || !strings.Contains(logs, "marketing") {
		t.Errorf("the refusal is not logged with who and their groups: %s", logs)
	}
	entries := w.auditEntries(t)
	if len(entries) != 2 {
		t.Fatalf("audit = %+v, want both refusals", entries)
	}
	for _, e := range entries {
		if e.Action != "console sign-in" || e.Result != store.AuditFailed || !strings.Contains(e.Detail, "no kooflow role") {
			t.Errorf("audit entry %+v, want a refused sign-in", e)
		}
	}
}

// TestOIDCOtherAudienceIsRefused: an ID token the provider issued to another application
// (its audience is not the console's client ID), or to several with another one as the
// authorized party, signs nobody in.
func TestOIDCOtherAudienceIsRefused(t *testing.T) {
	w := newOIDCWorld(t)
	for name, p := range map[string]*person{
		"another audience":          {sub: "u-1", username: "olga", groups: []string{"kooflow-admins"}, audience: []string{"grafana"}},
		"issued to another, for us": {sub: "u-1", username: "olga", groups: []string{"kooflow-admins"}, audience: []string{"grafana", w.idp.ClientID}, azp: "grafana"},
	} {
		b := newBrowser(t)
		w.idp.QueueUser(p)
		resp, body := b.finish(b.toCallback(w.url))
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "you are not signed in") {
			t.Errorf("%s: answered %d: %s", name, resp.StatusCode, body)
		}
		if b.signedIn(w.url) {
			t.Errorf("%s: signed in", name)
		}
	}
	if logs := w.logs.String(); !strings.Contains(logs, "expected audience") {
		t.Errorf("the log does not say the audience was wrong: %s", logs)
	}
}

// TestOIDCProviderDown: the console starts while the provider is unreachable and says so
// on sign-in; DiscoverOIDC reports it.
func TestOIDCProviderDown(t *testing.T) {
	w := newWorld(t)
	l := listen(t)
	issuer := "http://" + l.Addr().String() + "/oidc"
	l.Close()
	c, err := console.New(console.Config{Store: w.store, SessionKey: []byte("a-test-session-key-of-32-bytes-or-more"),
		Operator: func(starter.Actor) console.Operator { return nil }, Logger: slog.New(slog.DiscardHandler),
		OIDC: &console.OIDC{Issuer: issuer, ClientID: "kooflow", ClientSecret: "s", ConsoleURL: "http://127.0.0.1:8280",
			Roles: map[console.Role][]string{console.RoleAdmin: {"admins"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DiscoverOIDC(context.Background()); err == nil || !strings.Contains(err.Error(), issuer) {
		t.Errorf("DiscoverOIDC = %v, want an error naming the issuer", err)
	}
	srv := httptest.NewServer(c)
	defer srv.Close()
	resp, body := newBrowser(t).get(srv.URL + "/signin/oidc")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "does not answer") {
		t.Errorf("sign-in with the provider down answered %d: %s", resp.StatusCode, body)
	}
}

// TestOIDCConfiguration: a console with OIDC refuses an incomplete configuration, naming
// what is missing; the role mapping is read strictly; the description hides the secret.
func TestOIDCConfiguration(t *testing.T) {
	w := newWorld(t)
	_, err := console.New(console.Config{Store: w.store, SessionKey: []byte("a-test-session-key-of-32-bytes-or-more"),
		Operator: func(starter.Actor) console.Operator { return nil }, OIDC: &console.OIDC{ConsoleURL: "kooflow.example"}})
	if err == nil {
		t.Fatal("a console with an empty OIDC configuration was built")
	}
	for _, want := range []string{"issuer URL is missing", "client ID is missing", "client secret is missing", "console URL", "nobody could sign in"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	got, err := console.ParseRoles(" viewer=kooflow-viewers, operator=kooflow-operators,operator=noc ,admin=cn=admins")
	if err != nil {
		t.Fatal(err)
	}
	if s := console.FormatRoles(got); s != "viewer=kooflow-viewers,operator=kooflow-operators,operator=noc,admin=cn=admins" {
		t.Errorf("ParseRoles read %s", s)
	}
	for in, want := range map[string]string{
		"":                         "empty",
		"root=wheel":               `"root" is not a role`,
		"admin":                    "want role=value",
		"viewer=staff,admin=staff": "mapped to both",
	} {
		if _, err := console.ParseRoles(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRoles(%q) = %v, want an error saying %q", in, err, want)
		}
	}

	cfg := console.OIDC{Issuer: "https://sso.carrier.example", ClientID: "kooflow", ClientSecret: "do-not-print-me", Roles: got}
	for _, s := range []string{cfg.String(), (&cfg).String()} {
		if strings.Contains(s, "do-not-print-me") || !strings.Contains(s, "redacted") {
			t.Errorf("OIDC described as %s", s)
		}
	}
}

// listen returns a listener on a free loopback port.
func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}
