package activities_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/koodrive/sandbox"
	"github.com/kooflow/kooflow/koodrive/sandbox/sandboxtest"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
)

const (
	// testWorkflowID is the workflow ID the SDK's test activity environment gives every
	// activity it runs: the expiration activities key their store rows by it.
	testWorkflowID = "default-test-workflow-id"
	// testRunID is the run ID it gives them: the reconciliation's files and run rows
	// are the run's.
	testRunID = "default-test-run-id"
)

// expirationWorld is a real store holding one subscription and its accepted expiry, and
// the KooDrive sandbox over HTTP, wired into the real expiration activities.
type expirationWorld struct {
	store *store.Store
	kd    *sandboxtest.KooDrive
	env   *testsuite.TestActivityEnvironment
	a     *activities.Expiration
	input contract.ExpirationInput
}

// newExpirationWorld opens a store on dsn with the subscription inst-1 (expiring now) and
// its expiry recorded under testWorkflowID, and the activities calling kd.
func newExpirationWorld(t *testing.T, dsn string, kd *sandboxtest.KooDrive) *expirationWorld {
	t.Helper()
	ctx := context.Background()
	st := storetest.Open(t, dsn)
	expire := time.Now().UTC().Truncate(time.Second)
	if _, err := st.UpsertSubscriptions(ctx, []store.Subscription{{InstanceID: "inst-1", CarrierUserID: "user-1", PackageID: "pkg-1", ExpireTime: expire}}); err != nil {
		t.Fatal(err)
	}
	sub, err := st.SubscriptionByInstance(ctx, "inst-1")
	if err != nil {
		t.Fatal(err)
	}
	in := contract.ExpirationInput{Source: "koogallery", Subject: "inst-1", Period: store.PeriodOf(sub), SubscriptionID: sub.ID,
		InstanceID: "inst-1", CarrierUserID: "user-1", PackageID: "pkg-1"}
	if _, err := st.RecordExpiration(ctx, store.Expiration{WorkflowID: testWorkflowID, Source: in.Source, Subject: in.Subject,
		Period: in.Period, SubscriptionID: sub.ID, CarrierUserID: in.CarrierUserID, PackageID: in.PackageID, State: store.StateNotifying}); err != nil {
		t.Fatal(err)
	}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	a := &activities.Expiration{Store: st, KooDrive: kd.Client}
	env.RegisterActivity(a)
	return &expirationWorld{store: st, kd: kd, env: env, a: a, input: in}
}

// notify runs NotifyKooDrive once.
func (w *expirationWorld) notify() (contract.NotifyResult, error) {
	v, err := w.env.ExecuteActivity(w.a.NotifyKooDrive, w.input)
	var res contract.NotifyResult
	if err != nil {
		return res, err
	}
	return res, v.Get(&res)
}

// record reads the expiry's store row.
func (w *expirationWorld) record(t *testing.T) store.Expiration {
	t.Helper()
	rec, err := w.store.Expiration(context.Background(), testWorkflowID)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// applicationError returns the ApplicationError err carries, failing the test if none.
func applicationError(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		t.Fatalf("error %v (%T) carries no ApplicationError", err, err)
	}
	return appErr
}

// failureAttempt decodes the NotifyFailure details of a NotifyKooDrive error.
func failureAttempt(t *testing.T, appErr *temporal.ApplicationError) int32 {
	t.Helper()
	var details contract.NotifyFailure
	if err := appErr.Details(&details); err != nil {
		t.Fatalf("NotifyFailure details: %v", err)
	}
	return details.Attempt
}

// TestNotifyKooDriveBusinessRejectionIsNotRetried: a non-success code from KooDrive is a
// non-retryable KooDriveRejected error with the attempt in its details, counted in the
// store with KooDrive's reason, and nothing is marked notified.
func TestNotifyKooDriveBusinessRejectionIsNotRetried(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			w := newExpirationWorld(t, b.DSN(t), sandboxtest.Start(t))
			w.kd.Sandbox.RejectWith("10020001", "not whitelisted")
			_, err := w.notify()
			appErr := applicationError(t, err)
			if appErr.Type() != contract.ErrTypeKooDriveRejected || !appErr.NonRetryable() {
				t.Fatalf("error type %q, non-retryable %v: want non-retryable %s (%v)", appErr.Type(), appErr.NonRetryable(), contract.ErrTypeKooDriveRejected, err)
			}
			if got := failureAttempt(t, appErr); got != 1 {
				t.Fatalf("NotifyFailure.Attempt = %d, want 1", got)
			}
			rec := w.record(t)
			if rec.Attempts != 1 || !strings.Contains(rec.LastError, "code 10020001: not whitelisted") || !rec.NotifiedAt.IsZero() {
				t.Fatalf("store row = %+v, want one attempt with KooDrive's reason and no notification", rec)
			}
			if n := w.kd.Sandbox.Notifications(); len(n) != 0 {
				t.Fatalf("KooDrive accepted %+v", n)
			}
		})
	}
}

