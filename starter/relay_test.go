package starter_test

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
)

// unreachableTemporal is a real SDK client for a frontend address nothing listens on: every
// call fails as it does while Temporal is down. (Deliveries to a running Temporal are
// covered end to end in package e2e.)
func unreachableTemporal(t *testing.T) client.Client {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := client.NewLazyClient(client.Options{HostPort: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// queue is a real store holding one registered instance, with an intake that counts its
// nudges of the relay.
type queue struct {
	store  *store.Store
	intake *starter.Intake
	sub    store.Subscription
	nudges int
}

func newQueue(t *testing.T, dsn string) *queue {
	t.Helper()
	st := storetest.Open(t, dsn)
	ctx := context.Background()
	if _, err := st.UpsertSubscriptions(ctx, []store.Subscription{{InstanceID: "inst-1", CarrierUserID: "user-1", PackageID: "pkg-1",
		ExpireTime: time.Now().UTC().Truncate(time.Second)}}); err != nil {
		t.Fatal(err)
	}
	sub, err := st.SubscriptionByInstance(ctx, "inst-1")
	if err != nil {
		t.Fatal(err)
	}
	q := &queue{store: st, sub: sub}
	q.intake = &starter.Intake{Store: st, Nudge: func() { q.nudges++ }, NotifyWindow: 5 * time.Minute}
	return q
}

// acceptExpiry accepts inst-1's expiry as the webhook does.
func (q *queue) acceptExpiry(t *testing.T) store.Acceptance {
	t.Helper()
	v := starter.KooGalleryExpiry(q.sub, false, time.Now())
	acc, err := q.intake.AcceptExpiry(context.Background(), v, store.Delivery{Source: "koogallery", Activity: "expireInstance", Subject: "inst-1", Answer: "000000"}, "")
	if err != nil {
		t.Fatal(err)
	}
	return acc
}

// pending lists inst-1's pending intents as kind:attempts.
func (q *queue) pending(t *testing.T) []store.Intent {
	t.Helper()
	in, err := q.store.PendingIntents(context.Background(), "inst-1", 10)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestIntakeQueuesOnceAndWakesTheRelayOnce: a new expiry is committed with its workflow
// input (the intake's notify window filled in) and wakes the relay; a duplicate finds it
// and wakes nothing; an expiry the rule book ignores is refused without a commit.
func TestIntakeQueuesOnceAndWakesTheRelayOnce(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			q := newQueue(t, b.DSN(t))
			first := q.acceptExpiry(t)
			if first.Existing || q.nudges != 1 {
				t.Fatalf("first acceptance %+v after %d nudges", first, q.nudges)
			}
			if again := q.acceptExpiry(t); !again.Existing || again.WorkflowID != first.WorkflowID || q.nudges != 1 {
				t.Fatalf("duplicate %+v after %d nudges, want existing %s and no nudge", again, q.nudges, first.WorkflowID)
			}
			intents := q.pending(t)
			if len(intents) != 1 || intents[0].Kind != store.IntentStart || intents[0].WorkflowID != first.WorkflowID {
				t.Fatalf("pending intents = %+v", intents)
			}
			var in contract.ExpirationInput
			if err := json.Unmarshal(intents[0].Payload, &in); err != nil {
				t.Fatal(err)
			}
			if in.NotifyWindow != 5*time.Minute || in.SubscriptionID != q.sub.ID || in.CarrierUserID != "user-1" || in.Source != "koogallery" {
				t.Fatalf("queued input = %+v", in)
			}

			_, err := q.intake.AcceptExpiry(context.Background(), starter.Verdict{Ignored: "renewed"}, store.Delivery{}, "")
			if err == nil || !strings.Contains(err.Error(), "renewed") || len(q.pending(t)) != 1 {
				t.Fatalf("an ignored verdict: %v, %d pending", err, len(q.pending(t)))
			}
		})
	}
}

// TestIntakeStopWakesTheRelayOnlyWhenItQueuesOne: a stop that only cancels a start no
// relay touched queues nothing and wakes nothing; a stop for an expiry a relay already
// tried is queued and wakes the relay.
func TestIntakeStopWakesTheRelayOnlyWhenItQueuesOne(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, storetest.SQLiteDSN(t))
	acc := q.acceptExpiry(t)
	stop, err := q.intake.AcceptStop(ctx, starter.SourceKooGallery, "inst-1", store.StateRenewed, "renewal R1")
	if err != nil || stop.Queued || len(stop.Cancelled) != 1 || q.nudges != 1 {
		t.Fatalf("stop of an untouched start: %+v, %v, %d nudges", stop, err, q.nudges)
	}
	if exp, err := q.store.Expiration(ctx, acc.WorkflowID); err != nil || exp.State != store.StateRenewed {
		t.Fatalf("cancelled expiry = %+v, %v", exp, err)
	}

	q.sub.ExpireTime = q.sub.ExpireTime.Add(time.Second) // the next period
	second := q.acceptExpiry(t)
	if _, err := q.store.ClaimIntents(ctx, store.ClaimOptions{Owner: "another relay", Limit: 1, Lease: time.Hour}); err != nil {
		t.Fatal(err)
	}
	stop, err = q.intake.AcceptStop(ctx, starter.SourceKooGallery, "inst-1", store.StateReleased, "order released")
	if err != nil || !stop.Queued || len(stop.Cancelled) != 0 || q.nudges != 3 {
		t.Fatalf("stop of a claimed start %s: %+v, %v, %d nudges", second.WorkflowID, stop, err, q.nudges)
	}
}

