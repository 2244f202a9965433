package console

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
)

// Sign-in through the carrier's identity provider (OpenID Connect): the authorization-code
// flow with PKCE. GET /signin/oidc makes a state, a nonce and a PKCE verifier, keeps them
// in a short-lived cookie sealed with a key derived from the session key (so they are
// bound to this browser, and neither readable nor forgeable), and sends the browser to the
// provider. The provider sends it back to CallbackPath with a code; the callback checks
// the state against the cookie, exchanges the code with the verifier, verifies the ID
// token (signature, issuer, audience, expiry) and its nonce, maps the role claim to a
// role and starts an ordinary console session. A user whose claim maps to no role is
// refused, never given a default one.

// OIDCCallbackPath is where the identity provider sends the browser back: register
// the console's public URL followed by it as the client's redirect URI.
const OIDCCallbackPath = "/signin/oidc/callback"

// Defaults of the OIDC settings.
const (
	// DefaultRoleClaim is the ID-token claim read for the role when OIDC.RoleClaim is empty.
	DefaultRoleClaim = "groups"
	// oidcFlowLifetime is how long a started sign-in may take at the provider.
	oidcFlowLifetime = 10 * time.Minute
	// oidcFlowCookie holds a sign-in in progress; it is sent only to /signin/oidc….
	oidcFlowCookie = "kooflow_oidc"
	oidcFlowPath   = "/signin/oidc"
	// oidcTimeout bounds each call to the provider (discovery, token, keys).
	oidcTimeout = 15 * time.Second
)

// defaultNameClaims name the operator when OIDC.NameClaim is empty: the first present.
var defaultNameClaims = []string{"preferred_username", "email"}

// OIDC configures sign-in through the carrier's identity provider with OpenID Connect.
type OIDC struct {
	// Issuer is the provider's issuer URL, exactly as its discovery document
	// (Issuer/.well-known/openid-configuration) and its ID tokens name it.
	Issuer string
	// ClientID and ClientSecret are the console's confidential client at the provider.
	ClientID     string
	ClientSecret string
	// ConsoleURL is the console's public URL, e.g. https://kooflow.example.com; the
	// provider sends the browser back to ConsoleURL + OIDCCallbackPath.
	ConsoleURL string
	// ProviderName names the provider on the sign-in button; empty: the issuer's host.
	ProviderName string
	// NameClaim is the claim whose value names the operator in the audit log; empty:
	// preferred_username, else email. Without it the subject (sub) names them.
	NameClaim string
	// RoleClaim is the claim holding the user's roles or groups, a string or a list of
	// strings (a dotted path such as realm_access.roles reaches into nested objects);
	// empty: DefaultRoleClaim.
	RoleClaim string
	// Roles maps each role to the claim values that grant it (ParseRoles reads them); a
	// user holding several gets the highest, a user holding none is refused.
	Roles map[Role][]string
	// Scopes are asked for besides openid; nil means profile and email. Some providers
	// put groups in the ID token only when asked for a groups scope.
	Scopes []string
}

// String describes the configuration without its secret.
func (o OIDC) String() string {
	return fmt.Sprintf("OIDC{issuer %s, client %s, secret redacted, console %s, role claim %s, roles %s}",
		o.Issuer, o.ClientID, o.ConsoleURL, o.roleClaim(), FormatRoles(o.Roles))
}

// RedirectURL is the callback URL the provider must know for this console.
func (o OIDC) RedirectURL() string { return strings.TrimRight(o.ConsoleURL, "/") + OIDCCallbackPath }

func (o OIDC) roleClaim() string {
	if o.RoleClaim == "" {
		return DefaultRoleClaim
	}
	return o.RoleClaim
}

// displayName is what the sign-in button calls the provider.
func (o OIDC) displayName() string {
	if o.ProviderName != "" {
		return o.ProviderName
	}
	if u, err := url.Parse(o.Issuer); err == nil && u.Host != "" {
		return u.Host
	}
	return "your identity provider"
}

