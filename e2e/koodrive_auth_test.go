package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/devapp"
	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/koodrive/sandbox"
	"github.com/kooflow/kooflow/koogallery"
	"github.com/kooflow/kooflow/store"
)

// authWindow shortens the one-hour rule so a credentials failure stalls within seconds;
// the backoff is capped at a sixtieth of it (at least a second), as a minute is of an hour.
const authWindow = 6 * time.Second

// authSandbox serves a KooDrive sandbox of the test's own (the harness's one accepts only
// the static e2e token).
func authSandbox(t *testing.T, opts sandbox.Options) (*sandbox.Sandbox, string) {
	t.Helper()
	opts.UserID = kooDriveUser
	sb := sandbox.New(opts)
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	return sb, srv.URL
}

// authExpire delivers a KooGallery expiry and returns its workflow ID.
func authExpire(e *env, instance string) string {
	e.t.Helper()
	if a := e.expire(instance, nil); a.Result.ResultCode != koogallery.Success {
		e.t.Fatalf("delivery for %s: %+v", instance, a)
	}
	return "expire/koogallery/" + instance + "/current"
}

// workflowDetails reads what the Temporal UI shows as the workflow's current details.
func workflowDetails(t *testing.T, c client.Client, workflowID string) string {
	t.Helper()
	v, err := c.QueryWorkflow(context.Background(), workflowID, "", "__temporal_workflow_metadata")
	if err != nil {
		t.Fatalf("query the details of %s: %v", workflowID, err)
	}
	var md sdkpb.WorkflowMetadata
	if err := v.Get(&md); err != nil {
		t.Fatal(err)
	}
	return md.GetCurrentDetails()
}

// authFailedCount scrapes kooflow_koodrive_requests_total{outcome="auth_failed"} for the
// notify endpoint.
func authFailedCount(t *testing.T, metricsURL string) int {
	t.Helper()
	resp, err := http.Get(metricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	re := regexp.MustCompile(`(?m)^kooflow_koodrive_requests_total\{endpoint="` + regexp.QuoteMeta(koodrive.NotifyPackageExpirePath) + `",outcome="auth_failed"\} (\d+)`)
	m := re.FindSubmatch(body)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// tokenOwner plays the process that keeps kooflow's token file fresh (a sidecar): it
// writes a newly issued token at once, then every 500 ms — always well inside the 2-second
// lifetime — overwriting it in place and putting the file's modification time back, as an
// equal-length rewrite looks on a file system with coarse times. kooflow cannot see those
// renewals; only KooDrive's 401 makes it read the file again.
type tokenOwner struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	all  []string
}

func startTokenOwner(t *testing.T, kd *sandbox.Sandbox, path string) *tokenOwner {
	t.Helper()
	o := &tokenOwner{stop: make(chan struct{}), done: make(chan struct{})}
	o.all = append(o.all, kd.IssueToken())
	if err := os.WriteFile(path, []byte(o.all[0]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stamp, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(o.done)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-o.stop:
				return
			case <-tick.C:
			}
			token := kd.IssueToken()
			o.mu.Lock()
			o.all = append(o.all, token)
			o.mu.Unlock()
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err == nil {
				_, err = f.WriteAt([]byte(token+"\n"), 0) // same length: never empty, never truncated
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
			if err == nil {
				err = os.Chtimes(path, stamp.ModTime(), stamp.ModTime())
			}
			if err != nil {
				t.Errorf("renew the token file: %v", err)
				return
			}
		}
	}()
	t.Cleanup(o.halt)
	return o
}

// halt stops the renewals.
func (o *tokenOwner) halt() {
	select {
	case <-o.stop:
	default:
		close(o.stop)
	}
	<-o.done
}

// tokens returns every token the owner wrote.
func (o *tokenOwner) tokens() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.all...)
}