// TestNotifyKooDriveOutageIsRetriedAsBenign: 5xx answers are retryable
// KooDriveUnavailable errors in the benign category (the SDK does not log them as
// errors), with no delay of their own; the next attempt that gets through notifies once.
func TestNotifyKooDriveOutageIsRetriedAsBenign(t *testing.T) {
	for _, status := range []int{500, 502, 503, 504} {
		t.Run(fmt.Sprintf("HTTP %d", status), func(t *testing.T) {
			w := newExpirationWorld(t, storetest.SQLiteDSN(t), sandboxtest.Start(t))
			w.kd.Sandbox.FailNext(1, status)
			_, err := w.notify()
			appErr := applicationError(t, err)
			if appErr.Type() != contract.ErrTypeKooDriveUnavailable || appErr.NonRetryable() {
				t.Fatalf("error type %q, non-retryable %v: want retryable %s (%v)", appErr.Type(), appErr.NonRetryable(), contract.ErrTypeKooDriveUnavailable, err)
			}
			if appErr.Category() != temporal.ApplicationErrorCategoryBenign {
				t.Fatalf("category = %v, want benign", appErr.Category())
			}
			if appErr.NextRetryDelay() != 0 {
				t.Fatalf("NextRetryDelay = %s without a Retry-After", appErr.NextRetryDelay())
			}
			if got := failureAttempt(t, appErr); got != 1 {
				t.Fatalf("NotifyFailure.Attempt = %d, want 1", got)
			}
			if rec := w.record(t); rec.Attempts != 1 || !strings.Contains(rec.LastError, fmt.Sprintf("HTTP %d", status)) {
				t.Fatalf("store row after the outage = %+v", rec)
			}

			res, err := w.notify()
			if err != nil || res.AlreadyNotified {
				t.Fatalf("after the outage: %+v, %v", res, err)
			}
			rec := w.record(t)
			if rec.Attempts != 2 || rec.LastError != "" || rec.NotifiedAt.IsZero() {
				t.Fatalf("store row after the notification = %+v", rec)
			}
			if n := w.kd.Sandbox.Notifications(); len(n) != 1 || n[0].CarrierUserID != "user-1" || n[0].PackageID != "pkg-1" {
				t.Fatalf("KooDrive notifications = %+v, want one for user-1/pkg-1", n)
			}
		})
	}
}

// TestNotifyKooDriveRefusedCredentialsAreRetriedNamingTheCause: a 401 is retried like an
// outage (credentials get fixed within the hour), and the message — the stall reason
// operators read — starts with the cause, not with what kooflow was doing.
func TestNotifyKooDriveRefusedCredentialsAreRetriedNamingTheCause(t *testing.T) {
	kd := sandboxtest.StartWith(t, sandbox.Options{AccessToken: sandboxtest.AccessToken, UserID: sandboxtest.UserID}, koodrive.Config{AccessToken: "revoked-token"})
	w := newExpirationWorld(t, storetest.SQLiteDSN(t), kd)
	_, err := w.notify()
	appErr := applicationError(t, err)
	if appErr.Type() != contract.ErrTypeKooDriveUnavailable || appErr.NonRetryable() {
		t.Fatalf("error type %q, non-retryable %v: want retryable %s (%v)", appErr.Type(), appErr.NonRetryable(), contract.ErrTypeKooDriveUnavailable, err)
	}
	if !strings.HasPrefix(appErr.Message(), koodrive.UnauthorizedReason) || !strings.Contains(appErr.Message(), "notifying KooDrive for inst-1") {
		t.Fatalf("message %q: want it to start with %q and name the expiry", appErr.Message(), koodrive.UnauthorizedReason)
	}
	if strings.Contains(appErr.Message(), "revoked-token") {
		t.Fatalf("message %q shows the token", appErr.Message())
	}
	if rec := w.record(t); !strings.HasPrefix(rec.LastError, koodrive.UnauthorizedReason) {
		t.Fatalf("store last error %q does not start with the cause", rec.LastError)
	}
}

