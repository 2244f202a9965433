// Package console is kooflow's web console for the carrier's operators: server-rendered
// pages (html/template, assets embedded) over kooflow's own records — expirations and
// where each stands in plain words, the delivery log, the audit log — with the operator
// actions behind a confirmation. It reads the store through a small interface and acts
// only through starter.Operator, the door every interface shares, so the rule book, the
// Temporal calls and the audit log are the same as the CLI's.
//
// Security: every page needs a signed-in session (a signed, HttpOnly, SameSite=Lax
// cookie with an absolute and an idle lifetime); a state-changing request is a POST that
// passes Go's cross-origin protection and carries the session's CSRF token; a strict
// Content-Security-Policy allows only the console's own assets. Roles (viewer, operator,
// admin) decide which buttons a page shows and which POSTs are accepted; a refused POST
// is answered 403 and recorded in the audit log.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Store is what the console reads from kooflow's store; *store.Store implements it.
type Store interface {
	CountExpirations(ctx context.Context) (store.ExpirationCounts, error)
	Backlog(ctx context.Context) (store.IntentBacklog, error)
	ActiveExpirations(ctx context.Context) (int, error)
	CountDeliveries(ctx context.Context, since time.Time) (map[string]int, error)
	LastCompletedRun(ctx context.Context) (store.ReconciliationRun, bool, error)
	KooDriveHealth(ctx context.Context) ([]store.KooDriveHealth, error)
	ListExpirations(ctx context.Context, q store.ExpirationQuery) ([]store.Expiration, bool, error)
	Expiration(ctx context.Context, workflowID string) (store.Expiration, error)
	Subscription(ctx context.Context, id int64) (store.Subscription, error)
	Events(ctx context.Context, subscriptionID int64) ([]store.Event, error)
	Deliveries(ctx context.Context, f store.DeliveryFilter) ([]store.Delivery, error)
	AuditEntries(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error)
	AppendAudit(ctx context.Context, e store.AuditEntry) (int64, error)
	FindSubscriptions(ctx context.Context, identifier string, limit int) ([]store.Match, error)
	SmartHubEventsWhere(ctx context.Context, f store.SmartHubEventFilter) ([]store.SmartHubEvent, error)
	Runs(ctx context.Context, f store.RunFilter) ([]store.ReconciliationRun, error)
	RunByID(ctx context.Context, id int64) (store.ReconciliationRun, error)
	EachDiscrepancy(ctx context.Context, batchNo string, fn func(store.Discrepancy) error) error
}

var _ Store = (*store.Store)(nil)

// Operator is what the console's actions need of starter.Operator.
type Operator interface {
	RetryStalled(ctx context.Context, target string) ([]starter.RetryResult, error)
	RetryEach(ctx context.Context, workflowIDs []string, asked string) ([]starter.RetryResult, error)
	Expire(ctx context.Context, instanceID string, test bool) (starter.Verdict, store.Acceptance, error)
	Replay(ctx context.Context, eventID string, isExpiry func(store.SmartHubEvent) bool) (starter.Verdict, store.Acceptance, error)
	ImportRegistry(ctx context.Context, path string, importFile func(context.Context, *store.Store, string, store.ImportOrigin) (store.ImportStats, error)) (store.ImportStats, error)
	Reconcile(ctx context.Context, in contract.ReconciliationInput, force bool) (client.WorkflowRun, error)
	SetSchedulePaused(ctx context.Context, paused bool, note string) error
	DescribeSchedule(ctx context.Context) (*client.ScheduleDescription, []starter.ScheduleRun, error)
}

var _ Operator = (*starter.Operator)(nil)

// Config is what a console is built from.
type Config struct {
	Store Store
	// Operator returns the door an action goes through, for the signed-in actor.
	Operator func(starter.Actor) Operator
	// SessionKey signs the session cookies and CSRF tokens: at least 32 random bytes,
	// kept secret (a new key signs everyone out).
	SessionKey []byte
	// Secure marks the cookies Secure: set it whenever the console is served over HTTPS
	// (anything but loopback).
	Secure bool
	// Lifetimes bound a session; zero means DefaultLifetimes.
	Lifetimes Lifetimes
	// TemporalUIURL and Namespace link an expiration to its workflow in the Temporal UI;
	// empty leaves the link out.
	TemporalUIURL string
	Namespace     string
	Logger        *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OIDC, when set, signs operators in through the carrier's identity provider
	// (oidc.go); the sign-in page then offers its button.
	OIDC *OIDC
}

