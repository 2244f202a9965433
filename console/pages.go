package console

import (
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
)

// pageSize is how many rows a list page shows; csvLimit how many an export writes.
const (
	pageSize = 50
	csvLimit = 100_000
)

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "signin", nil, map[string]any{})
}

// signInWithLink spends a one-time link and starts the session it grants.
func (c *Console) signInWithLink(w http.ResponseWriter, r *http.Request) {
	grant, ok := c.links.use(r.URL.Query().Get("token"))
	if !ok {
		c.render(w, r, http.StatusForbidden, "signin", nil, map[string]any{
			"Error": "This sign-in link is unknown, used already or expired. Ask for a new one (kooflow dev prints one at start)."})
		return
	}
	c.sessions.start(w, grant.actor, grant.role)
	c.cfg.Logger.Info("console sign-in", "actor", grant.actor, "role", string(grant.role), "with", "one-time link")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request, _ session) {
	c.sessions.end(w)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// stateCount is one state on the overview.
type stateCount struct {
	State string
	Count int
}

// overview answers "is anything wrong?": expirations by state (those an operator must
// act on first), the intake queue, the last hour's deliveries, the last reconciliation,
// whether KooDrive answers and accepts kooflow's credentials, and the alerts that would
// fire.
func (c *Console) overview(w http.ResponseWriter, r *http.Request, sess session) {
	ctx := r.Context()
	counts, err := c.cfg.Store.CountExpirations(ctx)
	if err != nil {
		c.storeFailed(w, r, sess, err)
		return
	}
	var states []stateCount
	for _, s := range store.States {
		states = append(states, stateCount{State: s, Count: counts.Live[s]})
	}
	sort.SliceStable(states, func(i, j int) bool { return attention[states[i].State] && !attention[states[j].State] })
	backlog, err := c.cfg.Store.Backlog(ctx)
	if err != nil {
		c.storeFailed(w, r, sess, err)
		return
	}
	active, err := c.cfg.Store.ActiveExpirations(ctx)
	if err != nil {
		c.storeFailed(w, r, sess, err)
		return
	}
	delivered, err := c.cfg.Store.CountDeliveries(ctx, c.cfg.Now().Add(-time.Hour))
	if err != nil {
		c.storeFailed(w, r, sess, err)
		return
	}
	var deliveries []stateCount
	for _, o := range store.DeliveryOutcomes {
		deliveries = append(deliveries, stateCount{State: o, Count: delivered[o]})
	}
	run, ran, err := c.cfg.Store.LastCompletedRun(ctx)
	if err != nil {
		c.storeFailed(w, r, sess, err)
		return
	}
	health, err := c.cfg.Store.KooDriveHealth(ctx)
	if err != nil {
		c.storeFailed(w, r, sess, err)
		return
	}
	kooDrive, kooDriveAlerts := kooDriveHealth(health, c.cfg.Now())
	var alerts []string
	if n := counts.Live[store.StateStalled]; n > 0 {
		alerts = append(alerts, fmt.Sprintf("%d expiration(s) stalled: KooDrive has not been told (pages after 5 minutes)", n))
	}
	if n := counts.Live[store.StateTerminated]; n > 0 {
		alerts = append(alerts, fmt.Sprintf("%d expiration(s) ended outside kooflow before KooDrive was told (pages after 5 minutes)", n))
	}
	if n := counts.Live[store.StateConflict]; n > 0 {
		alerts = append(alerts, fmt.Sprintf("%d expiry(ies) held: KooGallery and the registry disagree (warns after 5 minutes)", n))
	}
	if !backlog.Oldest.IsZero() && c.cfg.Now().Sub(backlog.Oldest) > 10*time.Minute {
		waited := c.cfg.Now().Sub(backlog.Oldest).Round(time.Second)
		if active > 0 {
			alerts = append(alerts, fmt.Sprintf("the oldest accepted expiry has waited %s for Temporal, which is working on %d: a queue that moves as those finish (is KooDrive answering?)", waited, active))
		} else {
			alerts = append(alerts, fmt.Sprintf("the oldest accepted expiry has waited %s for Temporal, which is working on none: is Temporal or the webhook down?", waited))
		}
	}
	alerts = append(alerts, kooDriveAlerts...)
	c.render(w, r, http.StatusOK, "overview", &sess, map[string]any{
		"States": states, "Backlog": backlog, "Active": active, "DefaultMaxActive": starter.DefaultMaxActive, "Deliveries": deliveries, "Run": run, "Ran": ran, "Alerts": alerts,
		"KooDrive": kooDrive,
	})
}

// listFilter is the expirations list's filter, read from the query and written back
// into its links.
type listFilter struct {
	// Since is a sinceChoices window of the last change ("changed within"); empty for all.
	State, Source, Q, Sort, Since string
	Test                          bool
	Page                          int
}

// errBadFilter is a filter the console cannot read; its message says what is allowed.
var errBadFilter = errors.New("bad filter")

func readListFilter(q url.Values) (listFilter, error) {
	f := listFilter{State: q.Get("state"), Source: q.Get("source"), Q: strings.TrimSpace(q.Get("q")), Sort: q.Get("sort"), Since: q.Get("since"),
		Test: q.Get("test") == "on", Page: 1}
	if _, ok := sinceChoices[f.Since]; f.Since != "" && !ok {
		return f, fmt.Errorf("%w: changed within %q is not one of 1h, 24h, 7d, 30d", errBadFilter, f.Since)
	}
	if f.State != "" && !slices.Contains(store.States, f.State) {
		return f, fmt.Errorf("%w: state %q is not one of %s", errBadFilter, f.State, strings.Join(store.States, ", "))
	}
	if f.Source != "" && f.Source != starter.SourceKooGallery && f.Source != starter.SourceSmartHub {
		return f, fmt.Errorf("%w: source %q is not koogallery or smarthub", errBadFilter, f.Source)
	}
	if f.Sort != "" && f.Sort != "oldest" && f.Sort != "newest" {
		return f, fmt.Errorf("%w: sort %q is not oldest or newest", errBadFilter, f.Sort)
	}
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 100_000 {
			return f, fmt.Errorf("%w: page %q is not a page number", errBadFilter, p)
		}
		f.Page = n
	}
	return f, nil
}

