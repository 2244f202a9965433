package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/store"
)

const notifyPath = "/koodrive/ose/v1/carrier/users/notifyPackageExpire"

// oneCall sums up a single call to notifyPath with outcome at at; answered says whether
// KooDrive answered it (success, rejected).
func oneCall(outcome string, at time.Time, answered bool, failure store.KooDriveFailure) store.KooDriveCalls {
	c := store.KooDriveCalls{KooDriveHealth: store.KooDriveHealth{Endpoint: notifyPath, LastOutcome: outcome, LastCallAt: at}, Answered: answered}
	if outcome == "success" {
		c.LastSuccessAt = at
	} else {
		failure.At, failure.Outcome = at, outcome
		c.LastFailure = failure
	}
	if !answered {
		c.Unanswered, c.UnansweredSince = 1, at
	}
	return c
}

func readHealth(t *testing.T, s *store.Store) []store.KooDriveHealth {
	t.Helper()
	health, err := s.KooDriveHealth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return health
}

// TestKooDriveHealthFollowsTheCalls: an endpoint's row keeps the newest call, the last
// success and the last failure with what KooDrive answered, and counts the unanswered
// calls since the last answer; an answer, even a rejection, ends the count.
func TestKooDriveHealthFollowsTheCalls(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if got := readHealth(t, s); len(got) != 0 {
			t.Fatalf("before any call: %+v", got)
		}
		t0 := time.Date(2026, 10, 31, 12, 0, 0, 0, time.UTC)
		busy := store.KooDriveFailure{HTTPStatus: 503, Code: "503", Message: "service busy"}
		refused := store.KooDriveFailure{HTTPStatus: 401, Code: "401", Message: "token expired"}
		steps := []struct {
			call store.KooDriveCalls
			want store.KooDriveHealth
		}{
			{oneCall("success", t0, true, store.KooDriveFailure{}),
				store.KooDriveHealth{Endpoint: notifyPath, LastOutcome: "success", LastCallAt: t0, LastSuccessAt: t0}},
			{oneCall("retryable_error", t0.Add(time.Minute), false, busy),
				store.KooDriveHealth{Endpoint: notifyPath, LastOutcome: "retryable_error", LastCallAt: t0.Add(time.Minute), LastSuccessAt: t0,
					LastFailure: store.KooDriveFailure{At: t0.Add(time.Minute), Outcome: "retryable_error", HTTPStatus: 503, Code: "503", Message: "service busy"},
					Unanswered:  1, UnansweredSince: t0.Add(time.Minute)}},
			{oneCall("auth_failed", t0.Add(2*time.Minute), false, refused),
				store.KooDriveHealth{Endpoint: notifyPath, LastOutcome: "auth_failed", LastCallAt: t0.Add(2 * time.Minute), LastSuccessAt: t0,
					LastFailure: store.KooDriveFailure{At: t0.Add(2 * time.Minute), Outcome: "auth_failed", HTTPStatus: 401, Code: "401", Message: "token expired"},
					Unanswered:  2, UnansweredSince: t0.Add(time.Minute)}},
			{oneCall("rejected", t0.Add(3*time.Minute), true, store.KooDriveFailure{HTTPStatus: 200, Code: "10020001", Message: "carrier is not whitelisted"}),
				store.KooDriveHealth{Endpoint: notifyPath, LastOutcome: "rejected", LastCallAt: t0.Add(3 * time.Minute), LastSuccessAt: t0,
					LastFailure: store.KooDriveFailure{At: t0.Add(3 * time.Minute), Outcome: "rejected", HTTPStatus: 200, Code: "10020001",
						Message: "carrier is not whitelisted"}}},
		}
		for i, step := range steps {
			if err := s.RecordKooDriveCalls(ctx, []store.KooDriveCalls{step.call}); err != nil {
				t.Fatal(err)
			}
			if got := readHealth(t, s); len(got) != 1 || got[0] != step.want {
				t.Fatalf("after call %d:\n got %+v\nwant %+v", i+1, got, step.want)
			}
		}
	})
}

