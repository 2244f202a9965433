package sandbox_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/koodrive/sandbox"
)

const (
	appID     = "kooflow-app"
	appSecret = "app-secret-never-shown"
)

// outcomes records what the client tells its observer.
type outcomes struct {
	mu  sync.Mutex
	got []string
}

func (o *outcomes) observe(endpoint, outcome string, _ float64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, outcome)
}

func (o *outcomes) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.got...)
}

func startSandbox(t *testing.T, opts sandbox.Options) (*sandbox.Sandbox, string) {
	t.Helper()
	opts.UserID = "kd-user"
	sb := sandbox.New(opts)
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	return sb, srv.URL
}

func newClient(t *testing.T, url string, auth koodrive.Signer, now func() time.Time, o *outcomes, transport http.RoundTripper) *koodrive.Client {
	t.Helper()
	cfg := koodrive.Config{BaseURL: url, UserID: "kd-user", Auth: auth, Now: now, HTTPClient: &http.Client{Transport: transport, Timeout: 10 * time.Second}}
	if o != nil {
		cfg.Observe = o.observe
	}
	c, err := koodrive.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// statementBytes is a one-row statement workbook with the columns the sandbox requires.
func statementBytes(t *testing.T) []byte {
	t.Helper()
	book := excelize.NewFile()
	defer book.Close()
	for i, row := range [][]any{{"carrierOrderId", "carrierUserId", "carrierOrderTime", "packageId"}, {"CO-1", "u-1", "2020-01-02T00:00:00Z", "p-1"}} {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := book.SetSheetRow("Sheet1", cell, &row); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := book.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAppSignatureAcceptedOnEveryEndpoint(t *testing.T) {
	sb, url := startSandbox(t, sandbox.Options{Apps: map[string]string{appID: appSecret}})
	var o outcomes
	c := newClient(t, url, koodrive.NewAppSignature(appID, appSecret), nil, &o, nil)
	ctx := context.Background()
	if err := c.NotifyPackageExpire(ctx, "user 1", "pkg/ü"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetServiceStatus(ctx); err != nil {
		t.Fatal(err)
	}
	batch, err := c.VerifyData(ctx, "2020-01", "2020-01.xlsx", bytes.NewReader(statementBytes(t)))
	if err != nil {
		t.Fatal(err)
	}
	// A cursor with characters §7 encodes: the sandbox must see the query that was signed.
	for _, cursor := range []string{"", "a b~ü+/="} {
		_, err := c.GetDiffList(ctx, batch, 10, cursor)
		if cursor == "" && err != nil {
			t.Fatal(err)
		}
		if cursor != "" && (err == nil || koodrive.IsUnauthorized(err) || !strings.Contains(err.Error(), "is not a cursor this API returned")) {
			// The sandbox got past the signature to the cursor check.
			t.Fatalf("odd cursor: %v", err)
		}
	}
	if v := sb.Verified(); v.AppSignatures != 5 || v.Tokens != 0 {
		t.Fatalf("verified %+v, want 5 app signatures", v)
	}
	for _, r := range sb.Rejections() {
		if r.Status == http.StatusUnauthorized {
			t.Fatalf("signature refused: %+v", r)
		}
	}
	if got := o.list(); strings.Join(got, ",") != "success,success,success,success,rejected" {
		t.Fatalf("outcomes %v", got)
	}
}

// mutate changes one byte of every request body after the client signed it.
type mutate struct{}

func (mutate) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		body, _ := io.ReadAll(req.Body)
		body[len(body)/2] ^= 1
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestStatementUploadSignedOverItsExactBytes: the multipart upload passes the sandbox's
// signature check, which hashes the bytes it received; the same upload with one byte of
// the body changed after signing is refused, so the signature covers those exact bytes.
func TestStatementUploadSignedOverItsExactBytes(t *testing.T) {
	sb, url := startSandbox(t, sandbox.Options{Apps: map[string]string{appID: appSecret}})
	ctx := context.Background()
	good := newClient(t, url, koodrive.NewAppSignature(appID, appSecret), nil, nil, nil)
	if _, err := good.VerifyData(ctx, "2020-01", "2020-01.xlsx", bytes.NewReader(statementBytes(t))); err != nil {
		t.Fatal(err)
	}
	if v := sb.Verified(); v.AppSignatures != 1 {
		t.Fatalf("verified %+v", v)
	}
	tampered := newClient(t, url, koodrive.NewAppSignature(appID, appSecret), nil, nil, mutate{})
	_, err := tampered.VerifyData(ctx, "2020-01", "2020-01.xlsx", bytes.NewReader(statementBytes(t)))
	if !koodrive.IsUnauthorized(err) {
		t.Fatalf("tampered upload: %v, want credentials refused", err)
	}
	rej := sb.Rejections()
	if len(rej) != 1 || !strings.Contains(rej[0].Reason, "app signature does not match") || len(sb.Uploads()) != 1 {
		t.Fatalf("rejections %+v, uploads %d", rej, len(sb.Uploads()))
	}
}

func TestWrongAppSecretIsACredentialsFailure(t *testing.T) {
	sb, url := startSandbox(t, sandbox.Options{Apps: map[string]string{appID: appSecret}})
	var o outcomes
	const wrong = "wrong-secret-value"
	c := newClient(t, url, koodrive.NewAppSignature(appID, wrong), nil, &o, nil)
	err := c.NotifyPackageExpire(context.Background(), "u", "p")
	var kerr *koodrive.Error
	if !errors.As(err, &kerr) || !kerr.Unauthorized || !kerr.Retryable || kerr.HTTPStatus != 401 {
		t.Fatalf("err = %#v", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "KooDrive refused kooflow's credentials (app signature (KOODRIVE_APP_ID kooflow-app))") ||
		strings.Contains(msg, wrong) || strings.Contains(msg, appSecret) {
		t.Fatalf("message %q", msg)
	}
	if got := o.list(); len(got) != 1 || got[0] != koodrive.OutcomeAuthFailed {
		t.Fatalf("outcomes %v", got)
	}
	if len(sb.Notifications()) != 0 {
		t.Fatal("a badly signed notification was accepted")
	}
	// An unknown app and a signature over other headers are refused too.
	for name, auth := range map[string]koodrive.Signer{"unknown app": koodrive.NewAppSignature("other-app", appSecret)} {
		if err := newClient(t, url, auth, nil, nil, nil).NotifyPackageExpire(context.Background(), "u", "p"); !koodrive.IsUnauthorized(err) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestSandboxChecksTheAppSignatureRules sends hand-made requests: each breaks one rule.
func TestSandboxChecksTheAppSignatureRules(t *testing.T) {
	sb, url := startSandbox(t, sandbox.Options{Apps: map[string]string{appID: appSecret}})
	body := `{"carrierUserId":"u","type":2,"packageId":"p"}`
	signed := func() *http.Request {
		req, _ := http.NewRequest(http.MethodPost, url+koodrive.NotifyPackageExpirePath+"?x=1", strings.NewReader(body))
		req.Header.Set("X-Date", time.Now().UTC().Format(koodrive.XDateLayout))
		req.Header.Set("X-User-Id", "kd-user")
		req.Header.Set("Content-Type", "application/json")
		if err := koodrive.NewAppSignature(appID, appSecret).Sign(req, []byte(body)); err != nil {
			t.Fatal(err)
		}
		return req
	}
	send := func(req *http.Request) int {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := send(signed()); status != 200 {
		t.Fatalf("a correctly signed request got %d: %+v", status, sb.Rejections())
	}
	cases := map[string]func(*http.Request){
		"other query": func(r *http.Request) { r.URL.RawQuery = "x=2" },
		"query added": func(r *http.Request) { r.URL.RawQuery += "&y=" },
		"X-Date changed": func(r *http.Request) {
			r.Header.Set("X-Date", time.Now().UTC().Add(-time.Minute).Format(koodrive.XDateLayout))
		},
		"other host": func(r *http.Request) { r.Host = "kd.example" },
		"x-date not signed": func(r *http.Request) {
			replaceAuth(r, "SignedHeaders=host;x-date;x-user-id", "SignedHeaders=host;x-user-id")
		},
		"headers not sorted": func(r *http.Request) {
			replaceAuth(r, "SignedHeaders=host;x-date;x-user-id", "SignedHeaders=x-date;host;x-user-id")
		},
		"upper-case signature": func(r *http.Request) {
			auth := r.Header.Get("Authorization")
			i := strings.Index(auth, "Signature=") + len("Signature=")
			r.Header.Set("Authorization", auth[:i]+strings.ToUpper(auth[i:]))
		},
		"no AppId":       func(r *http.Request) { replaceAuth(r, "AppId="+appID+",", "") },
		"unknown scheme": func(r *http.Request) { replaceAuth(r, "HMAC-SHA256 ", "HMAC-SHA1 ") },
		"body changed":   func(r *http.Request) { setBody(r, `{"carrierUserId":"v","type":2,"packageId":"p"}`) },
	}
	for name, change := range cases {
		req := signed()
		change(req)
		if status := send(req); status != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, status)
		}
	}
	if n := len(sb.Notifications()); n != 1 {
		t.Fatalf("%d notifications accepted, want only the correctly signed one", n)
	}
}

func replaceAuth(r *http.Request, old, new string) {
	r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), old, new, 1))
}

func TestTokensDieAfterTheirSlidingLifetime(t *testing.T) {
	clk := sandbox.NewClock(time.Now().UTC().Truncate(time.Second))
	sb, url := startSandbox(t, sandbox.Options{TokenLifetime: 2 * time.Second, Now: clk.Now})
	token := sb.IssueToken()
	c := newClient(t, url, koodrive.NewStaticToken(token), clk.Now, nil, nil)
	ctx := context.Background()
	// Each call within the lifetime of the previous one keeps the token alive.
	for i := 0; i < 4; i++ {
		if err := c.NotifyPackageExpire(ctx, "u", "p"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		clk.Advance(1500 * time.Millisecond)
	}
	clk.Advance(time.Second) // 2.5 s idle
	err := c.NotifyPackageExpire(ctx, "u", "p")
	if !koodrive.IsUnauthorized(err) || !strings.Contains(err.Error(), "access token expired") || strings.Contains(err.Error(), token) {
		t.Fatalf("after the lifetime: %v", err)
	}
	// A static token has nothing to refresh: one 401, not retried.
	if rej := sb.Rejections(); len(rej) != 1 || rej[0].Status != 401 {
		t.Fatalf("rejections %+v", rej)
	}
	// A dead token stays dead.
	if err := c.NotifyPackageExpire(ctx, "u", "p"); !koodrive.IsUnauthorized(err) {
		t.Fatalf("dead token accepted: %v", err)
	}
}

// writeToken replaces the token file's content; with keepStamp it restores the previous
// modification time, as on a file system whose coarse times hide a rewrite of equal length.
func writeToken(t *testing.T, path, token string, keepStamp bool) {
	t.Helper()
	before, statErr := os.Stat(path)
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if keepStamp && statErr == nil {
		if err := os.Chtimes(path, before.ModTime(), before.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTokenFileRefreshedOn401AndRetriedOnce(t *testing.T) {
	clk := sandbox.NewClock(time.Now().UTC().Truncate(time.Second))
	sb, url := startSandbox(t, sandbox.Options{TokenLifetime: 2 * time.Second, Now: clk.Now})
	path := filepath.Join(t.TempDir(), "token")
	first := sb.IssueToken()
	writeToken(t, path, first, false)
	var o outcomes
	c := newClient(t, url, koodrive.NewTokenFile(path), clk.Now, &o, nil)
	ctx := context.Background()
	if err := c.NotifyPackageExpire(ctx, "u", "p"); err != nil {
		t.Fatal(err)
	}

	// Idle past the lifetime; the token's owner renews the file, but its metadata does
	// not show it, so only KooDrive's 401 makes kooflow read it again.
	clk.Advance(3 * time.Second)
	second := sb.IssueToken()
	if len(second) != len(first) {
		t.Fatal("tokens of different lengths: the file's size would show the change")
	}
	writeToken(t, path, second, true)
	if err := c.NotifyPackageExpire(ctx, "u", "p"); err != nil {
		t.Fatalf("after the refresh: %v", err)
	}
	rej := sb.Rejections()
	if len(rej) != 1 || rej[0].Status != 401 || !strings.Contains(rej[0].Reason, "expired") {
		t.Fatalf("rejections %+v, want exactly one 401 for the expired token", rej)
	}
	if n := len(sb.Notifications()); n != 2 {
		t.Fatalf("notifications %d", n)
	}
	if got := o.list(); strings.Join(got, ",") != "success,success" {
		t.Fatalf("outcomes %v: a call saved by the refresh is a success", got)
	}

	// A renewal the file's metadata shows is picked up before sending: no 401 at all.
	clk.Advance(3 * time.Second)
	writeToken(t, path, sb.IssueToken()+"-longer", false)
	if err := c.NotifyPackageExpire(ctx, "u", "p"); !koodrive.IsUnauthorized(err) {
		t.Fatalf("a token the sandbox never issued was accepted: %v", err)
	}
	third := sb.IssueToken()
	writeToken(t, path, third, false)
	before := len(sb.Rejections())
	if err := c.NotifyPackageExpire(ctx, "u", "p"); err != nil {
		t.Fatal(err)
	}
	if len(sb.Rejections()) != before {
		t.Fatalf("a visible renewal still cost a 401: %+v", sb.Rejections())
	}
}

func TestTokenFileThatStaysWrong(t *testing.T) {
	sb, url := startSandbox(t, sandbox.Options{})
	path := filepath.Join(t.TempDir(), "token")
	const wrong = "not-a-token-koodrive-issued"
	writeToken(t, path, wrong, false)
	var o outcomes
	c := newClient(t, url, koodrive.NewTokenFile(path), nil, &o, nil)
	err := c.NotifyPackageExpire(context.Background(), "u", "p")
	var kerr *koodrive.Error
	if !errors.As(err, &kerr) || !kerr.Unauthorized || !kerr.Retryable {
		t.Fatalf("err = %#v", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "KooDrive refused kooflow's credentials (access token from KOODRIVE_ACCESS_TOKEN_FILE "+path+")") ||
		strings.Contains(msg, wrong) {
		t.Fatalf("message %q", msg)
	}
	// Re-read after the 401, found unchanged: not sent again.
	if rej := sb.Rejections(); len(rej) != 1 {
		t.Fatalf("rejections %+v", rej)
	}
	if got := o.list(); len(got) != 1 || got[0] != koodrive.OutcomeAuthFailed {
		t.Fatalf("outcomes %v", got)
	}

	// A file that cannot be read is a credentials failure too, and nothing is sent.
	os.Remove(path)
	calls := sb.Calls()
	err = c.NotifyPackageExpire(context.Background(), "u", "p")
	if !koodrive.IsUnauthorized(err) || !koodrive.IsRetryable(err) || !strings.Contains(err.Error(), "no usable KooDrive credentials") ||
		!strings.Contains(err.Error(), path) {
		t.Fatalf("missing file: %v", err)
	}
	if sb.Calls() != calls || len(sb.Rejections()) != 1 {
		t.Fatal("a request went out without credentials")
	}
	writeToken(t, path, "", false)
	if err := c.NotifyPackageExpire(context.Background(), "u", "p"); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("empty file: %v", err)
	}
}