// validate names every setting that is missing or malformed.
func (o OIDC) validate() error {
	var problems []string
	if o.Issuer == "" {
		problems = append(problems, "the issuer URL is missing")
	} else if u, err := url.Parse(o.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		problems = append(problems, fmt.Sprintf("the issuer %q is not an http(s) URL", o.Issuer))
	}
	if o.ClientID == "" {
		problems = append(problems, "the client ID is missing")
	}
	if o.ClientSecret == "" {
		problems = append(problems, "the client secret is missing")
	}
	if u, err := url.Parse(o.ConsoleURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		problems = append(problems, fmt.Sprintf("the console URL %q is not an http(s) URL", o.ConsoleURL))
	}
	mapped := 0
	for role, values := range o.Roles {
		if !role.may(RoleViewer) {
			problems = append(problems, fmt.Sprintf("%q is not a role (viewer, operator or admin)", role))
		}
		mapped += len(values)
	}
	if mapped == 0 {
		problems = append(problems, "no claim value is mapped to a role, so nobody could sign in")
	}
	if len(problems) > 0 {
		return errors.New("console: OIDC sign-in: " + strings.Join(problems, "; "))
	}
	return nil
}

// ParseRoles reads a role mapping such as
// "viewer=kooflow-viewers,operator=kooflow-operators,admin=kooflow-admins": comma-separated
// role=value pairs, a role repeated for several values. A value may hold '=' but not ','.
// A value mapped to two roles is refused as ambiguous.
func ParseRoles(s string) (map[Role][]string, error) {
	roles := map[Role][]string{}
	owner := map[string]Role{}
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, value, ok := strings.Cut(entry, "=")
		role, value := Role(strings.TrimSpace(name)), strings.TrimSpace(value)
		if !ok || value == "" {
			return nil, fmt.Errorf("role mapping %q: want role=value, e.g. operator=kooflow-operators", entry)
		}
		if !role.may(RoleViewer) {
			return nil, fmt.Errorf("role mapping %q: %q is not a role (viewer, operator or admin)", entry, role)
		}
		if other, dup := owner[value]; dup && other != role {
			return nil, fmt.Errorf("role mapping: %q is mapped to both %s and %s; map it once", value, other, role)
		}
		owner[value] = role
		if !slices.Contains(roles[role], value) {
			roles[role] = append(roles[role], value)
		}
	}
	if len(roles) == 0 {
		return nil, errors.New("role mapping is empty: map at least one claim value, e.g. admin=kooflow-admins")
	}
	return roles, nil
}

// FormatRoles writes a mapping as ParseRoles reads it, roles from least to most.
func FormatRoles(roles map[Role][]string) string {
	var parts []string
	for _, role := range []Role{RoleViewer, RoleOperator, RoleAdmin} {
		for _, v := range roles[role] {
			parts = append(parts, string(role)+"="+v)
		}
	}
	return strings.Join(parts, ",")
}

// oidcSignIn is the console's OIDC sign-in: the provider (discovered on first use, so the
// console starts while the provider is unreachable), the sealed flow cookies and the
// sign-ins already completed.
type oidcSignIn struct {
	cfg    OIDC
	client *http.Client
	seal   cipher.AEAD
	now    func() time.Time

	// mu guards the provider, discovered once.
	mu       sync.Mutex
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
	// spent are the states of completed sign-ins, until their flow would have expired:
	// a replayed callback is refused even with its cookie. spentMu guards it.
	spentMu sync.Mutex
	spent   map[string]time.Time
}

func newOIDCSignIn(cfg OIDC, sessionKey []byte, now func() time.Time) (*oidcSignIn, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	// The flow cookie's key is derived from the session key, so neither can be found
	// from the other and one secret configures both.
	m := hmac.New(sha256.New, sessionKey)
	m.Write([]byte("kooflow console: OIDC sign-in flow cookie"))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("console: OIDC flow cookie key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("console: OIDC flow cookie key: %w", err)
	}
	return &oidcSignIn{cfg: cfg, client: &http.Client{Timeout: oidcTimeout}, seal: aead, now: now, spent: map[string]time.Time{}}, nil
}

// provider returns the OAuth2 configuration and the ID-token verifier, discovering the
// provider on the first call that reaches it.
func (o *oidcSignIn) provider(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.oauth != nil {
		return o.oauth, o.verifier, nil
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, o.client), oidcTimeout)
	defer cancel()
	p, err := oidc.NewProvider(ctx, o.cfg.Issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("discover the identity provider at %s (is KOOFLOW_CONSOLE_OIDC_ISSUER its issuer URL, and can this host reach it?): %w", o.cfg.Issuer, err)
	}
	scopes := o.cfg.Scopes
	if scopes == nil {
		scopes = []string{"profile", "email"}
	}
	o.oauth = &oauth2.Config{
		ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: o.cfg.RedirectURL(), Scopes: append([]string{oidc.ScopeOpenID}, scopes...),
	}
	o.verifier = p.Verifier(&oidc.Config{ClientID: o.cfg.ClientID, Now: o.now})
	return o.oauth, o.verifier, nil
}

