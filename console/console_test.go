package console_test

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/console"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
)

// world is a console on a real SQLite store holding a stalled expiration of inst-1
// (carrier user user-1), a reserved one of inst-2, and a delivery of each; Temporal is
// unreachable, so an action that needs it fails and says so.
type world struct {
	store   *store.Store
	console *console.Console
	now     time.Time
	mu      sync.Mutex
}

const stallReason = "KooDrive rejected the notification: code 10020001: carrier is not whitelisted (whole reason, nothing cut)"

func newWorld(t *testing.T) *world {
	t.Helper()
	st := storetest.OpenSQLite(t)
	ctx := context.Background()
	if _, err := st.UpsertSubscriptions(ctx, []store.Subscription{
		{InstanceID: "inst-1", OrderID: "order-1", CarrierUserID: "user-1", PackageID: "pkg-1"},
		{InstanceID: "inst-2", OrderID: "order-2", CarrierUserID: "user-2", PackageID: "=HYPERLINK(1)"},
	}); err != nil {
		t.Fatal(err)
	}
	for _, inst := range []string{"inst-1", "inst-2"} {
		sub, err := st.SubscriptionByInstance(ctx, inst)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.AcceptExpiry(ctx, store.ExpiryIntent{
			Expiration: store.Expiration{WorkflowID: "expire/koogallery/" + inst + "/current", Source: "koogallery", Subject: inst, Period: "current",
				SubscriptionID: sub.ID, CarrierUserID: sub.CarrierUserID, PackageID: sub.PackageID},
			Input:    []byte(`{}`),
			Delivery: store.Delivery{Source: "koogallery", Activity: "expireInstance", Subject: inst, Answer: "000000", Detail: "success.", Request: "instanceId=" + inst},
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetExpirationState(ctx, "expire/koogallery/inst-1/current", store.StateStalled, stallReason); err != nil {
		t.Fatal(err)
	}
	if err := st.SetExpirationState(ctx, "expire/koogallery/inst-2/current", store.StateReserved, ""); err != nil {
		t.Fatal(err)
	}
	w := &world{store: st, now: time.Now()}
	c, err := console.New(console.Config{
		Store: st, SessionKey: []byte("a-test-session-key-of-32-bytes-or-more"), TemporalUIURL: "http://127.0.0.1:8233",
		Operator: func(a starter.Actor) console.Operator {
			return &starter.Operator{Store: st, Actor: a, Dial: func(ctx context.Context) (client.Client, error) {
				return nil, errors.New("connect to Temporal at 127.0.0.1:1: connection refused")
			}}
		},
		Logger: slog.New(slog.DiscardHandler),
		Now:    w.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	w.console = c
	return w
}

func (w *world) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func (w *world) advance(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = w.now.Add(d)
}

// do sends a request to the console with cookie (may be nil) and returns the answer.
func (w *world) do(t *testing.T, method, target string, form url.Values, cookie *http.Cookie, header ...string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	rec := httptest.NewRecorder()
	w.console.ServeHTTP(rec, req)
	return rec.Result(), rec.Body.String()
}

// signIn spends a one-time link for actor with role and returns the session cookie.
func (w *world) signIn(t *testing.T, actor string, role console.Role) *http.Cookie {
	t.Helper()
	resp, _ := w.do(t, http.MethodGet, w.console.SignInLink(actor, role), nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("sign-in link answered %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, c := range resp.Cookies() {
		if c.Name == "kooflow_session" && c.HttpOnly && c.SameSite == http.SameSiteLaxMode {
			return c
		}
	}
	t.Fatalf("no HttpOnly, SameSite=Lax session cookie in %v", resp.Cookies())
	return nil
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the CSRF token from a page's form.
func csrf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the page")
	}
	return m[1]
}

func (w *world) auditEntries(t *testing.T) []store.AuditEntry {
	t.Helper()
	entries, err := w.store.AuditEntries(context.Background(), store.AuditFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// TestSignInWithAOneTimeLink: without a session every page leads to sign-in; a one-time
// link signs in once and never again; an idle session ends.
func TestSignInWithAOneTimeLink(t *testing.T) {
	w := newWorld(t)
	if resp, _ := w.do(t, http.MethodGet, "/expirations", nil, nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin" {
		t.Fatalf("signed out: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	link := w.console.SignInLink("alice", console.RoleViewer)
	if resp, _ := w.do(t, http.MethodGet, link, nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first use answered %d", resp.StatusCode)
	}
	if resp, body := w.do(t, http.MethodGet, link, nil, nil); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "used already") {
		t.Fatalf("second use answered %d: %s", resp.StatusCode, body)
	}
	if resp, _ := w.do(t, http.MethodGet, "/signin/link?token=forged", nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a forged link answered %d", resp.StatusCode)
	}
	cookie := w.signIn(t, "alice", console.RoleViewer)
	if resp, body := w.do(t, http.MethodGet, "/", nil, cookie); resp.StatusCode != http.StatusOK || !strings.Contains(body, "alice · viewer") {
		t.Fatalf("overview: %d", resp.StatusCode)
	}
	forged := *cookie
	forged.Value = strings.Replace(forged.Value, ".", "x.", 1)
	if resp, _ := w.do(t, http.MethodGet, "/", nil, &forged); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a tampered cookie answered %d", resp.StatusCode)
	}
	w.advance(31 * time.Minute)
	if resp, _ := w.do(t, http.MethodGet, "/", nil, cookie); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a session idle for 31 minutes answered %d", resp.StatusCode)
	}
}

// TestLinksLeadToTheirPages: every link on the pages an operator goes through carries
// its query as written (an expiration's ID, a state filter), so following it answers the
// page it names; a link whose query was escaped twice loses its parameters.
func TestLinksLeadToTheirPages(t *testing.T) {
	w := newWorld(t)
	runID, _ := w.addRun(t)
	op := w.signIn(t, "olga", console.RoleOperator)
	href := regexp.MustCompile(`href="(/[^"]*)"`)
	for _, page := range []string{"/", "/reconciliation", fmt.Sprintf("/reconciliation/run?id=%d", runID), "/expirations?state=stalled", "/expirations?q=user-1",
		"/expiration?id=" + url.QueryEscape("expire/koogallery/inst-1/current"), "/deliveries", "/expirations/retry?q=", "/registry?q=user-1", "/audit"} {
		_, body := w.do(t, http.MethodGet, page, nil, op)
		for _, m := range href.FindAllStringSubmatch(body, -1) {
			link := html.UnescapeString(m[1])
			if strings.Contains(link, "%3d") || strings.Contains(link, "%25") {
				t.Errorf("%s links %q: its query is escaped twice", page, link)
				continue
			}
			if resp, got := w.do(t, http.MethodGet, link, nil, op); resp.StatusCode != http.StatusOK {
				t.Errorf("%s links %q, which answers %d: %s", page, link, resp.StatusCode, got)
			}
		}
	}
	_, list := w.do(t, http.MethodGet, "/expirations?state=stalled", nil, op)
	for _, want := range []string{`href="/expiration?id=expire%2Fkoogallery%2Finst-1%2Fcurrent"`, `href="/expirations/retry?"`} {
		if !strings.Contains(list, want) {
			t.Errorf("the stalled list lacks %s", want)
		}
	}
}

// TestPagesAnswerInPlainWords: the overview puts what needs an operator first, the list
// finds an expiry by the carrier's own identifiers, and the detail shows the whole
// reason and the timeline; every answer carries the security headers.
func TestPagesAnswerInPlainWords(t *testing.T) {
	w := newWorld(t)
	cookie := w.signIn(t, "alice", console.RoleViewer)
	resp, body := w.do(t, http.MethodGet, "/", nil, cookie)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "1 expiration(s) stalled") ||
		strings.Index(body, ">stalled<") > strings.Index(body, ">reserved<") {
		t.Fatalf("overview: %d %s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	for _, q := range []string{"user-1", "order-1", "inst-1", "expire/koogallery/inst-1/current"} {
		_, body := w.do(t, http.MethodGet, "/expirations?q="+url.QueryEscape(q), nil, cookie)
		if !strings.Contains(body, "expire/koogallery/inst-1/current") || strings.Contains(body, "expire/koogallery/inst-2/current") ||
			!strings.Contains(body, "stalled — waiting for an operator") {
			t.Errorf("search %q does not find inst-1's expiration alone: %s", q, body)
		}
	}
	if _, body := w.do(t, http.MethodGet, "/expirations?q=nobody", nil, cookie); !strings.Contains(body, "Nothing in the registry is known as") {
		t.Errorf("a search for nobody: %s", body)
	}
	if _, body := w.do(t, http.MethodGet, "/expirations?state=reserved", nil, cookie); !strings.Contains(body, "inst-2") || strings.Contains(body, "inst-1/current") {
		t.Errorf("state=reserved: %s", body)
	}
	for _, bad := range []string{"state=stuck", "source=fax", "page=0", "sort=sideways"} {
		if resp, body := w.do(t, http.MethodGet, "/expirations?"+bad, nil, cookie); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, strings.SplitN(bad, "=", 2)[0]) {
			t.Errorf("%s answered %d: %s", bad, resp.StatusCode, body)
		}
	}
	resp, body = w.do(t, http.MethodGet, "/expiration?id="+url.QueryEscape("expire/koogallery/inst-1/current"), nil, cookie)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, stallReason) || !strings.Contains(body, "expireInstance: accepted (answered 000000)") ||
		!strings.Contains(body, "http://127.0.0.1:8233/namespaces/default/workflows/expire%2Fkoogallery%2Finst-1%2Fcurrent") {
		t.Fatalf("detail: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(body, "Retry…") {
		t.Error("a viewer is offered the retry")
	}
	if resp, body := w.do(t, http.MethodGet, "/expiration?id=expire/nothing", nil, cookie); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "no expiration") {
		t.Errorf("unknown expiration: %d %s", resp.StatusCode, body)
	}
	if resp, body := w.do(t, http.MethodGet, "/deliveries?outcome=accepted&since=24h", nil, cookie); resp.StatusCode != http.StatusOK || !strings.Contains(body, "instanceId=inst-1") {
		t.Errorf("deliveries: %d %s", resp.StatusCode, body)
	}
	if resp, body := w.do(t, http.MethodGet, "/deliveries?since=yesterday", nil, cookie); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "since") {
		t.Errorf("deliveries since=yesterday: %d", resp.StatusCode)
	}
	if resp, _ := w.do(t, http.MethodGet, "/audit?result=maybe", nil, cookie); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("audit result=maybe: %d", resp.StatusCode)
	}
}

// TestCSVExportIsSafeForSpreadsheets: the export has the filter's rows, with a header,
// and no cell a spreadsheet would run as a formula.
func TestCSVExportIsSafeForSpreadsheets(t *testing.T) {
	w := newWorld(t)
	cookie := w.signIn(t, "alice", console.RoleViewer)
	resp, body := w.do(t, http.MethodGet, "/expirations.csv?state=reserved", nil, cookie)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("export: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "workflowId,state,meaning") || !strings.Contains(lines[1], "'=HYPERLINK(1)") {
		t.Fatalf("export = %q", body)
	}
}

// TestActionsNeedTheRightRoleAndToken: a viewer's or a forged POST is refused with 403 and
// audited; an operator's retry goes through starter.Operator under their name, and a
// retry that fails says why and is audited as failed.
func TestActionsNeedTheRightRoleAndToken(t *testing.T) {
	w := newWorld(t)
	id := "expire/koogallery/inst-1/current"
	viewer := w.signIn(t, "victor", console.RoleViewer)
	_, page := w.do(t, http.MethodGet, "/", nil, viewer)
	form := url.Values{"id": {id}, "csrf": {csrf(t, page)}}
	if resp, _ := w.do(t, http.MethodPost, "/expiration/retry", form, viewer); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a viewer's retry answered %d", resp.StatusCode)
	}
	if resp, _ := w.do(t, http.MethodPost, "/expiration/retry", url.Values{"id": {id}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a retry without a session answered %d", resp.StatusCode)
	}

	op := w.signIn(t, "olga", console.RoleOperator)
	resp, page := w.do(t, http.MethodGet, "/expiration?id="+url.QueryEscape(id), nil, op)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Retry…") {
		t.Fatalf("an operator is not offered the retry: %d", resp.StatusCode)
	}
	if resp, body := w.do(t, http.MethodGet, "/expiration/retry?id="+url.QueryEscape(id), nil, op); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Yes, retry it") {
		t.Fatalf("confirmation: %d %s", resp.StatusCode, body)
	}
	if resp, body := w.do(t, http.MethodGet, "/expiration/retry?id="+url.QueryEscape("expire/koogallery/inst-2/current"), nil, op); resp.StatusCode != http.StatusConflict || !strings.Contains(body, "nothing to retry") {
		t.Fatalf("confirmation for a reserved expiry: %d %s", resp.StatusCode, body)
	}
	if resp, _ := w.do(t, http.MethodPost, "/expiration/retry", url.Values{"id": {id}, "csrf": {"forged"}}, op); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a retry with a forged token answered %d", resp.StatusCode)
	}
	good := url.Values{"id": {id}, "csrf": {csrf(t, page)}}
	if resp, _ := w.do(t, http.MethodPost, "/expiration/retry", good, op, "Sec-Fetch-Site", "cross-site"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a cross-site POST answered %d", resp.StatusCode)
	}
	resp, body := w.do(t, http.MethodPost, "/expiration/retry", good, op)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "The retry was refused") || !strings.Contains(body, "connection refused") {
		t.Fatalf("a retry with Temporal down: %d %s", resp.StatusCode, body)
	}

	entries := w.auditEntries(t)
	want := []struct{ actor, action, detail string }{
		{"olga", "retry", "connection refused"},
		{"olga", "console /expiration/retry", "another site"},
		{"olga", "console /expiration/retry", "CSRF"},
		{"(not signed in)", "console /expiration/retry", "not signed in"},
		{"victor", "console /expiration/retry", "role viewer"},
	}
	if len(entries) != len(want) {
		t.Fatalf("audit = %+v, want %d entries", entries, len(want))
	}
	for i, e := range entries {
		if e.Actor != want[i].actor || e.Action != want[i].action || e.Result != store.AuditFailed || !strings.Contains(e.Detail, want[i].detail) {
			t.Errorf("audit entry %d = %+v, want %+v", i, e, want[i])
		}
		if e.Action == "retry" && (e.Via != starter.ViaConsole || !strings.Contains(strings.Join(e.Subjects, " "), id)) {
			t.Errorf("the retry's entry = %+v", e)
		}
	}
}

