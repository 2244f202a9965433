package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/kooflow/kooflow/console"
	"github.com/kooflow/kooflow/store"
)

// The console's tests in a real browser: headless Chromium, driven through the DevTools
// protocol by chromedp, clicks through the pages the dev stack serves as an operator
// would. The pages have no script (their Content-Security-Policy allows none), so the
// tests only navigate, click, type and read.

// ChromiumEnv names the Chromium (or Chrome) binary the browser tests drive; unset, they
// look for chromium, chromium-browser and google-chrome on PATH.
const ChromiumEnv = "KOOFLOW_CHROMIUM"

// ScreenshotsEnv names a directory the browser tests write full-page screenshots of the
// console into (docs/console.md links docs/console/*.png); unset, none are taken.
const ScreenshotsEnv = "KOOFLOW_SCREENSHOTS"

// browserWait bounds one browser test's whole conversation with Chromium; waits for a
// state inside it are bounded on their own.
const browserWait = 4 * time.Minute

// chromiumPath finds the browser, or skips the test when this machine has none. A
// KOOFLOW_CHROMIUM that names no executable fails: it was asked for.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(ChromiumEnv); p != "" {
		path, err := exec.LookPath(p)
		if err != nil {
			t.Fatalf("%s=%s: %v", ChromiumEnv, p, err)
		}
		return path
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	t.Skipf("no Chromium: none of chromium, chromium-browser, google-chrome is on PATH and %s is unset "+
		"(Debian: apt-get install --no-install-recommends chromium; .ci/run installs it)", ChromiumEnv)
	return ""
}

// browser is one headless Chromium with a fresh profile, on one tab.
type browser struct {
	t   *testing.T
	ctx context.Context
	// console is the console's base URL.
	console string
}

// newBrowserEnv starts kooflow and a browser for one test; it skips before starting
// anything when there is no Chromium.
func newBrowserEnv(t *testing.T) (*env, *browser) {
	t.Helper()
	path := chromiumPath(t)
	e := newEnv(t)
	if e.app.ConsoleURL == "" {
		t.Fatal("the dev stack serves no console")
	}
	profile := t.TempDir() // removed after the cleanup below has stopped the browser
	output := &logBuffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
		chromedp.NoSandbox, // as root in CI's container
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// Without these, Chromium reaches for Google's hosts, which this network refuses.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.CombinedOutput(output),
	)
	timeout, cancelTimeout := context.WithTimeout(context.Background(), browserWait)
	alloc, cancelAlloc := chromedp.NewExecAllocator(timeout, opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancelCtx() // closes the browser and waits for it
		cancelAlloc()
		cancelTimeout()
		if t.Failed() {
			t.Logf("Chromium's output:\n%s", chromiumSaid(output.String()))
		}
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start %s: %v\n%s", path, err, chromiumSaid(output.String()))
	}
	return e, &browser{t: t, ctx: ctx, console: e.app.ConsoleURL}
}

// stepWait bounds one step in the browser: a query waits for its element to appear.
const stepWait = time.Minute

// step is a context for one step.
func (b *browser) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, stepWait)
}

// selecting applies a query action to sel: an XPath (it starts with "/") is resolved
// with DOM.performSearch, anything else as a CSS selector.
func selecting[T any](sel string, css func(chromedp.CSS, ...chromedp.QueryOption) chromedp.Action[T],
	xpath func(chromedp.Search, ...chromedp.QueryOption) chromedp.Action[T]) chromedp.Action[T] {
	if strings.HasPrefix(sel, "/") {
		return xpath(chromedp.Search(sel))
	}
	return css(chromedp.CSS(sel))
}

// open navigates to u (a path is on the console) and answers the HTTP status of the
// page that loaded, after redirects.
func (b *browser) open(u string) int {
	b.t.Helper()
	if strings.HasPrefix(u, "/") {
		u = b.console + u
	}
	ctx, cancel := b.step()
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(u))
	if err != nil {
		b.t.Fatalf("open %s: %v", u, err)
	}
	return int(resp.Status)
}