// query builds the store query of f, resolving its search text (any identifier an
// operator has: instance, workflow ID, carrier user, order, ICCID) to subjects. matched
// says what the text matched; none means it matched nothing.
func (c *Console) query(r *http.Request, f listFilter, limit int) (q store.ExpirationQuery, matched []store.Match, none bool, err error) {
	q = store.ExpirationQuery{Source: f.Source, Test: f.Test, OldestFirst: f.Sort == "oldest", Limit: limit, Offset: (f.Page - 1) * limit}
	if f.Since != "" {
		q.ChangedSince = c.cfg.Now().Add(-sinceChoices[f.Since])
	}
	if f.State != "" {
		q.States = []string{f.State}
	}
	if f.Q == "" {
		return q, nil, false, nil
	}
	if matched, err = c.cfg.Store.FindSubscriptions(r.Context(), f.Q, 100); err != nil {
		return q, nil, false, err
	}
	for _, m := range matched {
		q.Subjects = append(q.Subjects, store.Subjects(m.Subscription)...)
	}
	return q, matched, len(q.Subjects) == 0, nil
}

func (c *Console) expirations(w http.ResponseWriter, r *http.Request, sess session) {
	f, err := readListFilter(r.URL.Query())
	if err != nil {
		c.fail(w, r, sess, http.StatusBadRequest, err.Error())
		return
	}
	q, matched, none, err := c.query(r, f, pageSize)
	if err != nil {
		c.storeFailed(w, r, sess, err)
		return
	}
	var (
		rows []store.Expiration
		more bool
	)
	if !none {
		if rows, more, err = c.cfg.Store.ListExpirations(r.Context(), q); err != nil {
			c.storeFailed(w, r, sess, err)
			return
		}
	}
	c.render(w, r, http.StatusOK, "expirations", &sess, map[string]any{
		"F": f, "Rows": rows, "More": more, "Matched": matched, "None": none, "States": store.States,
		"Prev": f.Page - 1, "Next": f.Page + 1, "Page": strconv.Itoa(f.Page),
	})
}