// TestBulkRetryShowsTheCountFirst: a filter of stalled expirations offers to retry them
// all; the confirmation lists how many and which; the retry goes through one audited
// action naming each, and its result is shown (here: refused, Temporal is down).
func TestBulkRetryShowsTheCountFirst(t *testing.T) {
	w := newWorld(t)
	op := w.signIn(t, "olga", console.RoleOperator)
	if _, body := w.do(t, http.MethodGet, "/expirations?state=stalled", nil, op); !strings.Contains(body, "Retry every stalled expiration matching this filter") {
		t.Fatalf("no bulk retry offered: %s", body)
	}
	viewer := w.signIn(t, "victor", console.RoleViewer)
	if _, body := w.do(t, http.MethodGet, "/expirations?state=stalled", nil, viewer); strings.Contains(body, "Retry every stalled") {
		t.Error("a viewer is offered the bulk retry")
	}
	resp, page := w.do(t, http.MethodGet, "/expirations/retry?source=koogallery", nil, op)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Retry 1 stalled expirations?") || !strings.Contains(page, "expire/koogallery/inst-1/current") ||
		strings.Contains(page, "inst-2/current") {
		t.Fatalf("confirmation: %d %s", resp.StatusCode, page)
	}
	resp, body := w.do(t, http.MethodPost, "/expirations/retry", url.Values{"source": {"koogallery"}, "csrf": {csrf(t, page)}}, op)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "connection refused") {
		t.Fatalf("bulk retry with Temporal down: %d %s", resp.StatusCode, body)
	}
	entries := w.auditEntries(t)
	if len(entries) != 1 || entries[0].Action != "retry" || entries[0].Args != "every stalled expiration from koogallery" ||
		strings.Join(entries[0].Subjects, " ") != "expire/koogallery/inst-1/current" || entries[0].Via != starter.ViaConsole {
		t.Fatalf("audit = %+v", entries)
	}
	if resp, body := w.do(t, http.MethodPost, "/expirations/retry", url.Values{"q": {"user-2"}, "csrf": {csrf(t, page)}}, op); resp.StatusCode != http.StatusConflict || !strings.Contains(body, "Nothing to retry") {
		t.Fatalf("bulk retry of nothing: %d %s", resp.StatusCode, body)
	}
}