// reload loads the page again.
func (b *browser) reload() {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		b.t.Fatalf("reload: %v", err)
	}
}

// click clicks what sel finds and waits for the page it leads to, answering its HTTP
// status.
func (b *browser) click(sel string) int {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, selecting(sel, chromedp.Click[chromedp.CSS], chromedp.Click[chromedp.Search]))
	if err != nil {
		b.t.Fatalf("click %s: %v", sel, err)
	}
	return int(resp.Status)
}

// typeInto types text into the field the CSS selector sel finds.
func (b *browser) typeInto(sel, text string) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(sel), text)); err != nil {
		b.t.Fatalf("type into %s: %v", sel, err)
	}
}

// read runs a query action that reads a string.
func (b *browser) read(what, sel string, a chromedp.Action[string]) string {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	s, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("read the %s of %s: %v", what, sel, err)
	}
	return s
}

// text is the visible text of the first element sel finds.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return b.read("text", sel, selecting(sel, chromedp.Text[chromedp.CSS], chromedp.Text[chromedp.Search]))
}

// html is the markup of the first element sel finds.
func (b *browser) html(sel string) string {
	b.t.Helper()
	return b.read("markup", sel, selecting(sel, chromedp.OuterHTML[chromedp.CSS], chromedp.OuterHTML[chromedp.Search]))
}

// value is the value of the first form field sel finds.
func (b *browser) value(sel string) string {
	b.t.Helper()
	return b.read("value", sel, selecting(sel, chromedp.Value[chromedp.CSS], chromedp.Value[chromedp.Search]))
}

// signIn spends a one-time sign-in link for actor with role, as the person it was given
// to would, and lands on the overview.
func (b *browser) signIn(e *env, actor string, role console.Role) {
	b.t.Helper()
	if status := b.open(e.app.ConsoleURL + e.app.Console.SignInLink(actor, role)); status != http.StatusOK {
		b.t.Fatalf("sign-in link answered %d: %s", status, b.text("main"))
	}
	if h := b.text("h1"); h != "Overview" {
		b.t.Fatalf("signed in as %s, the page is %q, not the overview", actor, h)
	}
	if who := b.text("header .who span"); !strings.Contains(who, actor) || !strings.Contains(who, string(role)) {
		b.t.Fatalf("the header names %q, not %s · %s", who, actor, role)
	}
}

// sessionCookie returns the console's session cookie the browser holds, checking it is
// HttpOnly and SameSite=Lax, for a request made outside the browser with its session.
func (b *browser) sessionCookie() *http.Cookie {
	b.t.Helper()
	cookies, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.console}})
	if err != nil {
		b.t.Fatal(err)
	}
	for _, c := range cookies.Cookies {
		if c.Name == "kooflow_session" {
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax {
				b.t.Errorf("the session cookie is HttpOnly=%v SameSite=%q; want HttpOnly, Lax", c.HTTPOnly, c.SameSite)
			}
			return &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	b.t.Fatalf("the browser holds no session cookie: %+v", cookies.Cookies)
	return nil
}

// screenshot writes a full-page PNG of what the browser shows as name.png into
// KOOFLOW_SCREENSHOTS, when it is set.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	dir := os.Getenv(ScreenshotsEnv)
	if dir == "" {
		return
	}
	ctx, cancel := b.step()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	file := filepath.Join(dir, name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s (%d bytes)", file, len(png))
}

// waitText reloads the page until the text of sel contains want, for at most timeout.
func (b *browser) waitText(sel, want string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := b.text(sel)
		if strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s still reads %q after %s of reloading, not %q", sel, got, timeout, want)
		}
		time.Sleep(250 * time.Millisecond)
		b.reload()
	}
}

// linkTo is a selector for the link whose text is exactly s.
func linkTo(s string) string { return fmt.Sprintf(`//a[normalize-space()=%q]`, s) }

// buttonSaying is a selector for the button whose text is exactly s.
func buttonSaying(s string) string { return fmt.Sprintf(`//button[normalize-space()=%q]`, s) }

