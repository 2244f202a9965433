package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

// nonceWriter is a group member that inserts nonce and records the transaction it ran in.
func nonceWriter(s *Store, nonce string, fail error, ran *[]*sql.Tx, mu *sync.Mutex) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		mu.Lock()
		*ran = append(*ran, tx)
		mu.Unlock()
		if _, err := s.exec(ctx, tx, "INSERT INTO koogallery_nonces (nonce, seen_at) VALUES (?, ?)", nonce, s.stamp()); err != nil {
			return err
		}
		return fail
	}
}

func nonces(t *testing.T, s *Store) map[string]int {
	t.Helper()
	rows, err := s.db.Query("SELECT nonce FROM koogallery_nonces")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[string]int{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		seen[n]++
	}
	return seen
}

func openGroupStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "kooflow.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if s.commits == nil {
		t.Fatal("a SQLite store has no group committer")
	}
	return s
}

func group(members ...func(context.Context, *sql.Tx) error) []*groupWork {
	var g []*groupWork
	for _, fn := range members {
		g = append(g, &groupWork{ctx: context.Background(), fn: fn, done: make(chan error, 1)})
	}
	return g
}

func TestGroupCommitSharesOneTransaction(t *testing.T) {
	s := openGroupStore(t)
	var ran []*sql.Tx
	var mu sync.Mutex
	g := group(nonceWriter(s, "a", nil, &ran, &mu), nonceWriter(s, "b", nil, &ran, &mu), nonceWriter(s, "c", nil, &ran, &mu))
	s.commits.commit(g)
	for i, w := range g {
		if err := <-w.done; err != nil {
			t.Errorf("member %d: %v", i, err)
		}
	}
	if len(ran) != 3 || ran[0] != ran[1] || ran[1] != ran[2] {
		t.Errorf("members ran %d times in transactions %v; want 3 runs in one transaction", len(ran), ran)
	}
	if got := nonces(t, s); len(got) != 3 || got["a"] != 1 || got["b"] != 1 || got["c"] != 1 {
		t.Errorf("committed nonces %v, want a, b and c once", got)
	}
}

func TestGroupCommitFailureIsItsMembersAlone(t *testing.T) {
	s := openGroupStore(t)
	refused := errors.New("refused by its rule")
	var ran []*sql.Tx
	var mu sync.Mutex
	g := group(nonceWriter(s, "a", nil, &ran, &mu), nonceWriter(s, "b", refused, &ran, &mu), nonceWriter(s, "c", nil, &ran, &mu))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	g = append(g, &groupWork{ctx: cancelled, fn: nonceWriter(s, "d", nil, &ran, &mu), done: make(chan error, 1)})
	s.commits.commit(g)
	want := []error{nil, refused, nil, context.Canceled}
	for i, w := range g {
		if err := <-w.done; !errors.Is(err, want[i]) || (want[i] == nil && err != nil) {
			t.Errorf("member %d answered %v, want %v", i, err, want[i])
		}
	}
	// a and b ran together first; then a, b and c each alone (d's context was done).
	if len(ran) != 5 || ran[0] != ran[1] || ran[2] == ran[3] || ran[3] == ran[4] {
		t.Errorf("members ran in transactions %v; want a and b in one, then a, b, c in one each", ran)
	}
	if got := nonces(t, s); len(got) != 2 || got["a"] != 1 || got["c"] != 1 {
		t.Errorf("committed nonces %v, want a and c once, nothing of the refused b or the cancelled d", got)
	}
}

// TestGroupCommitUnderConcurrentIntake accepts expiries from many goroutines at once, as
// the webhook does in a burst: every one is answered accepted and committed once.
func TestGroupCommitUnderConcurrentIntake(t *testing.T) {
	s := openGroupStore(t)
	ctx := context.Background()
	const n = 200
	var subs []Subscription
	for i := range n {
		subs = append(subs, Subscription{InstanceID: fmt.Sprintf("i-%03d", i), CarrierUserID: "u", PackageID: "p"})
	}
	if _, err := s.UpsertSubscriptions(ctx, subs); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("i-%03d", i)
			var subscription int64
			if err := s.db.QueryRow("SELECT id FROM subscriptions WHERE instance_id = ?", id).Scan(&subscription); err != nil {
				errs <- err
				return
			}
			acc, err := s.AcceptExpiry(ctx, ExpiryIntent{
				Expiration: Expiration{WorkflowID: "expire/koogallery/" + id + "/current", Source: "koogallery", Subject: id, Period: "current",
					SubscriptionID: subscription, CarrierUserID: "u", PackageID: "p"},
				Input:    []byte(`{}`),
				Delivery: Delivery{Source: "koogallery", Activity: "expireInstance", Subject: id},
			})
			if err == nil && (acc.Existing || acc.State != StateAccepted) {
				err = fmt.Errorf("%s answered %+v, want a new accepted expiry", id, acc)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for table, want := range map[string]int{"expirations": n, "intake_intents": n, "deliveries": n} {
		var got int
		if err := s.db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s has %d rows, want %d", table, got, want)
		}
	}
}