// Console is the console's HTTP handler and its one-time sign-in links.
type Console struct {
	cfg      Config
	sessions *sessions
	links    *oneTimeLinks
	oidc     *oidcSignIn
	pages    map[string]*template.Template
	handler  http.Handler
}

// minSessionKey is the shortest session key accepted.
const minSessionKey = 32

// New builds a console from cfg.
func New(cfg Config) (*Console, error) {
	if cfg.Store == nil || cfg.Operator == nil {
		return nil, errors.New("console: Store and Operator are required")
	}
	if len(cfg.SessionKey) < minSessionKey {
		return nil, fmt.Errorf("console: the session key must be at least %d bytes", minSessionKey)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Lifetimes == (Lifetimes{}) {
		cfg.Lifetimes = DefaultLifetimes
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "default"
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c := &Console{
		cfg:      cfg,
		sessions: &sessions{key: cfg.SessionKey, life: cfg.Lifetimes, secure: cfg.Secure, now: cfg.Now},
		links:    &oneTimeLinks{now: cfg.Now},
		pages:    pages,
	}
	if cfg.OIDC != nil {
		if c.oidc, err = newOIDCSignIn(*cfg.OIDC, cfg.SessionKey, cfg.Now); err != nil {
			return nil, err
		}
	}
	c.handler = c.routes()
	return c, nil
}

// ServeHTTP serves the console.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.handler.ServeHTTP(w, r) }

// SignInLink returns a path that signs actor in with role once (within a day): the way
// `kooflow dev` lets the person at its terminal in. Prefix it with the console's URL.
func (c *Console) SignInLink(actor string, role Role) string {
	return "/signin/link?token=" + c.links.mint(actor, role)
}

// routes wires the pages. Every page but sign-in needs a session; every POST passes the
// cross-origin protection and the CSRF check in withSession.
func (c *Console) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	if c.oidc != nil {
		c.oidcRoutes(mux)
	} else {
		mux.HandleFunc("GET /signin", c.signInPage)
	}
	mux.HandleFunc("GET /signin/link", c.signInWithLink)
	mux.HandleFunc("POST /signout", c.withSession(RoleViewer, c.signOut))
	mux.HandleFunc("GET /{$}", c.withSession(RoleViewer, c.overview))
	mux.HandleFunc("GET /expirations", c.withSession(RoleViewer, c.expirations))
	mux.HandleFunc("GET /expirations.csv", c.withSession(RoleViewer, c.expirationsCSV))
	mux.HandleFunc("GET /expiration", c.withSession(RoleViewer, c.expiration))
	mux.HandleFunc("GET /expiration/retry", c.withSession(RoleOperator, c.confirmRetry))
	mux.HandleFunc("POST /expiration/retry", c.withSession(RoleOperator, c.retry))
	mux.HandleFunc("GET /expiration/run", c.withSession(RoleOperator, c.confirmRun))
	mux.HandleFunc("POST /expiration/run", c.withSession(RoleOperator, c.run))
	mux.HandleFunc("GET /expirations/retry", c.withSession(RoleOperator, c.confirmBulkRetry))
	mux.HandleFunc("POST /expirations/retry", c.withSession(RoleOperator, c.bulkRetry))
	mux.HandleFunc("GET /deliveries", c.withSession(RoleViewer, c.deliveries))
	mux.HandleFunc("POST /smarthub/replay", c.withSession(RoleOperator, c.replay))
	mux.HandleFunc("GET /registry", c.withSession(RoleViewer, c.registry))
	mux.HandleFunc("GET /registry/expire", c.withSession(RoleOperator, c.confirmExpire))
	mux.HandleFunc("POST /registry/expire", c.withSession(RoleOperator, c.expireByHand))
	mux.Handle("POST /registry/import", http.MaxBytesHandler(c.withSession(RoleAdmin, c.importRegistry), MaxUpload))
	mux.HandleFunc("GET /audit", c.withSession(RoleViewer, c.audit))
	mux.HandleFunc("GET /reconciliation", c.withSession(RoleViewer, c.reconciliation))
	mux.HandleFunc("GET /reconciliation/run", c.withSession(RoleViewer, c.reconciliationRun))
	mux.HandleFunc("GET /reconciliation/file", c.withSession(RoleViewer, c.reconciliationFile))
	mux.HandleFunc("GET /reconciliation/start", c.withSession(RoleOperator, c.confirmReconcile))
	mux.HandleFunc("POST /reconciliation/start", c.withSession(RoleOperator, c.reconcile))
	mux.HandleFunc("GET /schedule/pause", c.withSession(RoleAdmin, c.confirmSchedule(true)))
	mux.HandleFunc("POST /schedule/pause", c.withSession(RoleAdmin, c.setSchedule(true)))
	mux.HandleFunc("GET /schedule/unpause", c.withSession(RoleAdmin, c.confirmSchedule(false)))
	mux.HandleFunc("POST /schedule/unpause", c.withSession(RoleAdmin, c.setSchedule(false)))
	protect := http.NewCrossOriginProtection()
	protect.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var who *session
		if sess, err := c.sessions.read(r); err == nil {
			who = &sess // the signed-in operator whose browser was made to send it
		}
		c.refuse(w, r, who, "the request came from another site (cross-origin POST)")
	}))
	return securityHeaders(protect.Handler(mux))
}