// TestNotifyKooDriveHonoursRetryAfterUpToTenMinutes: KooDrive's Retry-After becomes the
// delay before the next attempt, but never more than ten minutes of the hour.
func TestNotifyKooDriveHonoursRetryAfterUpToTenMinutes(t *testing.T) {
	for _, c := range []struct {
		retryAfter, want time.Duration
	}{
		{90 * time.Second, 90 * time.Second},
		{10 * time.Minute, 10 * time.Minute},
		{2 * time.Hour, 10 * time.Minute},
	} {
		t.Run(c.retryAfter.String(), func(t *testing.T) {
			w := newExpirationWorld(t, storetest.SQLiteDSN(t), sandboxtest.Start(t))
			w.kd.Sandbox.Throttle(1, c.retryAfter)
			_, err := w.notify()
			appErr := applicationError(t, err)
			if appErr.Type() != contract.ErrTypeKooDriveUnavailable || appErr.NonRetryable() {
				t.Fatalf("error type %q, non-retryable %v (%v)", appErr.Type(), appErr.NonRetryable(), err)
			}
			if appErr.NextRetryDelay() != c.want {
				t.Fatalf("NextRetryDelay = %s for Retry-After %s, want %s", appErr.NextRetryDelay(), c.retryAfter, c.want)
			}
		})
	}
}

// TestNotifyKooDriveAlreadyNotifiedSendsNothing: an attempt that finds the store's
// notified_at set (a retry after KooDrive accepted, or a replayed round) does not call
// KooDrive again.
func TestNotifyKooDriveAlreadyNotifiedSendsNothing(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			w := newExpirationWorld(t, b.DSN(t), sandboxtest.Start(t))
			if err := w.store.MarkNotified(context.Background(), testWorkflowID); err != nil {
				t.Fatal(err)
			}
			res, err := w.notify()
			if err != nil || !res.AlreadyNotified {
				t.Fatalf("result %+v, %v: want AlreadyNotified", res, err)
			}
			if calls := w.kd.Sandbox.Calls(); calls != 0 {
				t.Fatalf("KooDrive was called %d times", calls)
			}
			if rec := w.record(t); rec.Attempts != 0 {
				t.Fatalf("store counted %d attempts for no call", rec.Attempts)
			}
		})
	}
}

// TestCheckExpiryStillDue asks the rule book against the registry as it is when the
// workflow runs: a renewal or release since the expiry was accepted overtakes it.
func TestCheckExpiryStillDue(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name      string
		source    string
		expire    time.Duration // from now
		released  bool
		imported  time.Duration // a registry import's new expiry, from now
		overtaken string
	}{
		{name: "due", source: "koogallery"},
		// A conflict an operator ran, or a registry date imported after the expiry was
		// accepted: only KooGallery's renewal or release overtakes an accepted expiry.
		{name: "registry date alone", source: "koogallery", imported: 4 * 365 * 24 * time.Hour},
		{name: "renewed", source: "koogallery", expire: 30 * 24 * time.Hour, overtaken: contract.StateRenewed},
		{name: "released", source: "koogallery", released: true, overtaken: contract.StateReleased},
		{name: "smarthub due although the registry runs on", source: "smarthub", expire: 30 * 24 * time.Hour},
		{name: "smarthub released", source: "smarthub", released: true, overtaken: contract.StateReleased},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newExpirationWorld(t, storetest.SQLiteDSN(t), sandboxtest.Start(t))
			sub, err := w.store.Subscription(ctx, w.input.SubscriptionID)
			if err != nil {
				t.Fatal(err)
			}
			if c.expire != 0 {
				if _, err := w.store.Renew(ctx, sub.ID, time.Now().Add(c.expire), "renewal-1", time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			if c.imported != 0 {
				sub.ExpireTime = time.Now().Add(c.imported)
				if _, err := w.store.UpsertSubscriptions(ctx, []store.Subscription{sub}); err != nil {
					t.Fatal(err)
				}
			}
			if c.released {
				if _, err := w.store.SetStatus(ctx, sub.ID, store.StatusReleased, "order released"); err != nil {
					t.Fatal(err)
				}
			}
			w.input.Source = c.source
			v, err := w.env.ExecuteActivity(w.a.CheckExpiryStillDue, w.input)
			if err != nil {
				t.Fatal(err)
			}
			var got contract.StillDue
			if err := v.Get(&got); err != nil {
				t.Fatal(err)
			}
			if got.Due != (c.overtaken == "") || got.Overtaken != c.overtaken || (c.overtaken != "" && got.Reason == "") {
				t.Fatalf("StillDue = %+v, want overtaken %q", got, c.overtaken)
			}
		})
	}
}

// TestCheckExpiryStillDueUnknownSubscriptionIsNotRetried: a subscription missing from the
// registry will not appear by retrying.
func TestCheckExpiryStillDueUnknownSubscriptionIsNotRetried(t *testing.T) {
	w := newExpirationWorld(t, storetest.SQLiteDSN(t), sandboxtest.Start(t))
	w.input.SubscriptionID = 999999
	_, err := w.env.ExecuteActivity(w.a.CheckExpiryStillDue, w.input)
	appErr := applicationError(t, err)
	if appErr.Type() != "SubscriptionNotFound" || !appErr.NonRetryable() {
		t.Fatalf("error type %q, non-retryable %v: %v", appErr.Type(), appErr.NonRetryable(), err)
	}
}