// TestKooDriveHealthOfASummaryEqualsItsCalls: the worker writes summaries of many calls
// (FollowedBy); the row they leave is the one the calls written one by one leave, whether
// the summary starts the row or folds into it.
func TestKooDriveHealthOfASummaryEqualsItsCalls(t *testing.T) {
	t0 := time.Date(2026, 10, 31, 12, 0, 0, 0, time.UTC)
	busy := store.KooDriveFailure{HTTPStatus: 502, Message: "bad gateway"}
	runs := map[string][]store.KooDriveCalls{
		"an outage after a success": {oneCall("success", t0, true, busy), oneCall("retryable_error", t0.Add(time.Second), false, busy),
			oneCall("retryable_error", t0.Add(2*time.Second), false, busy)},
		"an outage that ends and starts again": {oneCall("retryable_error", t0, false, busy), oneCall("auth_failed", t0.Add(time.Second), false, busy),
			oneCall("success", t0.Add(2*time.Second), true, busy), oneCall("retryable_error", t0.Add(3*time.Second), false, busy)},
		"answers only": {oneCall("rejected", t0, true, busy), oneCall("success", t0.Add(time.Second), true, busy)},
	}
	for name, calls := range runs {
		t.Run(name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, s *store.Store) {
				record := func(endpoint string, summaries ...store.KooDriveCalls) {
					for _, c := range summaries {
						c.Endpoint = endpoint
						if err := s.RecordKooDriveCalls(context.Background(), []store.KooDriveCalls{c}); err != nil {
							t.Fatal(err)
						}
					}
				}
				record("/one-by-one", calls...)
				record("/in-one-summary", summarize(calls))
				record("/first-then-the-rest", calls[0], summarize(calls[1:]))
				rows := readHealth(t, s)
				if len(rows) != 3 {
					t.Fatalf("rows %+v", rows)
				}
				want := rows[1] // by endpoint: /first-then-the-rest, /in-one-summary, /one-by-one
				for _, got := range rows {
					got.Endpoint = want.Endpoint
					if got != want {
						t.Fatalf("rows differ:\n%+v", rows)
					}
				}
			})
		})
	}
}

// summarize folds calls into one summary.
func summarize(calls []store.KooDriveCalls) store.KooDriveCalls {
	var sum store.KooDriveCalls
	for _, c := range calls {
		sum = sum.FollowedBy(c)
	}
	return sum
}

// TestKooDriveHealthFromTwoWorkers: a summary older than the row (another worker's, written
// late) leaves the newer call and failure in place.
func TestKooDriveHealthFromTwoWorkers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		t0 := time.Date(2026, 10, 31, 12, 0, 0, 0, time.UTC)
		newer := oneCall("auth_failed", t0.Add(time.Minute), false, store.KooDriveFailure{HTTPStatus: 401, Message: "token expired"})
		older := oneCall("retryable_error", t0, false, store.KooDriveFailure{HTTPStatus: 503, Message: "service busy"})
		for _, c := range []store.KooDriveCalls{newer, older} {
			if err := s.RecordKooDriveCalls(ctx, []store.KooDriveCalls{c}); err != nil {
				t.Fatal(err)
			}
		}
		got := readHealth(t, s)
		if len(got) != 1 || got[0].LastOutcome != "auth_failed" || !got[0].LastCallAt.Equal(t0.Add(time.Minute)) ||
			got[0].LastFailure.Message != "token expired" || got[0].Unanswered != 2 {
			t.Fatalf("health %+v, want the newer auth failure kept and both calls counted", got)
		}
	})
}

// TestKooDriveHealthKeepsAStorableMessage: a message that is not UTF-8, or holds a NUL,
// is kept with each bad byte as U+FFFD, and a long one is cut.
func TestKooDriveHealthKeepsAStorableMessage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		t0 := time.Date(2026, 10, 31, 12, 0, 0, 0, time.UTC)
		hostile := oneCall("retryable_error", t0, false, store.KooDriveFailure{HTTPStatus: 502, Message: "bad\xff\x00gateway " + strings.Repeat("x", 1000)})
		if err := s.RecordKooDriveCalls(context.Background(), []store.KooDriveCalls{hostile}); err != nil {
			t.Fatal(err)
		}
		got := readHealth(t, s)
		if len(got) != 1 || !strings.HasPrefix(got[0].LastFailure.Message, "bad\uFFFD\uFFFDgateway xxx") ||
			!strings.HasSuffix(got[0].LastFailure.Message, "x…") || len([]rune(got[0].LastFailure.Message)) != 501 {
			t.Fatalf("message %q", got[0].LastFailure.Message)
		}
	})
}