// TestKooDriveTokenModeEndToEnd runs kooflow in token mode against a KooDrive whose tokens
// die 2 seconds after their last use, with the token in a file the test keeps fresh.
func TestKooDriveTokenModeEndToEnd(t *testing.T) {
	kd, kdURL := authSandbox(t, sandbox.Options{TokenLifetime: 2 * time.Second})
	tokenFile := filepath.Join(t.TempDir(), "koodrive-token")
	owner := startTokenOwner(t, kd, tokenFile)
	e := newEnvWith(t, func(o *devapp.Options) {
		o.KooDriveURL, o.KooDriveAuth, o.NotifyWindow = kdURL, koodrive.NewTokenFile(tokenFile), authWindow
	})
	e.importSubscriptions(
		store.Subscription{InstanceID: "tok-a", CarrierUserID: "u-tok-a", PackageID: "p"},
		store.Subscription{InstanceID: "tok-b", CarrierUserID: "u-tok-b", PackageID: "p"},
		store.Subscription{InstanceID: "tok-c", CarrierUserID: "u-tok-c", PackageID: "p"},
	)
	e.waitState(authExpire(e, "tok-a"), store.StateReserved, 30*time.Second)
	if refused := kd.Rejections(); len(refused) != 0 {
		t.Fatalf("KooDrive refused %+v", refused)
	}

	// The worker sits idle past its token's lifetime; its next call meets a 401, re-reads
	// the file and is sent again within the same attempt.
	time.Sleep(3 * time.Second)
	rec := e.waitState(authExpire(e, "tok-b"), store.StateReserved, 30*time.Second)
	if rec.Attempts != 1 || rec.LastError != "" {
		t.Fatalf("tok-b: %+v, want reserved at its first attempt", rec)
	}
	refused := kd.Rejections()
	if len(refused) != 1 || refused[0].Status != http.StatusUnauthorized || !strings.Contains(refused[0].Reason, "expired") {
		t.Fatalf("KooDrive refused %+v, want exactly one call, with the expired token", refused)
	}
	if n := authFailedCount(t, e.app.MetricsURL); n != 0 {
		t.Fatalf("auth_failed counted %d for a call the refresh saved", n)
	}
	owner.halt()

	// A token source that stays wrong: the expiration stalls, saying why.
	const wrongToken = "sbx-this-token-was-never-issued-by-koodrive"
	if err := os.WriteFile(tokenFile, []byte(wrongToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	id := authExpire(e, "tok-c")
	stalled := e.waitState(id, store.StateStalled, 60*time.Second)
	if !strings.Contains(stalled.LastError, "KooDrive refused kooflow's credentials") || stalled.Attempts < 2 {
		t.Fatalf("stalled record %+v, want the credentials reason after retries", stalled)
	}
	if details := workflowDetails(t, e.app.Client, id); !strings.Contains(details, "KooDrive refused kooflow's credentials") ||
		!strings.Contains(details, "kooflow retry "+id) {
		t.Fatalf("Temporal UI details:\n%s", details)
	}
	if n := authFailedCount(t, e.app.MetricsURL); n < 2 {
		t.Fatalf("auth_failed counted %d", n)
	}

	// The token's owner is back; the operator retries.
	fixed := startTokenOwner(t, kd, tokenFile)
	if err := e.app.Starter.Retry(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	e.waitState(id, store.StateReserved, 30*time.Second)
	fixed.halt()
	for _, user := range []string{"u-tok-a", "u-tok-b", "u-tok-c"} {
		if n := authNotificationsFor(kd, user); n != 1 {
			t.Fatalf("%s notified %d times", user, n)
		}
	}
	assertNoSecretIn(t, e, append(append(owner.tokens(), fixed.tokens()...), wrongToken)...)
}

// switchableSigner lets the test give kooflow a wrong app secret and then the right one.
type switchableSigner struct {
	mu      sync.Mutex
	current koodrive.Signer
}

func (s *switchableSigner) Sign(req *http.Request, body []byte) error {
	s.mu.Lock()
	signer := s.current
	s.mu.Unlock()
	return signer.Sign(req, body)
}

// String describes the signer in use, as kooflow's own signers do.
func (s *switchableSigner) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprint(s.current)
}

func (s *switchableSigner) use(signer koodrive.Signer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.current = signer
}

// TestKooDriveAppModeEndToEnd runs kooflow with §7 app signatures: an expiration is
// notified, the reconciliation reads the service status and uploads its statement, and the
// sandbox verifies every signature; with a wrong secret every call is refused and the
// expiration stalls with the credentials reason until the secret is fixed and retried.
func TestKooDriveAppModeEndToEnd(t *testing.T) {
	const appID, appSecret, wrongSecret = "kooflow-e2e-app", "e2e-app-secret-0123456789", "e2e-wrong-secret-9876543210"
	kd, kdURL := authSandbox(t, sandbox.Options{Apps: map[string]string{appID: appSecret}})
	signer := &switchableSigner{current: koodrive.NewAppSignature(appID, appSecret)}
	e := newEnvWith(t, func(o *devapp.Options) {
		o.KooDriveURL, o.KooDriveAuth, o.NotifyWindow = kdURL, signer, authWindow
	})
	ctx := context.Background()
	cycle := contract.PreviousCycle(time.Now().UTC())
	cycleStart, _, _ := contract.CycleBounds(cycle)
	e.importSubscriptions(
		store.Subscription{InstanceID: "app-a", CarrierUserID: "u-app-a", PackageID: "p"},
		store.Subscription{InstanceID: "app-b", CarrierUserID: "u-app-b", PackageID: "p"},
		// Active during the last cycle, so the statement has a row of it.
		store.Subscription{InstanceID: "app-r", CarrierUserID: "u-app-r", PackageID: "p", CarrierOrderID: "CO-R",
			CarrierOrderTime: "2020-01-01T00:00:00Z", ExpireTime: cycleStart.AddDate(0, 2, 0)},
	)
	e.waitState(authExpire(e, "app-a"), store.StateReserved, 30*time.Second)

	run, err := e.app.Starter.StartReconciliation(ctx, contract.ReconciliationInput{Cycle: cycle, PollInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var res contract.ReconciliationResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("reconciliation: %v", err)
	}
	if !res.Uploaded || res.StatementRows < 1 || len(kd.Uploads()) != 1 {
		t.Fatalf("reconciliation %+v, uploads %+v", res, kd.Uploads())
	}
	// notify + service status + upload + at least one page of discrepancies, each signed.
	verified := kd.Verified()
	if verified.AppSignatures < 4 || verified.Tokens != 0 || len(kd.Rejections()) != 0 {
		t.Fatalf("verified %+v, rejections %+v", verified, kd.Rejections())
	}

	signer.use(koodrive.NewAppSignature(appID, wrongSecret))
	id := authExpire(e, "app-b")
	stalled := e.waitState(id, store.StateStalled, 60*time.Second)
	if !strings.Contains(stalled.LastError, "KooDrive refused kooflow's credentials (app signature (KOODRIVE_APP_ID "+appID+"))") {
		t.Fatalf("stalled record %+v", stalled)
	}
	refused := kd.Rejections()
	if len(refused) < 2 {
		t.Fatalf("refused %d calls, want every retry refused", len(refused))
	}
	for _, r := range refused {
		if r.Status != http.StatusUnauthorized || !strings.Contains(r.Reason, "app signature does not match") {
			t.Fatalf("refusal %+v", r)
		}
	}
	if n := authNotificationsFor(kd, "u-app-b"); n != 0 {
		t.Fatalf("a badly signed notification was accepted")
	}
	if details := workflowDetails(t, e.app.Client, id); !strings.Contains(details, "KooDrive refused kooflow's credentials") {
		t.Fatalf("Temporal UI details:\n%s", details)
	}

	signer.use(koodrive.NewAppSignature(appID, appSecret))
	if err := e.app.Starter.Retry(ctx, id); err != nil {
		t.Fatal(err)
	}
	e.waitState(id, store.StateReserved, 30*time.Second)
	if n := authNotificationsFor(kd, "u-app-b"); n != 1 {
		t.Fatalf("u-app-b notified %d times", n)
	}
	assertNoSecretIn(t, e, appSecret, wrongSecret)
}

func authNotificationsFor(kd *sandbox.Sandbox, user string) int {
	n := 0
	for _, x := range kd.Notifications() {
		if x.CarrierUserID == user {
			n++
		}
	}
	return n
}

// assertNoSecretIn checks the logs and the store's expiration rows for secrets.
func assertNoSecretIn(t *testing.T, e *env, secrets ...string) {
	t.Helper()
	exps, err := e.app.Store.Expirations(context.Background(), store.ExpirationFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	logs := e.logs.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Fatalf("a secret is in the logs")
		}
		for _, x := range exps {
			if strings.Contains(x.LastError, s) {
				t.Fatalf("a secret is in the store: %s", x.WorkflowID)
			}
		}
	}
}