// TestRunAHeldConflict: an expiry held as a conflict is offered to operators, confirmed,
// and run through starter.Operator.Expire: it is accepted and queued, and audited.
func TestRunAHeldConflict(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.store.UpsertSubscriptions(ctx, []store.Subscription{{InstanceID: "inst-3", CarrierUserID: "user-3", PackageID: "pkg-3",
		ExpireTime: time.Now().AddDate(4, 0, 0)}}); err != nil {
		t.Fatal(err)
	}
	sub, _ := w.store.SubscriptionByInstance(ctx, "inst-3")
	v := starter.KooGalleryExpiry(sub, false, time.Now())
	if _, err := (&starter.Intake{Store: w.store}).AcceptExpiry(ctx, v, store.Delivery{Source: "koogallery", Activity: "expireInstance", Subject: "inst-3", Answer: "000000"}, ""); err != nil {
		t.Fatal(err)
	}
	op := w.signIn(t, "olga", console.RoleOperator)
	_, detail := w.do(t, http.MethodGet, "/expiration?id="+url.QueryEscape(v.WorkflowID), nil, op)
	if !strings.Contains(detail, "Run this expiry…") || !strings.Contains(detail, "conflict — held: KooGallery and the registry disagree") {
		t.Fatalf("detail of a conflict: %s", detail)
	}
	resp, page := w.do(t, http.MethodGet, "/expiration/run?id="+url.QueryEscape(v.WorkflowID), nil, op)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Yes, run the expiry") {
		t.Fatalf("confirmation: %d", resp.StatusCode)
	}
	resp, _ = w.do(t, http.MethodPost, "/expiration/run", url.Values{"id": {v.WorkflowID}, "csrf": {csrf(t, page)}}, op)
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "msg=ran") {
		t.Fatalf("run answered %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if e, err := w.store.Expiration(ctx, v.WorkflowID); err != nil || e.State != store.StateAccepted {
		t.Fatalf("after the run: %+v, %v", e, err)
	}
	if resp, body := w.do(t, http.MethodPost, "/expiration/run", url.Values{"id": {v.WorkflowID}, "csrf": {csrf(t, page)}}, op); resp.StatusCode != http.StatusConflict || !strings.Contains(body, "only an expiry held as a conflict") {
		t.Fatalf("running it twice: %d %s", resp.StatusCode, body)
	}
	if entries := w.auditEntries(t); len(entries) != 1 || entries[0].Action != "expire" || entries[0].Actor != "olga" || entries[0].Result != store.AuditOK {
		t.Fatalf("audit = %+v", entries)
	}
}

