package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/console"
	"github.com/kooflow/kooflow/store"
)

// consoleClient is a browser-like client of the dev stack's console: it keeps the
// session cookie and does not follow redirects, so a test sees each answer.
type consoleClient struct {
	t    *testing.T
	base string
	http *http.Client
}

func (e *env) consoleAs(actor string, role console.Role) *consoleClient {
	e.t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &consoleClient{t: e.t, base: e.app.ConsoleURL, http: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if resp, _ := c.get(e.app.Console.SignInLink(actor, role)); resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("console sign-in answered %d", resp.StatusCode)
	}
	return c
}

func (c *consoleClient) get(path string) (*http.Response, string) {
	c.t.Helper()
	resp, err := c.http.Get(c.base + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (c *consoleClient) post(path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.base) // as a browser sends it for a same-origin form
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

var consoleCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestConsoleRetryOfAStalledExpiry: on the embedded stack, an operator finds a stalled
// expiry in the console by its carrier user id, reads the whole reason, confirms the
// retry, and sees it become reserved; KooDrive is told once and the audit log names the
// operator and the console.
func TestConsoleRetryOfAStalledExpiry(t *testing.T) {
	e := newEnv(t)
	workflowID := e.stalled("inst-console")
	c := e.consoleAs("olga", console.RoleOperator)

	_, list := c.get("/expirations?q=user-inst-console")
	if !strings.Contains(list, workflowID) || !strings.Contains(list, "stalled — waiting for an operator") {
		t.Fatalf("the list does not find the stalled expiry by its carrier user: %s", list)
	}
	_, detail := c.get("/expiration?id=" + url.QueryEscape(workflowID))
	if !strings.Contains(detail, "carrier is not whitelisted") || !strings.Contains(detail, "Retry…") {
		t.Fatalf("the detail page lacks the reason or the retry: %s", detail)
	}
	_, confirm := c.get("/expiration/retry?id=" + url.QueryEscape(workflowID))
	m := consoleCSRF.FindStringSubmatch(confirm)
	if m == nil {
		t.Fatalf("no CSRF token on the confirmation: %s", confirm)
	}
	e.kd.ClearFaults()
	resp, body := c.post("/expiration/retry", url.Values{"id": {workflowID}, "csrf": {m[1]}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("retry answered %d: %s", resp.StatusCode, body)
	}
	e.waitState(workflowID, store.StateReserved, 60*time.Second)
	_, after := c.get(resp.Header.Get("Location"))
	if !strings.Contains(after, "Retried") || !strings.Contains(after, "reserved — done, KooDrive was told") {
		t.Fatalf("after the retry: %s", after)
	}
	if n := len(e.notificationsFor("user-inst-console")); n != 1 {
		t.Fatalf("KooDrive notified %d times, want 1", n)
	}
	entries, err := e.app.Store.AuditEntries(context.Background(), store.AuditFilter{Subjects: []string{workflowID}})
	if err != nil || len(entries) != 1 || entries[0].Actor != "olga" || entries[0].Via != "console" || entries[0].Result != store.AuditOK {
		t.Fatalf("audit = %+v, %v", entries, err)
	}
}

// TestConsoleBulkRetryOfThreeStalled: three expiries stalled on the same KooDrive
// rejection are retried from the console in one action once the cause is fixed; each
// shows its result, all become reserved, and KooDrive is told once for each.
func TestConsoleBulkRetryOfThreeStalled(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for _, inst := range []string{"bulk-1", "bulk-2", "bulk-3"} {
		ids = append(ids, e.stalled(inst))
	}
	c := e.consoleAs("olga", console.RoleOperator)
	_, confirm := c.get("/expirations/retry?q=")
	if !strings.Contains(confirm, "Retry 3 stalled expirations?") {
		t.Fatalf("confirmation: %s", confirm)
	}
	m := consoleCSRF.FindStringSubmatch(confirm)
	if m == nil {
		t.Fatal("no CSRF token on the confirmation")
	}
	e.kd.ClearFaults()
	resp, body := c.post("/expirations/retry", url.Values{"csrf": {m[1]}})
	if resp.StatusCode != http.StatusOK || strings.Count(body, "retrying for another hour") != 3 {
		t.Fatalf("bulk retry answered %d: %s", resp.StatusCode, body)
	}
	for _, id := range ids {
		e.waitState(id, store.StateReserved, 60*time.Second)
	}
	for _, inst := range []string{"bulk-1", "bulk-2", "bulk-3"} {
		if n := len(e.notificationsFor("user-" + inst)); n != 1 {
			t.Errorf("%s: KooDrive told %d times, want 1", inst, n)
		}
	}
}