// TestRelayDefersStartsWhileTemporalIsDown: a start that cannot reach Temporal stays
// pending with its error, is deferred (not claimed again at once), and is counted as
// failed; the stop queued behind it waits, so it is never delivered first.
func TestRelayDefersStartsWhileTemporalIsDown(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			q := newQueue(t, b.DSN(t))
			acc := q.acceptExpiry(t)
			var mu sync.Mutex
			var observed []string
			relay := &starter.Relay{Store: q.store, Client: unreachableTemporal(t), Owner: "test-relay", StartTimeout: time.Second,
				Observe: func(kind, outcome string) { mu.Lock(); observed = append(observed, kind+":"+outcome); mu.Unlock() }}

			before := time.Now()
			delivered, err := relay.DeliverSubject(ctx, "inst-1")
			if delivered != 0 || err == nil {
				t.Fatalf("delivered %d, error %v: want nothing delivered and Temporal's error", delivered, err)
			}
			intents := q.pending(t)
			// Deferred: available again only after a backoff counted from the failure, so
			// later than the pass began plus the relay's shortest backoff.
			if len(intents) != 1 || intents[0].Attempts != 1 || intents[0].LastError == "" || !intents[0].AvailableAt.After(before.Add(200*time.Millisecond)) {
				t.Fatalf("after the failed start (pass began %s): %+v, want it pending, tried once, with its error, deferred", before.UTC(), intents)
			}

			// A renewal now: the start was tried, so it may have reached Temporal and is not
			// cancelled; a stop is queued behind it.
			stop, err := q.intake.AcceptStop(ctx, starter.SourceKooGallery, "inst-1", store.StateRenewed, "renewal R1")
			if err != nil || !stop.Queued || len(stop.Cancelled) != 0 {
				t.Fatalf("stop = %+v, %v", stop, err)
			}
			// The backoff has passed; Temporal is still down. Whether the overtaken start
			// ever began cannot be known, so it is neither cancelled nor skipped: deferred
			// again, with the stop still behind it.
			if err := q.store.DeferIntent(ctx, intents[0].ID, intents[0].LastError, time.Now().Add(-time.Second)); err != nil {
				t.Fatal(err)
			}
			if delivered, err := relay.DeliverSubject(ctx, "inst-1"); delivered != 0 || err == nil || !strings.Contains(err.Error(), acc.WorkflowID) {
				t.Fatalf("second pass delivered %d, error %v: want the lookup of %s to fail", delivered, err, acc.WorkflowID)
			}
			intents = q.pending(t)
			if len(intents) != 2 || intents[0].Kind != store.IntentStart || intents[0].Attempts != 2 || intents[1].Kind != store.IntentStop || intents[1].Attempts != 0 {
				t.Fatalf("pending after the second pass = %+v, want the start tried twice and the stop untouched", intents)
			}
			if exp, err := q.store.Expiration(ctx, acc.WorkflowID); err != nil || exp.State != store.StateAccepted {
				t.Fatalf("expiry = %+v, %v; want still accepted", exp, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if got := strings.Join(observed, ","); got != "start:failed,start:failed" {
				t.Fatalf("observed %s", got)
			}
		})
	}
}
