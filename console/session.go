package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Role is what a signed-in operator may do. Each role may do what the ones before it may.
type Role string

// The roles, from least to most.
const (
	// RoleViewer reads every page.
	RoleViewer Role = "viewer"
	// RoleOperator also acts on expirations: retry, run by hand.
	RoleOperator Role = "operator"
	// RoleAdmin also steers the schedule and imports the registry.
	RoleAdmin Role = "admin"
)

var roleRank = map[Role]int{RoleViewer: 1, RoleOperator: 2, RoleAdmin: 3}

// may reports whether r includes need.
func (r Role) may(need Role) bool { return roleRank[r] >= roleRank[need] && roleRank[r] > 0 }

// sessionCookie is the session cookie's name.
const sessionCookie = "kooflow_session"

// session is a signed-in operator: who, with which role, since when. It lives in a
// cookie signed with the console's key, so the server keeps no session state.
type session struct {
	// Actor names the operator, as the audit log records it.
	Actor string `json:"a"`
	Role  Role   `json:"r"`
	// ID ties the CSRF token to this sign-in.
	ID string `json:"i"`
	// Issued is when the operator signed in; Seen when the session was last used.
	Issued int64 `json:"t"`
	Seen   int64 `json:"s"`
}

// Lifetimes bound a session: an absolute one from sign-in, and an idle one since the
// last request.
type Lifetimes struct {
	Absolute time.Duration
	Idle     time.Duration
}

// DefaultLifetimes end a session 12 hours after sign-in, or after 30 idle minutes.
var DefaultLifetimes = Lifetimes{Absolute: 12 * time.Hour, Idle: 30 * time.Minute}

// sessions signs, reads and refreshes session cookies.
type sessions struct {
	key    []byte
	life   Lifetimes
	secure bool
	now    func() time.Time
}

// errNoSession is a request without a valid, live session.
var errNoSession = errors.New("not signed in")

// read returns the request's session, or errNoSession when it has none, a forged one or
// one past its lifetimes.
func (s *sessions) read(r *http.Request) (session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, errNoSession
	}
	payload, sig, ok := strings.Cut(c.Value, ".")
	if !ok {
		return session{}, errNoSession
	}
	want := s.sign(payload)
	if subtle.ConstantTimeCompare([]byte(sig), []byte(want)) != 1 {
		return session{}, errNoSession
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return session{}, errNoSession
	}
	var sess session
	if err := json.Unmarshal(raw, &sess); err != nil || !sess.Role.may(RoleViewer) {
		return session{}, errNoSession
	}
	now := s.now()
	if now.Sub(time.Unix(sess.Issued, 0)) > s.life.Absolute || now.Sub(time.Unix(sess.Seen, 0)) > s.life.Idle {
		return session{}, errNoSession
	}
	return sess, nil
}

// write sets sess as the response's session cookie.
func (s *sessions) write(w http.ResponseWriter, sess session) {
	raw, _ := json.Marshal(sess)
	payload := base64.RawURLEncoding.EncodeToString(raw)
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: payload + "." + s.sign(payload), Path: "/",
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode,
		MaxAge: int(s.life.Absolute / time.Second),
	})
}

// start signs actor in with role.
func (s *sessions) start(w http.ResponseWriter, actor string, role Role) {
	now := s.now().Unix()
	s.write(w, session{Actor: actor, Role: role, ID: randomToken(16), Issued: now, Seen: now})
}

// refresh keeps an active session alive: its last use is rewritten at most once a minute.
func (s *sessions) refresh(w http.ResponseWriter, sess session) {
	if now := s.now().Unix(); now-sess.Seen >= 60 {
		sess.Seen = now
		s.write(w, sess)
	}
}

// end signs out.
func (s *sessions) end(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
}

// csrfToken is the token a session's forms carry; POSTs must bring it back.
func (s *sessions) csrfToken(sess session) string { return s.sign("csrf:" + sess.ID) }

// checkCSRF compares a form's token with the session's in constant time.
func (s *sessions) checkCSRF(sess session, token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.csrfToken(sess))) == 1
}

func (s *sessions) sign(payload string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// randomToken returns n random bytes, hex-encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("console: no randomness: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// oneTimeLinks are sign-in links that work once, within their lifetime: how `kooflow dev`
// lets the person at the terminal in without a password or an identity provider.
type oneTimeLinks struct {
	mu    sync.Mutex
	links map[string]linkGrant
	now   func() time.Time
}

// linkGrant is who a link signs in, with which role, until when.
type linkGrant struct {
	actor   string
	role    Role
	expires time.Time
}

// linkLifetime is how long an unused one-time link stays valid.
const linkLifetime = 24 * time.Hour

// mint makes a new link token for actor with role.
func (l *oneTimeLinks) mint(actor string, role Role) string {
	token := randomToken(32)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.links == nil {
		l.links = map[string]linkGrant{}
	}
	l.links[token] = linkGrant{actor: actor, role: role, expires: l.now().Add(linkLifetime)}
	return token
}

// use spends token: it reports the grant once, and never again.
func (l *oneTimeLinks) use(token string) (linkGrant, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for t, g := range l.links {
		if subtle.ConstantTimeCompare([]byte(t), []byte(token)) == 1 {
			delete(l.links, t)
			return g, l.now().Before(g.expires)
		}
	}
	return linkGrant{}, false
}
