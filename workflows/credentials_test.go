package workflows_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/koodrive/sandbox"
	"github.com/kooflow/kooflow/koodrive/sandbox/sandboxtest"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
	kooworker "github.com/kooflow/kooflow/worker"
)

// tokenWorld is a worker's surroundings in token mode: a store, a sandbox KooDrive whose
// tokens live 2 seconds after their last use, and a token file the worker reads.
type tokenWorld struct {
	store     *store.Store
	kd        *sandbox.Sandbox
	clock     *sandbox.Clock
	tokenFile string
	client    *koodrive.Client
}

func newTokenWorld(t *testing.T) *tokenWorld {
	t.Helper()
	w := &tokenWorld{store: storetest.OpenSQLite(t), clock: sandbox.NewClock(time.Now().UTC().Truncate(time.Second))}
	w.tokenFile = filepath.Join(t.TempDir(), "koodrive-token")
	kd := sandboxtest.StartWith(t, sandbox.Options{UserID: "kd", TokenLifetime: 2 * time.Second, Now: w.clock.Now},
		koodrive.Config{Auth: koodrive.NewTokenFile(w.tokenFile), Now: w.clock.Now})
	w.kd, w.client = kd.Sandbox, kd.Client
	return w
}

// writeToken puts token in the file. With sameStamp the file keeps its modification time
// (tokens all have one length), as a rewrite looks on a file system with coarse times:
// only KooDrive's 401 then tells the worker to read it again.
func (w *tokenWorld) writeToken(t *testing.T, token string, sameStamp bool) {
	t.Helper()
	before, statErr := os.Stat(w.tokenFile)
	if err := os.WriteFile(w.tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if sameStamp && statErr == nil {
		if err := os.Chtimes(w.tokenFile, before.ModTime(), before.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
}

// expiration runs in a fresh test environment against the world's store and KooDrive.
func (w *tokenWorld) expiration(t *testing.T, instance string) *fixture {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "expire/koogallery/" + instance + "/20261031160000"})
	ctx := context.Background()
	if _, err := w.store.UpsertSubscriptions(ctx, []store.Subscription{{InstanceID: instance, CarrierUserID: "user-1", PackageID: "pkg-1",
		ExpireTime: time.Date(2026, 10, 31, 16, 0, 0, 0, time.UTC)}}); err != nil {
		t.Fatal(err)
	}
	sub, err := w.store.SubscriptionByInstance(ctx, instance)
	if err != nil {
		t.Fatal(err)
	}
	kooworker.Register(env, kooworker.Dependencies{Expiration: &activities.Expiration{Store: w.store, KooDrive: w.client}})
	return &fixture{env: env, store: w.store, kd: w.kd, input: contract.ExpirationInput{
		Source: "koogallery", Subject: instance, Period: "20261031160000", SubscriptionID: sub.ID,
		InstanceID: instance, CarrierUserID: "user-1", PackageID: "pkg-1",
	}}
}

// TestIdleWorkerOutlivesItsTokenAndStillNotifies: a worker idle for longer than the token's
// lifetime meets a 401 on its next call, re-reads the token file, and notifies within the
// same activity attempt — no stall, no backoff, exactly one refused call.
func TestIdleWorkerOutlivesItsTokenAndStillNotifies(t *testing.T) {
	w := newTokenWorld(t)
	w.writeToken(t, w.kd.IssueToken(), false)
	if status := w.expiration(t, "inst-1").run(t); status.State != store.StateReserved || status.Attempts != 1 {
		t.Fatalf("first expiration: %+v", status)
	}

	w.clock.Advance(3 * time.Second) // idle past the 2 s lifetime: the token is dead
	w.writeToken(t, w.kd.IssueToken(), true)

	second := w.expiration(t, "inst-2")
	status := second.run(t)
	if status.State != store.StateReserved || status.Attempts != 1 || status.Rounds != 1 {
		t.Fatalf("second expiration: %+v, want reserved at the first activity attempt", status)
	}
	rej := w.kd.Rejections()
	if len(rej) != 1 || rej[0].Status != 401 || !strings.Contains(rej[0].Reason, "expired") {
		t.Fatalf("KooDrive refused %+v, want exactly one call with the expired token", rej)
	}
	if n := len(w.kd.Notifications()); n != 2 {
		t.Fatalf("KooDrive accepted %d notifications, want 2", n)
	}
	rec, _ := w.store.Expiration(context.Background(), "expire/koogallery/inst-2/20261031160000")
	if rec.State != store.StateReserved || rec.Attempts != 1 || rec.LastError != "" {
		t.Fatalf("store record %+v", rec)
	}
}

// TestWrongTokenStallsWithTheCredentialsReasonThenRetryReserves: a token source that stays
// wrong is retried for the hour and stalls with "KooDrive refused kooflow's credentials";
// once the file holds a good token, the operator's retry reserves it.
func TestWrongTokenStallsWithTheCredentialsReasonThenRetryReserves(t *testing.T) {
	w := newTokenWorld(t)
	const wrong = "sbx-a-token-koodrive-never-issued"
	w.writeToken(t, wrong, false)
	f := w.expiration(t, "inst-1")
	var stalled contract.ExpirationStatus
	var rec store.Expiration
	f.env.RegisterDelayedCallback(func() {
		stalled = f.query(t)
		rec, _ = f.store.Expiration(context.Background(), workflowID)
		w.writeToken(t, w.kd.IssueToken(), false)
		f.env.SignalWorkflow(contract.SignalRetry, nil)
	}, 2*time.Hour)
	status := f.run(t)

	if stalled.State != store.StateStalled || !strings.Contains(stalled.LastError, "KooDrive refused kooflow's credentials") || stalled.Attempts < 10 {
		t.Fatalf("before the retry: %+v, want stalled on refused credentials after many attempts", stalled)
	}
	if rec.State != store.StateStalled || !strings.Contains(rec.LastError, "KooDrive refused kooflow's credentials") {
		t.Fatalf("store before the retry: %+v", rec)
	}
	for _, s := range []string{stalled.LastError, rec.LastError} {
		if strings.Contains(s, wrong) {
			t.Fatalf("the token leaked into %q", s)
		}
	}
	if status.State != store.StateReserved || status.Rounds != 2 {
		t.Fatalf("after the retry: %+v", status)
	}
	f.assertNotifiedOnce(t)
}