// oneLine collapses runs of white space, as a browser shows text.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// TestBrowserOperatorRetriesAStalledExpiry: an operator signs in with the dev one-time
// link, finds a stalled expiry by the carrier's user id in the Expirations search box,
// opens it and reads its whole reason, clicks Retry…, confirms, and reloads until the
// page says KooDrive was told.
func TestBrowserOperatorRetriesAStalledExpiry(t *testing.T) {
	e, b := newBrowserEnv(t)
	workflowID := e.stalled("inst-browser")
	rec, err := e.app.Store.Expiration(context.Background(), workflowID)
	if err != nil || rec.LastError == "" {
		t.Fatalf("the stalled expiration = %+v, %v; want a reason", rec, err)
	}

	b.signIn(e, "olga", console.RoleOperator)
	if alerts := b.text("section.alerts"); !strings.Contains(alerts, "1 expiration(s) stalled") {
		t.Fatalf("the overview does not say one expiry stalled: %q", alerts)
	}
	b.screenshot("overview")

	if status := b.click(`header nav a[href="/expirations"]`); status != http.StatusOK {
		t.Fatalf("Expirations answered %d", status)
	}
	b.typeInto(`form.filters input[name="q"]`, "user-inst-browser")
	if status := b.click(`form.filters button[type="submit"]`); status != http.StatusOK {
		t.Fatalf("the search answered %d: %s", status, b.text("main"))
	}
	if matched := b.text("main"); !strings.Contains(matched, "carrierUserId → inst-browser") {
		t.Fatalf("the search does not say what the carrier user id matched: %q", matched)
	}
	if row := b.text("table tbody"); !strings.Contains(row, workflowID) || !strings.Contains(row, "stalled — waiting for an operator") {
		t.Fatalf("the list does not show the stalled expiry in words: %q", row)
	}

	if status := b.click(linkTo(workflowID)); status != http.StatusOK {
		t.Fatalf("the expiration's page answered %d: %s", status, b.text("body"))
	}
	if state := b.text("p.state"); !strings.Contains(state, "stalled — waiting for an operator") {
		t.Fatalf("the expiration's state reads %q", state)
	}
	if reason := b.text("section.summary p.reason"); oneLine(reason) != oneLine(rec.LastError) {
		t.Fatalf("the page shows the reason %q, not the whole %q", reason, rec.LastError)
	}
	b.screenshot("expiration")

	if status := b.click(linkTo("Retry…")); status != http.StatusOK {
		t.Fatalf("Retry… answered %d: %s", status, b.text("main"))
	}
	if h := b.text("h1"); h != "Retry "+workflowID+"?" {
		t.Fatalf("the confirmation asks %q", h)
	}
	if reason := b.text("main p.reason"); !strings.Contains(reason, "carrier is not whitelisted") {
		t.Fatalf("the confirmation does not repeat the cause: %q", reason)
	}
	b.screenshot("retry-confirm")

	e.kd.ClearFaults() // KooDrive has fixed the whitelist
	if status := b.click(buttonSaying("Yes, retry it")); status != http.StatusOK {
		t.Fatalf("the retry answered %d: %s", status, b.text("main"))
	}
	if notice := b.text("main p.ok"); !strings.Contains(notice, "Retried") {
		t.Fatalf("after the retry the page says %q", notice)
	}
	b.waitText("p.state", "reserved — done, KooDrive was told", 90*time.Second)
	if timeline := b.text("main table"); !strings.Contains(timeline, "operator olga (console)") {
		t.Errorf("the timeline does not show olga's retry: %q", timeline)
	}
	if n := len(e.notificationsFor("user-inst-browser")); n != 1 {
		t.Fatalf("KooDrive told %d times, want 1", n)
	}
}

