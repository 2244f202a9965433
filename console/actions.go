package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
)

// maxBulkRetry bounds one bulk retry: a filter that selects more is narrowed first.
const maxBulkRetry = 1000

// stalledOf returns the stalled expirations f selects (whatever its state says), at most
// maxBulkRetry, and whether there are more.
func (c *Console) stalledOf(r *http.Request, f listFilter) ([]store.Expiration, bool, error) {
	f.State, f.Page = store.StateStalled, 1
	q, _, none, err := c.query(r, f, maxBulkRetry)
	if err != nil || none {
		return nil, false, err
	}
	return c.cfg.Store.ListExpirations(r.Context(), q)
}

// describeFilter says in words what a bulk action was asked for, for the audit log.
func describeFilter(f listFilter) string {
	parts := []string{"every stalled expiration"}
	if f.Source != "" {
		parts = append(parts, "from "+f.Source)
	}
	if f.Q != "" {
		parts = append(parts, fmt.Sprintf("matching %q", f.Q))
	}
	if f.Since != "" {
		parts = append(parts, "changed within "+f.Since)
	}
	return strings.Join(parts, " ")
}

// confirmBulkRetry shows how many stalled expirations the filter selects, and which,
// before they are retried.
func (c *Console) confirmBulkRetry(w http.ResponseWriter, r *http.Request, sess session) {
	f, err := readListFilter(r.URL.Query())
	if err != nil {
		c.fail(w, r, sess, http.StatusBadRequest, err.Error())
		return
	}
	rows, more, err := c.stalledOf(r, f)
	if err != nil {
		c.storeFailed(w, r, sess, err)
		return
	}
	c.render(w, r, http.StatusOK, "bulkconfirm", &sess, map[string]any{"F": f, "Rows": rows, "More": more, "Asked": describeFilter(f), "Max": maxBulkRetry})
}

// bulkRetry retries the stalled expirations the filter selects now (not those shown on
// the confirmation: one may have moved since), under one audit entry, and shows each
// one's result.
func (c *Console) bulkRetry(w http.ResponseWriter, r *http.Request, sess session) {
	f, err := readListFilter(url.Values{"q": {r.PostFormValue("q")}, "source": {r.PostFormValue("source")}, "since": {r.PostFormValue("since")}})
	if err != nil {
		c.fail(w, r, sess, http.StatusBadRequest, err.Error())
		return
	}
	rows, more, err := c.stalledOf(r, f)
	if err != nil {
		c.storeFailed(w, r, sess, err)
		return
	}
	if more {
		c.fail(w, r, sess, http.StatusConflict, fmt.Sprintf("more than %d stalled expirations match %s: narrow the filter first", maxBulkRetry, describeFilter(f)))
		return
	}
	ids := make([]string, len(rows))
	for i, e := range rows {
		ids[i] = e.WorkflowID
	}
	op := c.cfg.Operator(c.actor(r, sess))
	results, err := op.RetryEach(r.Context(), ids, describeFilter(f))
	if errors.Is(err, starter.ErrNothingStalled) {
		c.fail(w, r, sess, http.StatusConflict, "Nothing to retry: no stalled expiration matches "+describeFilter(f)+" now.")
		return
	}
	status := http.StatusOK
	var failure string
	if err != nil {
		status, failure = http.StatusConflict, err.Error()
	}
	c.render(w, r, status, "bulkresult", &sess, map[string]any{"Results": results, "Failure": failure, "Asked": describeFilter(f)})
}

// confirmRun asks before an operator runs an expiry held as a conflict.
func (c *Console) confirmRun(w http.ResponseWriter, r *http.Request, sess session) {
	e, ok := c.heldConflict(w, r, sess, r.URL.Query().Get("id"))
	if !ok {
		return
	}
	c.render(w, r, http.StatusOK, "runconfirm", &sess, map[string]any{"E": e})
}

// run runs a held conflict through starter.Operator.Expire, as `kooflow expire` does.
func (c *Console) run(w http.ResponseWriter, r *http.Request, sess session) {
	e, ok := c.heldConflict(w, r, sess, r.PostFormValue("id"))
	if !ok {
		return
	}
	op := c.cfg.Operator(c.actor(r, sess))
	if _, _, err := op.Expire(r.Context(), e.Subject, e.Test); err != nil {
		c.fail(w, r, sess, http.StatusConflict, "The expiry was not run: "+err.Error())
		return
	}
	http.Redirect(w, r, "/expiration?"+url.Values{"id": {e.WorkflowID}, "msg": {"ran"}}.Encode(), http.StatusSeeOther)
}

// confirmExpire asks before an operator accepts a KooGallery instance's expiry by hand.
func (c *Console) confirmExpire(w http.ResponseWriter, r *http.Request, sess session) {
	instance := r.URL.Query().Get("instance")
	matches, err := c.cfg.Store.FindSubscriptions(r.Context(), instance, 1)
	if err != nil {
		c.storeFailed(w, r, sess, err)
		return
	}
	if len(matches) == 0 || matches[0].Subscription.InstanceID != instance {
		c.fail(w, r, sess, http.StatusNotFound, fmt.Sprintf("no KooGallery instance %q in the registry", instance))
		return
	}
	c.render(w, r, http.StatusOK, "expireconfirm", &sess, map[string]any{"Sub": matches[0].Subscription})
}

// expireByHand accepts an instance's expiry through starter.Operator.Expire — the same
// rule book as a delivery, as `kooflow expire` — and shows the expiration.
func (c *Console) expireByHand(w http.ResponseWriter, r *http.Request, sess session) {
	instance := r.PostFormValue("instance")
	op := c.cfg.Operator(c.actor(r, sess))
	_, acc, err := op.Expire(r.Context(), instance, false)
	if err != nil {
		c.fail(w, r, sess, http.StatusConflict, "The expiry was not accepted: "+err.Error())
		return
	}
	msg := "expired"
	if acc.Existing {
		msg = "known"
	}
	http.Redirect(w, r, "/expiration?"+url.Values{"id": {acc.WorkflowID}, "msg": {msg}}.Encode(), http.StatusSeeOther)
}

// heldConflict reads the expiration id, answering for the caller when it is not a
// KooGallery expiry held as a conflict.
func (c *Console) heldConflict(w http.ResponseWriter, r *http.Request, sess session, id string) (store.Expiration, bool) {
	e, err := c.cfg.Store.Expiration(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		c.fail(w, r, sess, http.StatusNotFound, fmt.Sprintf("no expiration %q", id))
		return e, false
	case err != nil:
		c.storeFailed(w, r, sess, err)
		return e, false
	case e.State != store.StateConflict || e.Source != starter.SourceKooGallery:
		c.fail(w, r, sess, http.StatusConflict, fmt.Sprintf("%s is %s: only an expiry held as a conflict is run by hand here", e.WorkflowID, said(e.State)))
		return e, false
	}
	return e, true
}