// spend records state as used and reports whether it was unused; it forgets the states
// whose flows have expired.
func (o *oidcSignIn) spend(state string, expires time.Time) bool {
	o.spentMu.Lock()
	defer o.spentMu.Unlock()
	now := o.now()
	for s, until := range o.spent {
		if now.After(until) {
			delete(o.spent, s)
		}
	}
	if _, used := o.spent[state]; used {
		return false
	}
	o.spent[state] = expires
	return true
}

// used reports whether state belongs to a completed sign-in.
func (o *oidcSignIn) used(state string) bool {
	o.spentMu.Lock()
	defer o.spentMu.Unlock()
	_, used := o.spent[state]
	return used
}

// oidcFlow is a sign-in in progress, kept in the browser's sealed flow cookie.
type oidcFlow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Expires  int64  `json:"e"`
}

// sealFlow encrypts and authenticates f for the flow cookie.
func (o *oidcSignIn) sealFlow(f oidcFlow) string {
	raw, _ := json.Marshal(f)
	nonce := make([]byte, o.seal.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("console: no randomness: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(o.seal.Seal(nonce, nonce, raw, []byte(oidcFlowCookie)))
}

// openFlow reads the request's flow cookie: it fails for a missing, forged or expired one.
func (o *oidcSignIn) openFlow(r *http.Request) (oidcFlow, error) {
	c, err := r.Cookie(oidcFlowCookie)
	if err != nil {
		return oidcFlow{}, errors.New("no sign-in was started in this browser (its cookie is missing)")
	}
	sealed, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(sealed) < o.seal.NonceSize() {
		return oidcFlow{}, errors.New("the sign-in cookie is malformed")
	}
	raw, err := o.seal.Open(nil, sealed[:o.seal.NonceSize()], sealed[o.seal.NonceSize():], []byte(oidcFlowCookie))
	if err != nil {
		return oidcFlow{}, errors.New("the sign-in cookie was not made by this console (or its session key changed)")
	}
	var f oidcFlow
	if err := json.Unmarshal(raw, &f); err != nil || f.State == "" || f.Nonce == "" || f.Verifier == "" {
		return oidcFlow{}, errors.New("the sign-in cookie is malformed")
	}
	if o.now().After(time.Unix(f.Expires, 0)) {
		return oidcFlow{}, fmt.Errorf("the sign-in took longer than %s", oidcFlowLifetime)
	}
	return f, nil
}

// routes serves the sign-in page with the provider's button, the start of a sign-in and
// the provider's callback.
func (c *Console) oidcRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /signin", c.oidcSignInPage)
	mux.HandleFunc("GET "+oidcFlowPath, c.oidcStart)
	mux.HandleFunc("GET "+OIDCCallbackPath, c.oidcCallback)
}

// DiscoverOIDC reaches the identity provider once (its discovery document), so a process
// can say at start whether sign-in will work. The console starts without it: a sign-in
// discovers the provider when it first can.
func (c *Console) DiscoverOIDC(ctx context.Context) error {
	if c.oidc == nil {
		return errors.New("console: OIDC sign-in is not configured")
	}
	_, _, err := c.oidc.provider(ctx)
	return err
}

// oidcSignInPage shows the button that signs in at the provider.
func (c *Console) oidcSignInPage(w http.ResponseWriter, r *http.Request) {
	if _, err := c.sessions.read(r); err == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	c.oidcPage(w, r, http.StatusOK, "")
}

// oidcPage renders the sign-in page with an error (empty: none).
func (c *Console) oidcPage(w http.ResponseWriter, r *http.Request, status int, why string) {
	c.render(w, r, status, "signin_oidc", nil, map[string]any{"Provider": c.oidc.cfg.displayName(), "Error": why})
}

// oidcStart starts a sign-in: a new state, nonce and PKCE verifier in the sealed flow
// cookie, and the browser sent to the provider.
func (c *Console) oidcStart(w http.ResponseWriter, r *http.Request) {
	oauth, _, err := c.oidc.provider(r.Context())
	if err != nil {
		c.cfg.Logger.Error("console sign-in: the identity provider is unreachable", "issuer", c.oidc.cfg.Issuer, "error", err)
		c.oidcPage(w, r, http.StatusBadGateway, fmt.Sprintf("%s does not answer, so nobody can sign in just now. Try again in a minute; if it lasts, tell kooflow's administrator (the console's log says why).", c.oidc.cfg.displayName()))
		return
	}
	f := oidcFlow{State: randomToken(32), Nonce: randomToken(32), Verifier: oauth2.GenerateVerifier(),
		Expires: c.cfg.Now().Add(oidcFlowLifetime).Unix()}
	http.SetCookie(w, &http.Cookie{Name: oidcFlowCookie, Value: c.oidc.sealFlow(f), Path: oidcFlowPath,
		MaxAge: int(oidcFlowLifetime / time.Second), HttpOnly: true, Secure: c.cfg.Secure, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, oauth.AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)), http.StatusFound)
}