// TestBrowserBulkRetryOfThreeStalled: from the overview's stalled count to the
// Expirations page filtered by state stalled, the operator uses the offered bulk retry,
// confirms the three it names, sees each one's result, and the list of reserved
// expirations fills with all three.
func TestBrowserBulkRetryOfThreeStalled(t *testing.T) {
	e, b := newBrowserEnv(t)
	var ids []string
	for _, inst := range []string{"bulk-b1", "bulk-b2", "bulk-b3"} {
		ids = append(ids, e.stalled(inst))
	}

	b.signIn(e, "olga", console.RoleOperator)
	if status := b.click(`table a[href="/expirations?state=stalled"]`); status != http.StatusOK {
		t.Fatalf("the stalled list answered %d", status)
	}
	if state := b.value(`form.filters select[name="state"]`); state != "stalled" {
		t.Fatalf("the list is filtered by state %q, not stalled", state)
	}
	list := b.text("table tbody")
	for _, id := range ids {
		if !strings.Contains(list, id) {
			t.Fatalf("the stalled list lacks %s: %q", id, list)
		}
	}
	b.screenshot("expirations")

	if status := b.click(linkTo("Retry every stalled expiration matching this filter…")); status != http.StatusOK {
		t.Fatalf("the bulk retry answered %d: %s", status, b.text("main"))
	}
	if h := b.text("h1"); h != "Retry 3 stalled expirations?" {
		t.Fatalf("the confirmation asks %q", h)
	}
	if named := b.text("table tbody"); !strings.Contains(named, ids[0]) || !strings.Contains(named, ids[1]) || !strings.Contains(named, ids[2]) {
		t.Fatalf("the confirmation does not name all three: %q", named)
	}

	e.kd.ClearFaults()
	if status := b.click(buttonSaying("Yes, retry all 3")); status != http.StatusOK {
		t.Fatalf("the bulk retry answered %d: %s", status, b.text("main"))
	}
	if results := b.text("table tbody"); strings.Count(results, "retrying for another hour") != 3 {
		t.Fatalf("the results: %q", results)
	}

	b.open("/expirations?state=reserved")
	deadline := time.Now().Add(90 * time.Second)
	for {
		listed := b.text("main")
		missing := 0
		for _, id := range ids {
			if !strings.Contains(listed, id) {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 3 are still not reserved after 90s: %q", missing, listed)
		}
		time.Sleep(250 * time.Millisecond)
		b.reload()
	}
	for _, inst := range []string{"bulk-b1", "bulk-b2", "bulk-b3"} {
		if n := len(e.notificationsFor("user-" + inst)); n != 1 {
			t.Errorf("%s: KooDrive told %d times, want 1", inst, n)
		}
	}
}

// TestBrowserViewerSeesNoActionAndAForgedPostIsRefused: a viewer's pages offer no
// button to act; a POST they forge with their own session and CSRF token (taken from
// the browser) is answered 403 and recorded in the audit log as refused, and the
// expiry stays stalled.
func TestBrowserViewerSeesNoActionAndAForgedPostIsRefused(t *testing.T) {
	e, b := newBrowserEnv(t)
	workflowID := e.stalled("inst-viewer")

	b.signIn(e, "vera", console.RoleViewer)
	b.open("/expirations?state=stalled")
	if list := b.html("main"); !strings.Contains(list, workflowID) || strings.Contains(list, "Retry") || strings.Contains(list, `class="button"`) {
		t.Fatalf("a viewer's stalled list offers an action or lacks the expiry: %s", list)
	}
	if status := b.click(linkTo(workflowID)); status != http.StatusOK {
		t.Fatalf("the expiration's page answered %d", status)
	}
	page := b.html("main")
	if !strings.Contains(page, "carrier is not whitelisted") {
		t.Fatalf("a viewer does not see the reason: %s", page)
	}
	for _, action := range []string{"<button", `class="button"`, "<form", "Retry", "Run this expiry"} {
		if strings.Contains(page, action) {
			t.Fatalf("a viewer's expiration page has %q: %s", action, page)
		}
	}

	// The forgery: the viewer's own session cookie and CSRF token, a same-origin POST.
	session := b.sessionCookie()
	csrf := b.value(`header form.who input[name="csrf"]`)
	form := url.Values{"id": {workflowID}, "csrf": {csrf}}
	req, _ := http.NewRequest(http.MethodPost, e.app.ConsoleURL+"/expiration/retry", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.app.ConsoleURL)
	req.AddCookie(session)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "role viewer may not do this") {
		t.Fatalf("a viewer's forged retry answered %d: %s", resp.StatusCode, body)
	}

	refused, err := e.app.Store.AuditEntries(context.Background(), store.AuditFilter{Actor: "vera"})
	if err != nil || len(refused) != 1 {
		t.Fatalf("vera's audit entries = %+v, %v; want the refused retry", refused, err)
	}
	if r := refused[0]; r.Result != store.AuditFailed || r.Via != "console" || r.Action != "console /expiration/retry" || !strings.Contains(r.Detail, "refused: role viewer") {
		t.Fatalf("the refused retry is audited as %+v", r)
	}
	b.open("/audit?actor=vera")
	if audit := b.text("main table"); !strings.Contains(audit, "refused: role viewer may not do this") {
		t.Fatalf("the audit log page does not show the refusal: %q", audit)
	}
	if rec, err := e.app.Store.Expiration(context.Background(), workflowID); err != nil || rec.State != store.StateStalled {
		t.Fatalf("after the refused retry the expiration is %+v, %v; want it still stalled", rec, err)
	}
}