// expirationsCSV exports every expiration the filter selects (up to csvLimit), for a
// spreadsheet.
func (c *Console) expirationsCSV(w http.ResponseWriter, r *http.Request, sess session) {
	f, err := readListFilter(r.URL.Query())
	if err != nil {
		c.fail(w, r, sess, http.StatusBadRequest, err.Error())
		return
	}
	f.Page = 1
	q, _, none, err := c.query(r, f, csvLimit)
	if err != nil {
		c.storeFailed(w, r, sess, err)
		return
	}
	var rows []store.Expiration
	if !none {
		if rows, _, err = c.cfg.Store.ListExpirations(r.Context(), q); err != nil {
			c.storeFailed(w, r, sess, err)
			return
		}
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="kooflow-expirations.csv"`)
	out := csv.NewWriter(w)
	_ = out.Write([]string{"workflowId", "state", "meaning", "source", "subject", "period", "carrierUserId", "packageId", "test", "attempts", "updatedAt", "lastError"})
	for _, e := range rows {
		_ = out.Write([]string{e.WorkflowID, e.State, said(e.State), e.Source, spreadsheetSafe(e.Subject), e.Period, spreadsheetSafe(e.CarrierUserID),
			spreadsheetSafe(e.PackageID), strconv.FormatBool(e.Test), strconv.Itoa(e.Attempts), e.UpdatedAt.UTC().Format(time.RFC3339), spreadsheetSafe(e.LastError)})
	}
	out.Flush()
}

// spreadsheetSafe keeps a cell from being read as a formula by a spreadsheet (CSV
// injection): a value starting with =, +, - or @ gets a leading apostrophe.
func spreadsheetSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// event is one line of an expiration's timeline.
type event struct {
	At     time.Time
	Kind   string
	What   string
	Detail string
	Failed bool
}

// expiration shows one expiration and everything kooflow knows about it, on one
// timeline: the registry's history, every delivery, the operator actions.
func (c *Console) expiration(w http.ResponseWriter, r *http.Request, sess session) {
	ctx := r.Context()
	id := r.URL.Query().Get("id")
	e, err := c.cfg.Store.Expiration(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		c.fail(w, r, sess, http.StatusNotFound, fmt.Sprintf("no expiration %q: search for it on the expirations page by any identifier", id))
		return
	}
	if err != nil {
		c.storeFailed(w, r, sess, err)
		return
	}
	sub, err := c.cfg.Store.Subscription(ctx, e.SubscriptionID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		c.storeFailed(w, r, sess, err)
		return
	}
	var timeline []event
	if err == nil {
		history, err := c.cfg.Store.Events(ctx, sub.ID)
		if err != nil {
			c.storeFailed(w, r, sess, err)
			return
		}
		for _, h := range history {
			timeline = append(timeline, event{At: h.At, Kind: "registry", What: h.Event, Detail: h.Detail})
		}
	}
	deliveries, err := c.cfg.Store.Deliveries(ctx, store.DeliveryFilter{Subjects: []string{e.Subject}, Limit: 200})
	if err != nil {
		c.storeFailed(w, r, sess, err)
		return
	}
	for _, d := range deliveries {
		timeline = append(timeline, event{At: d.ReceivedAt, Kind: "delivery from " + d.Source,
			What:   fmt.Sprintf("%s: %s (answered %s)", d.Activity, d.Outcome, d.Answer),
			Detail: strings.TrimSpace(d.Reason + " " + d.Detail), Failed: d.Outcome == store.DeliveryRefused || d.Outcome == store.DeliveryUnavailable})
	}
	actions, err := c.cfg.Store.AuditEntries(ctx, store.AuditFilter{Subjects: []string{e.WorkflowID, e.Subject}, Limit: 200})
	if err != nil {
		c.storeFailed(w, r, sess, err)
		return
	}
	for _, a := range actions {
		timeline = append(timeline, event{At: a.At, Kind: "operator " + a.Actor + " (" + a.Via + ")",
			What: a.Action + " " + a.Args + ": " + a.Result, Detail: a.Detail, Failed: a.Result == store.AuditFailed})
	}
	timeline = append(timeline, event{At: e.CreatedAt, Kind: "kooflow", What: "expiration accepted"})
	if !e.NotifiedAt.IsZero() {
		timeline = append(timeline, event{At: e.NotifiedAt, Kind: "KooDrive", What: "told: the user entered the reservation period"})
	}
	sort.SliceStable(timeline, func(i, j int) bool { return timeline[i].At.After(timeline[j].At) })
	c.render(w, r, http.StatusOK, "expiration", &sess, map[string]any{
		"E": e, "Sub": sub, "Timeline": timeline, "Retryable": retryable(e.State), "TemporalURL": c.temporalURL(e.WorkflowID),
		"Runnable": e.State == store.StateConflict && e.Source == starter.SourceKooGallery,
		"Message":  messages[r.URL.Query().Get("msg")],
	})
}

// retryable reports whether an operator's retry does something for an expiration in state.
func retryable(state string) bool {
	return state == store.StateStalled || state == store.StateTerminated || state == store.StateCancelled
}

// messages are the notices a redirect may ask an expiration's page to show.
var messages = map[string]string{
	"retried":   "Retried: it is trying KooDrive for another hour.",
	"restarted": "Started again: it had been ended in Temporal before it finished.",
	"replayed":  "Replayed: the SmartHub push is accepted as this expiry.",
	"expired":   "Accepted by hand and queued: it freezes the subscription and tells KooDrive.",
	"known":     "This expiry was accepted before: nothing new was queued.",
	"ran":       "Run: the expiry held as a conflict is accepted and queued; it freezes the subscription and tells KooDrive.",
}

// temporalURL links workflowID's page in the Temporal UI, or "" without one.
func (c *Console) temporalURL(workflowID string) string {
	if c.cfg.TemporalUIURL == "" {
		return ""
	}
	return strings.TrimRight(c.cfg.TemporalUIURL, "/") + "/namespaces/" + url.PathEscape(c.cfg.Namespace) + "/workflows/" + url.PathEscape(workflowID)
}

// confirmRetry asks before a retry: what it will do, for which expiration.
func (c *Console) confirmRetry(w http.ResponseWriter, r *http.Request, sess session) {
	id := r.URL.Query().Get("id")
	e, err := c.cfg.Store.Expiration(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		c.fail(w, r, sess, http.StatusNotFound, fmt.Sprintf("no expiration %q", id))
		return
	}
	if err != nil {
		c.storeFailed(w, r, sess, err)
		return
	}
	if !retryable(e.State) {
		c.fail(w, r, sess, http.StatusConflict, fmt.Sprintf("%s is %s: there is nothing to retry", e.WorkflowID, said(e.State)))
		return
	}
	c.render(w, r, http.StatusOK, "confirm", &sess, map[string]any{"E": e})
}

// retry runs the operator's retry through starter.Operator, audited under the
// signed-in actor, and shows the expiration with the result.
func (c *Console) retry(w http.ResponseWriter, r *http.Request, sess session) {
	id := r.PostFormValue("id")
	if !strings.HasPrefix(id, "expire/") {
		c.fail(w, r, sess, http.StatusBadRequest, fmt.Sprintf("%q is not an expiration's workflow ID", id))
		return
	}
	op := c.cfg.Operator(c.actor(r, sess))
	results, err := op.RetryStalled(r.Context(), id)
	if err != nil {
		c.cfg.Logger.Warn("console retry failed", "workflowId", id, "actor", sess.Actor, "error", err)
		c.fail(w, r, sess, http.StatusConflict, "The retry was refused: "+err.Error())
		return
	}
	msg := "retried"
	if len(results) == 1 && results[0].Restarted {
		msg = "restarted"
	}
	http.Redirect(w, r, "/expiration?"+url.Values{"id": {id}, "msg": {msg}}.Encode(), http.StatusSeeOther)
}

// deliveries shows the delivery log, filtered.
func (c *Console) deliveries(w http.ResponseWriter, r *http.Request, sess session) {
	q := r.URL.Query()
	f := store.DeliveryFilter{Source: q.Get("source"), Outcome: q.Get("outcome"), Limit: 200}
	if f.Outcome != "" && !slices.Contains(store.DeliveryOutcomes, f.Outcome) {
		c.fail(w, r, sess, http.StatusBadRequest, fmt.Sprintf("outcome %q is not one of %s", f.Outcome, strings.Join(store.DeliveryOutcomes, ", ")))
		return
	}
	if f.Source != "" && f.Source != starter.SourceKooGallery && f.Source != starter.SourceSmartHub {
		c.fail(w, r, sess, http.StatusBadRequest, fmt.Sprintf("source %q is not koogallery or smarthub", f.Source))
		return
	}
	var err error
	if f.Subjects, f.Since, err = c.logWindow(q); err != nil {
		c.fail(w, r, sess, http.StatusBadRequest, err.Error())
		return
	}
	rows, err := c.cfg.Store.Deliveries(r.Context(), f)
	if err != nil {
		c.storeFailed(w, r, sess, err)
		return
	}
	waiting, err := c.cfg.Store.SmartHubEventsWhere(r.Context(), store.SmartHubEventFilter{Status: store.EventUnmatched, Limit: 100})
	if err != nil {
		c.storeFailed(w, r, sess, err)
		return
	}
	c.render(w, r, http.StatusOK, "deliveries", &sess, map[string]any{"Rows": rows, "Outcomes": store.DeliveryOutcomes, "Waiting": waiting,
		"Source": f.Source, "Outcome": f.Outcome, "Subject": q.Get("subject"), "Since": q.Get("since")})
}

// audit shows the audit log, filtered.
func (c *Console) audit(w http.ResponseWriter, r *http.Request, sess session) {
	q := r.URL.Query()
	f := store.AuditFilter{Actor: strings.TrimSpace(q.Get("actor")), Action: strings.TrimSpace(q.Get("action")), Result: q.Get("result"), Limit: 200}
	if f.Result != "" && f.Result != store.AuditOK && f.Result != store.AuditFailed {
		c.fail(w, r, sess, http.StatusBadRequest, fmt.Sprintf("result %q is not ok or failed", f.Result))
		return
	}
	var err error
	if f.Subjects, f.Since, err = c.logWindow(q); err != nil {
		c.fail(w, r, sess, http.StatusBadRequest, err.Error())
		return
	}
	rows, err := c.cfg.Store.AuditEntries(r.Context(), f)
	if err != nil {
		c.storeFailed(w, r, sess, err)
		return
	}
	c.render(w, r, http.StatusOK, "audit", &sess, map[string]any{"Rows": rows, "Actor": f.Actor, "Action": f.Action,
		"Result": f.Result, "Subject": q.Get("subject"), "Since": q.Get("since")})
}

// logWindow reads what both log pages filter on alike: a subject and a time window.
func (c *Console) logWindow(q url.Values) (subjects []string, since time.Time, err error) {
	if s := strings.TrimSpace(q.Get("subject")); s != "" {
		subjects = []string{s}
	}
	since, err = readSince(q.Get("since"), c.cfg.Now())
	return subjects, since, err
}

// sinceChoices are the time windows the log pages offer.
var sinceChoices = map[string]time.Duration{"1h": time.Hour, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour}

// readSince reads a log page's window: empty for all, or one of sinceChoices.
func readSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	d, ok := sinceChoices[s]
	if !ok {
		return time.Time{}, fmt.Errorf("since %q is not one of 1h, 24h, 7d, 30d", s)
	}
	return now.Add(-d), nil
}