// upload posts a registry file to the console as a browser's multipart form does.
func (w *world) upload(t *testing.T, cookie *http.Cookie, csrfToken, name, content string) (*http.Response, string) {
	t.Helper()
	var body strings.Builder
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("csrf", csrfToken)
	part, _ := mw.CreateFormFile("file", name)
	_, _ = io.WriteString(part, content)
	_ = mw.Close()
	req := httptest.NewRequest(http.MethodPost, "/registry/import", strings.NewReader(body.String()))
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.AddCookie(cookie)
	rec := httptest.NewRecorder()
	w.console.ServeHTTP(rec, req)
	return rec.Result(), rec.Body.String()
}

// TestRegistryUploadAllOrNothing: an admin uploads a registry file; a file with a bad row
// shows that row's error in a table and changes nothing; a good one shows what changed;
// both are audited; an operator may not upload.
func TestRegistryUploadAllOrNothing(t *testing.T) {
	w := newWorld(t)
	admin := w.signIn(t, "ada", console.RoleAdmin)
	_, page := w.do(t, http.MethodGet, "/registry?q=user-1", nil, admin)
	if !strings.Contains(page, "inst-1") || !strings.Contains(page, "Import a registry file") {
		t.Fatalf("registry page: %s", page)
	}
	token := csrf(t, page)
	resp, body := w.upload(t, admin, token, "bad.csv", "instanceId,carrierUserId,packageId\ninst-9,user-9,pkg-9\ninst-10,,pkg-10\n")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Refused: 1 invalid row(s)") || !strings.Contains(body, "<td>3</td>") ||
		!strings.Contains(body, "carrierUserId is required") {
		t.Fatalf("bad file: %d %s", resp.StatusCode, body)
	}
	if _, err := w.store.SubscriptionByInstance(context.Background(), "inst-9"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused file half-imported inst-9: %v", err)
	}
	resp, body = w.upload(t, admin, token, "good.csv", "instanceId,carrierUserId,packageId\ninst-9,user-9,pkg-9\n")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Imported as import 2 (each subscription it created or changed names it in its history): 1 inserted, 0 updated, 0 unchanged") {
		t.Fatalf("good file: %d %s", resp.StatusCode, body)
	}
	// The subscription's history says who imported it, from which file (the operator's
	// name for it, not the console's copy).
	if sub, err := w.store.SubscriptionByInstance(context.Background(), "inst-9"); err != nil {
		t.Fatal(err)
	} else if h := storetest.History(t, w.store, sub.ID); h != "imported (import 2 of good.csv by ada via console)" {
		t.Errorf("history of inst-9 = %s", h)
	}
	if resp, body := w.upload(t, admin, token, "registry.txt", "x"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "neither a .csv nor an .xlsx") {
		t.Fatalf("a .txt upload: %d %s", resp.StatusCode, body)
	}
	entries := w.auditEntries(t)
	if len(entries) != 2 || entries[0].Result != store.AuditOK || entries[1].Result != store.AuditFailed ||
		!strings.HasPrefix(entries[1].Args, "bad.csv (uploaded") || entries[0].Actor != "ada" {
		t.Fatalf("audit = %+v", entries)
	}
	op := w.signIn(t, "olga", console.RoleOperator)
	_, opPage := w.do(t, http.MethodGet, "/registry", nil, op)
	if strings.Contains(opPage, "Import a registry file") {
		t.Error("an operator is offered the import")
	}
	if resp, _ := w.upload(t, op, csrf(t, opPage), "good.csv", "instanceId,carrierUserId,packageId\ninst-11,u,p\n"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an operator's upload answered %d", resp.StatusCode)
	}
}