// contentSecurityPolicy allows the console's own styles and nothing else: no script, no
// frame, no form to another site.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// securityHeaders sets the headers every answer carries.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// handlerWithSession is a page handler that knows who asks.
type handlerWithSession func(w http.ResponseWriter, r *http.Request, sess session)

// withSession admits a request with a live session whose role includes need; a POST
// must also carry the session's CSRF token. Without a session a GET goes to sign-in; a
// role or token that does not fit is refused with 403 and, for a POST, audited.
func (c *Console) withSession(need Role, h handlerWithSession) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, err := c.sessions.read(r)
		if err != nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/signin", http.StatusSeeOther)
				return
			}
			c.refuse(w, r, nil, "not signed in, or the session expired")
			return
		}
		if !sess.Role.may(need) {
			c.refuse(w, r, &sess, fmt.Sprintf("role %s may not do this (it needs %s)", sess.Role, need))
			return
		}
		if r.Method == http.MethodPost && !c.sessions.checkCSRF(sess, r.PostFormValue("csrf")) {
			c.refuse(w, r, &sess, "the form's CSRF token is missing or wrong (reload the page and try again)")
			return
		}
		c.sessions.refresh(w, sess)
		h(w, r, sess)
	}
}

// actor is the signed-in operator as the starter's audit log records them.
func (c *Console) actor(r *http.Request, sess session) starter.Actor {
	return starter.Actor{Name: sess.Actor, Via: starter.ViaConsole, Host: r.RemoteAddr}
}

// refuse answers 403 with why; a refused POST is recorded in the audit log, so a forged
// or mistaken action is seen.
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, sess *session, why string) {
	if r.Method == http.MethodPost {
		actor := "(not signed in)"
		if sess != nil {
			actor = sess.Actor
		}
		entry := store.AuditEntry{Actor: actor, Via: starter.ViaConsole, Host: r.RemoteAddr, Action: "console " + r.URL.Path,
			Args: r.URL.RawQuery, Result: store.AuditFailed, Detail: "refused: " + why}
		if _, err := c.cfg.Store.AppendAudit(context.WithoutCancel(r.Context()), entry); err != nil {
			c.cfg.Logger.Error("could not audit a refused console request", "path", r.URL.Path, "error", err)
		}
	}
	c.cfg.Logger.Warn("console request refused", "method", r.Method, "path", r.URL.Path, "reason", why)
	c.render(w, r, http.StatusForbidden, "error", sess, map[string]any{"Title": "Not allowed", "Message": why})
}