// TestBrowserCrossOriginPostIsRefused: a page on another origin carries a form that
// posts a retry to the console. Even with the operator signed in (the browser sends
// the session cookie: the two origins differ only by port, so are the same site) and
// the form carrying a valid CSRF token, clicking its button gets 403 from the console,
// which audits it, and nothing is retried.
func TestBrowserCrossOriginPostIsRefused(t *testing.T) {
	e, b := newBrowserEnv(t)
	workflowID := e.stalled("inst-xorigin")

	b.signIn(e, "olga", console.RoleOperator)
	csrf := b.value(`header form.who input[name="csrf"]`) // as if it had leaked
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>You won</title>
<form method="post" action="%s/expiration/retry">
<input type="hidden" name="id" value="%s"><input type="hidden" name="csrf" value="%s">
<button type="submit">Claim your prize</button>
</form>`, e.app.ConsoleURL, workflowID, csrf)
	}))
	t.Cleanup(attacker.Close)
	if attacker.URL == e.app.ConsoleURL {
		t.Fatal("the attacker's page is on the console's origin")
	}

	e.kd.ClearFaults() // a retry that got through would now reach KooDrive
	b.open(attacker.URL)
	if status := b.click(buttonSaying("Claim your prize")); status != http.StatusForbidden {
		t.Fatalf("the console answered the cross-origin POST with %d, want 403: %s", status, b.text("body"))
	}
	if page := b.text("main"); !strings.Contains(page, "the request came from another site") {
		t.Fatalf("the refusal says %q", page)
	}

	refused, err := e.app.Store.AuditEntries(context.Background(), store.AuditFilter{Actor: "olga"})
	if err != nil || len(refused) != 1 {
		t.Fatalf("olga's audit entries = %+v, %v; want the refused POST", refused, err)
	}
	if r := refused[0]; r.Result != store.AuditFailed || r.Action != "console /expiration/retry" || !strings.Contains(r.Detail, "cross-origin") {
		t.Fatalf("the refused POST is audited as %+v", r)
	}
	if acted, err := e.app.Store.AuditEntries(context.Background(), store.AuditFilter{Subjects: []string{workflowID}}); err != nil || len(acted) != 0 {
		t.Fatalf("actions on %s = %+v, %v; want none", workflowID, acted, err)
	}
	if rec, err := e.app.Store.Expiration(context.Background(), workflowID); err != nil || rec.State != store.StateStalled {
		t.Fatalf("after the refused POST the expiration is %+v, %v; want it still stalled", rec, err)
	}
	if n := len(e.notificationsFor("user-inst-xorigin")); n != 0 {
		t.Fatalf("KooDrive told %d times after a refused POST", n)
	}
}

// chromiumSaid is the end of Chromium's output, without its complaints that the
// machine has no D-Bus.
func chromiumSaid(out string) string {
	var kept []string
	for line := range strings.Lines(out) {
		if !strings.Contains(line, "dbus") {
			kept = append(kept, line)
		}
	}
	s := strings.Join(kept, "")
	if n := 4000; len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