// TestReplayAWaitingSmartHubPush: a SmartHub push whose SIM was not in the registry is
// listed on the deliveries page; once the SIM is imported, an operator's replay accepts
// it as an expiry.
func TestReplayAWaitingSmartHubPush(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	ev, _, err := w.store.RecordSmartHubEvent(ctx, store.SmartHubEvent{EventID: "evt-9", EventType: "RULE_TRIGGERED", TriggerType: "SERVICE_PACKAGE_EXPIRED",
		GIccid: "8986009", PackageCode: "PK9", ValidThru: time.Now().Add(-time.Hour), Raw: "{}"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := (&starter.Intake{Store: w.store}).AcceptSmartHubExpiry(ctx, ev, store.Delivery{}); !errors.Is(err, starter.ErrUnmatched) {
		t.Fatalf("unmatched push: %v", err)
	}
	op := w.signIn(t, "olga", console.RoleOperator)
	_, page := w.do(t, http.MethodGet, "/deliveries", nil, op)
	if !strings.Contains(page, "SmartHub pushes waiting for the registry") || !strings.Contains(page, "evt-9") {
		t.Fatalf("deliveries page: %s", page)
	}
	if resp, body := w.do(t, http.MethodPost, "/smarthub/replay", url.Values{"event": {"evt-9"}, "csrf": {csrf(t, page)}}, op); resp.StatusCode != http.StatusConflict || !strings.Contains(body, "not in the registry") {
		t.Fatalf("replay before the import: %d %s", resp.StatusCode, body)
	}
	if _, err := w.store.UpsertSubscriptions(ctx, []store.Subscription{{GIccid: "8986009", PackageCode: "PK9", CarrierUserID: "user-9", PackageID: "pkg-9"}}); err != nil {
		t.Fatal(err)
	}
	resp, _ := w.do(t, http.MethodPost, "/smarthub/replay", url.Values{"event": {"evt-9"}, "csrf": {csrf(t, page)}}, op)
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "msg=replayed") {
		t.Fatalf("replay after the import answered %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestExpireByHandFollowsTheRuleBook: an operator expires a registered instance from the
// registry page after a confirmation, through starter.Operator.Expire; a second time
// finds it known.
func TestExpireByHandFollowsTheRuleBook(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.store.UpsertSubscriptions(ctx, []store.Subscription{{InstanceID: "inst-4", CarrierUserID: "user-4", PackageID: "pkg-4",
		ExpireTime: time.Now().Add(-time.Hour).UTC().Truncate(time.Second)}}); err != nil {
		t.Fatal(err)
	}
	op := w.signIn(t, "olga", console.RoleOperator)
	_, page := w.do(t, http.MethodGet, "/registry?q=user-4", nil, op)
	if !strings.Contains(page, "Expire by hand…") {
		t.Fatalf("registry page offers no expiry by hand: %s", page)
	}
	if resp, body := w.do(t, http.MethodGet, "/registry/expire?instance=inst-4", nil, op); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Yes, expire it") {
		t.Fatalf("confirmation: %d", resp.StatusCode)
	}
	if resp, _ := w.do(t, http.MethodGet, "/registry/expire?instance=nobody", nil, op); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("confirmation for an unknown instance answered %d", resp.StatusCode)
	}
	resp, _ := w.do(t, http.MethodPost, "/registry/expire", url.Values{"instance": {"inst-4"}, "csrf": {csrf(t, page)}}, op)
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "msg=expired") {
		t.Fatalf("expire answered %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = w.do(t, http.MethodPost, "/registry/expire", url.Values{"instance": {"inst-4"}, "csrf": {csrf(t, page)}}, op)
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "msg=known") {
		t.Fatalf("second expire answered %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if entries := w.auditEntries(t); len(entries) != 2 || entries[0].Action != "expire" || entries[0].Via != starter.ViaConsole {
		t.Fatalf("audit = %+v", entries)
	}
}

// TestExpirationsChangedWithin: the list keeps the expirations changed within the chosen
// window, its links keep the window, and a window it does not offer is refused by name.
func TestExpirationsChangedWithin(t *testing.T) {
	w := newWorld(t)
	w.advance(2 * time.Hour) // both expirations changed two hours ago
	op := w.signIn(t, "olga", console.RoleOperator)
	if _, body := w.do(t, http.MethodGet, "/expirations?since=1h", nil, op); strings.Contains(body, "inst-1/current") || !strings.Contains(body, "No expiration matches") {
		t.Errorf("changed within the last hour lists expirations changed two hours ago: %s", body)
	}
	_, body := w.do(t, http.MethodGet, "/expirations?state=stalled&since=24h", nil, op)
	if !strings.Contains(body, "inst-1/current") || !strings.Contains(body, `href="/expirations/retry?since=24h"`) ||
		!strings.Contains(body, `<option value="24h" selected>the last day</option>`) {
		t.Errorf("changed within the last day: %s", body)
	}
	if _, confirm := w.do(t, http.MethodGet, "/expirations/retry?since=24h", nil, op); !strings.Contains(confirm, "every stalled expiration changed within 24h") ||
		!strings.Contains(confirm, `name="since" value="24h"`) {
		t.Errorf("the bulk retry's confirmation does not keep the window: %s", confirm)
	}
	if _, confirm := w.do(t, http.MethodGet, "/expirations/retry?since=1h", nil, op); !strings.Contains(confirm, "No stalled expiration matches") {
		t.Errorf("a bulk retry of the last hour offers expirations changed two hours ago: %s", confirm)
	}
	for _, page := range []string{"/deliveries?since=7d", "/audit?since=7d"} {
		if _, body := w.do(t, http.MethodGet, page, nil, op); !strings.Contains(body, `<option value="7d" selected>the last week</option>`) {
			t.Errorf("%s does not keep its window selected", page)
		}
	}
	if resp, body := w.do(t, http.MethodGet, "/expirations?since=2w", nil, op); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "changed within") {
		t.Errorf("since=2w answered %d: %s", resp.StatusCode, body)
	}
}