// oidcCallback finishes a sign-in: the flow cookie and its state, the code exchanged
// with the PKCE verifier, the ID token verified with its nonce, the role mapped. Whatever
// the outcome the flow cookie is spent.
func (c *Console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	o := c.oidc
	http.SetCookie(w, &http.Cookie{Name: oidcFlowCookie, Value: "", Path: oidcFlowPath, MaxAge: -1, HttpOnly: true,
		Secure: c.cfg.Secure, SameSite: http.SameSiteLaxMode})
	refuse := func(status int, reason, page string) {
		c.cfg.Logger.Warn("console sign-in refused", "with", "oidc", "issuer", o.cfg.Issuer, "reason", reason, "remote", r.RemoteAddr)
		c.oidcPage(w, r, status, page)
	}
	q := r.URL.Query()
	f, err := o.openFlow(r)
	if err != nil {
		refuse(http.StatusBadRequest, err.Error(), "This sign-in cannot be finished: "+err.Error()+". Sign in again from this page.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1 {
		refuse(http.StatusBadRequest, "the state does not match this browser's sign-in",
			"This sign-in was not started in this browser (its state does not match). Sign in again from this page.")
		return
	}
	if e := q.Get("error"); e != "" {
		detail := strings.TrimSpace(e + " " + q.Get("error_description"))
		refuse(http.StatusForbidden, "the provider refused: "+detail, fmt.Sprintf("%s did not sign you in: %s.", o.cfg.displayName(), detail))
		return
	}
	code := q.Get("code")
	if code == "" {
		refuse(http.StatusBadRequest, "no code in the callback", "The identity provider sent no sign-in code back. Sign in again.")
		return
	}
	if o.used(f.State) {
		refuse(http.StatusBadRequest, "a completed sign-in was replayed", "This sign-in was already used. Sign in again.")
		return
	}
	oauth, verifier, err := o.provider(r.Context())
	if err != nil {
		c.cfg.Logger.Error("console sign-in: the identity provider is unreachable", "issuer", o.cfg.Issuer, "error", err)
		c.oidcPage(w, r, http.StatusBadGateway, fmt.Sprintf("%s does not answer, so the sign-in cannot be finished. Try again in a minute.", o.cfg.displayName()))
		return
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(r.Context(), o.client), oidcTimeout)
	defer cancel()
	token, err := oauth.Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		refuse(http.StatusBadGateway, "the code exchange failed: "+err.Error(),
			fmt.Sprintf("%s did not accept the sign-in code (it may have been used already or expired). Sign in again.", o.cfg.displayName()))
		return
	}
	raw, _ := token.Extra("id_token").(string)
	if raw == "" {
		refuse(http.StatusBadGateway, "the token response holds no ID token", "The identity provider answered without an ID token (is the openid scope allowed for this client?).")
		return
	}
	idToken, err := verifier.Verify(ctx, raw)
	if err != nil {
		refuse(http.StatusForbidden, "the ID token failed verification: "+err.Error(),
			"The identity provider's answer could not be verified (signature, issuer, audience or expiry), so you are not signed in. Sign in again; if it lasts, tell kooflow's administrator.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(idToken.Nonce), []byte(f.Nonce)) != 1 {
		refuse(http.StatusForbidden, "the ID token's nonce is not this sign-in's (a replayed token)",
			"The identity provider's answer belongs to another sign-in, so you are not signed in. Sign in again.")
		return
	}
	var claims map[string]any
	if err := idToken.Claims(&claims); err != nil {
		refuse(http.StatusBadGateway, "the ID token's claims do not parse: "+err.Error(), "The identity provider's answer could not be read. Sign in again.")
		return
	}
	if azp, _ := claims["azp"].(string); len(idToken.Audience) > 1 && azp != o.cfg.ClientID {
		refuse(http.StatusForbidden, fmt.Sprintf("the ID token names several audiences and was issued to %q", azp),
			"The identity provider's answer was issued to another application, so you are not signed in.")
		return
	}
	if !o.spend(f.State, time.Unix(f.Expires, 0)) {
		refuse(http.StatusBadRequest, "a completed sign-in was replayed", "This sign-in was already used. Sign in again.")
		return
	}
	actor := o.cfg.actorName(claims, idToken.Subject)
	if actor == "" {
		refuse(http.StatusForbidden, "the ID token names nobody (no name claim, no sub)", "The identity provider's answer names nobody, so you are not signed in.")
		return
	}
	role, values := o.cfg.role(claims)
	if role == "" {
		c.cfg.Logger.Warn("console sign-in refused: no kooflow role", "actor", actor, "sub", idToken.Subject, "issuer", o.cfg.Issuer,
			"claim", o.cfg.roleClaim(), "values", strings.Join(firstN(values, 20), ","))
		c.auditSignIn(r, actor, store.AuditFailed, fmt.Sprintf("refused: no kooflow role in claim %s (%s)", o.cfg.roleClaim(), o.cfg.displayName()))
		c.oidcPage(w, r, http.StatusForbidden, fmt.Sprintf("%s signed you in as %s, but your account has no kooflow role: none of the values of its %q claim is mapped to viewer, operator or admin. Ask your identity provider's administrator to add you to a kooflow group.",
			o.cfg.displayName(), actor, o.cfg.roleClaim()))
		return
	}
	c.sessions.start(w, actor, role)
	c.cfg.Logger.Info("console sign-in", "actor", actor, "role", string(role), "with", "oidc", "issuer", o.cfg.Issuer, "sub", idToken.Subject)
	c.auditSignIn(r, actor, store.AuditOK, fmt.Sprintf("signed in as %s through %s", role, o.cfg.displayName()))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// auditSignIn records a sign-in through the provider, or its refusal, in the audit log.
func (c *Console) auditSignIn(r *http.Request, actor, result, detail string) {
	entry := store.AuditEntry{Actor: actor, Via: starter.ViaConsole, Host: r.RemoteAddr, Action: "console sign-in", Result: result, Detail: detail}
	if _, err := c.cfg.Store.AppendAudit(context.WithoutCancel(r.Context()), entry); err != nil {
		c.cfg.Logger.Error("could not audit a console sign-in", "actor", actor, "result", result, "error", err)
	}
}

// actorName names the operator from the configured claim (or preferred_username, else
// email), else the subject, cleaned of control characters and cut to 128 characters.
func (o OIDC) actorName(claims map[string]any, subject string) string {
	names := defaultNameClaims
	if o.NameClaim != "" {
		names = []string{o.NameClaim}
	}
	for _, n := range names {
		if v := claimValues(claims, n); len(v) > 0 {
			if name := cleanName(v[0]); name != "" {
				return name
			}
		}
	}
	return cleanName(subject)
}

// cleanName drops control and invisible formatting characters and cuts s to 128 runes.
func cleanName(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, s)
	if r := []rune(strings.TrimSpace(s)); len(r) > 128 {
		return string(r[:128])
	}
	return strings.TrimSpace(s)
}

// role returns the highest role the role claim's values are mapped to ("" for none), and
// the values.
func (o OIDC) role(claims map[string]any) (Role, []string) {
	values := claimValues(claims, o.roleClaim())
	var best Role
	for role, mapped := range o.Roles {
		for _, v := range values {
			if slices.Contains(mapped, v) && roleRank[role] > roleRank[best] {
				best = role
			}
		}
	}
	return best, values
}

// claimValues reads a claim as strings: a string, or a list's strings. A name not found
// as it is, with dots in it, is read as a path into nested objects (realm_access.roles).
func claimValues(claims map[string]any, name string) []string {
	v, ok := claims[name]
	if !ok && strings.Contains(name, ".") {
		var cur any = claims
		for part := range strings.SplitSeq(name, ".") {
			m, isMap := cur.(map[string]any)
			if !isMap {
				return nil
			}
			cur = m[part]
		}
		v = cur
	}
	switch t := v.(type) {
	case string:
		if t != "" {
			return []string{t}
		}
	case []any:
		var out []string
		for _, e := range t {
			if s, isString := e.(string); isString && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
