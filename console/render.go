package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/kooflow/kooflow/store"
)

// stateWords says what each expiration state means in plain words, for operators who do
// not know Temporal's; pages show them after the state's name ("stalled — waiting for an
// operator"), never the name alone.
var stateWords = map[string]string{
	store.StateConflict:   "held: KooGallery and the registry disagree; an operator decides",
	store.StateAccepted:   "queued for Temporal",
	store.StateFreezing:   "freezing the subscription",
	store.StateNotifying:  "telling KooDrive (within the hour)",
	store.StateStalled:    "waiting for an operator",
	store.StateTerminated: "ended outside kooflow before it finished; a retry runs it again",
	store.StateReserved:   "done, KooDrive was told",
	store.StateRenewed:    "ended: renewed before KooDrive was told",
	store.StateReleased:   "ended: released before KooDrive was told",
	store.StateSuperseded: "ended: an expiry of another period ran instead",
	store.StateCancelled:  "ended: cancelled",
}

// said is a state with its meaning: "stalled — waiting for an operator".
func said(state string) string { return state + " — " + stateWords[state] }

// attention are the states an operator must act on, shown first and marked.
var attention = map[string]bool{store.StateConflict: true, store.StateStalled: true, store.StateTerminated: true}

var funcs = template.FuncMap{
	"words":     func(state string) string { return stateWords[state] },
	"said":      said,
	"attention": func(state string) bool { return attention[state] },
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return time.Since(t).Round(time.Second).String() + " ago"
	},
	"cut": cut,
	// query builds a link's query string from key, value pairs (empty values left out).
	// It is a template.URL: written after a link's "?", a plain string would be escaped
	// once more as one query value (= to %3d, % to %25), so the link would lose its
	// parameters. Encode has escaped every key and value already.
	"query": func(kv ...string) template.URL {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" {
				v.Set(kv[i], kv[i+1])
			}
		}
		return template.URL(v.Encode())
	},
	"join": strings.Join,
	// on is a checkbox's value in a link: "on" when checked, else nothing.
	"on": func(checked bool) string {
		if checked {
			return "on"
		}
		return ""
	},
}

// cut keeps the first n characters of s, marking a cut with "…".
func cut(n int, s string) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// parsePages parses each page template with the layout.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, name := range names {
		page := strings.TrimSuffix(path.Base(name), ".html")
		if page == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", name)
		if err != nil {
			return nil, fmt.Errorf("console: parse %s: %w", name, err)
		}
		pages[page] = t
	}
	return pages, nil
}

// view is what every page's template gets: who is signed in, what they may do, the
// CSRF token for forms, and the page's own data.
type view struct {
	Actor    string
	Role     Role
	CanAct   bool
	CSRF     string
	SignedIn bool
	Data     map[string]any
}

// view is what a page's template gets for sess (nil: signed out).
func (c *Console) view(sess *session, data map[string]any) view {
	v := view{Data: data}
	if sess != nil {
		v.Actor, v.Role, v.SignedIn = sess.Actor, sess.Role, true
		v.CanAct, v.CSRF = sess.Role.may(RoleOperator), c.sessions.csrfToken(*sess)
	}
	return v
}

// render writes page with data for sess (nil: signed out), with status.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, sess *session, data map[string]any) {
	t, ok := c.pages[page]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, c.view(sess, data)); err != nil {
		c.cfg.Logger.Error("console page failed", "page", page, "error", err)
		http.Error(w, "the page could not be shown: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// fail shows an error page for a request the console could not answer.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, sess session, status int, msg string) {
	c.render(w, r, status, "error", &sess, map[string]any{"Title": http.StatusText(status), "Message": msg})
}

// storeFailed answers a request the store could not serve: 503 with the store's error,
// so the operator knows to retry, not that the thing asked for does not exist.
func (c *Console) storeFailed(w http.ResponseWriter, r *http.Request, sess session, err error) {
	c.fail(w, r, sess, http.StatusServiceUnavailable, "kooflow's store did not answer: "+err.Error())
}
