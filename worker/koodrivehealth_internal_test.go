package worker

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/store"
)

// healthStore is a store whose writes the test reads in order; while down, every write
// fails.
type healthStore struct {
	writes chan []store.KooDriveCalls
	mu     sync.Mutex
	down   bool
}

func (s *healthStore) RecordKooDriveCalls(ctx context.Context, calls []store.KooDriveCalls) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	s.writes <- calls
	if down {
		return errors.New("connect to database: connection refused")
	}
	return nil
}

func (s *healthStore) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// healthRig runs a recorder whose clock gives every call the next second after t0, whose
// ticks and quiet times the test hands out, over a healthStore.
type healthRig struct {
	recorder *KooDriveHealthRecorder
	store    *healthStore
	log      *bytes.Buffer // read it after stop
	ticks    chan time.Time
	quiet    chan time.Time
	stop     func()
}

var t0 = time.Date(2026, 10, 31, 12, 0, 0, 0, time.UTC)

// second is the time of the nth call the rig's clock stamped.
func second(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

func newHealthRig(t *testing.T) *healthRig {
	t.Helper()
	rig := &healthRig{store: &healthStore{writes: make(chan []store.KooDriveCalls, 16)}, log: &bytes.Buffer{},
		ticks: make(chan time.Time), quiet: make(chan time.Time)}
	rig.recorder = NewKooDriveHealthRecorder(rig.store, slog.New(slog.NewTextHandler(rig.log, nil)))
	calls := 0
	rig.recorder.now = func() time.Time { calls++; return second(calls) } // Report is called from the test's goroutine only
	rig.recorder.after = func(time.Duration) <-chan time.Time { return rig.quiet }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		rig.recorder.Run(ctx, rig.ticks)
	}()
	rig.stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(rig.stop)
	return rig
}

// within bounds every wait of these tests: a recorder that never does what the test
// waits for fails it instead of hanging it.
const within = 10 * time.Second

func (rig *healthRig) tick(t *testing.T) {
	t.Helper()
	rig.hand(t, rig.ticks, "a tick")
}

func (rig *healthRig) endQuiet(t *testing.T) {
	t.Helper()
	rig.hand(t, rig.quiet, "the end of a quiet time")
}

// hand gives the recorder a tick or the end of a quiet time, and fails the test when
// the recorder does not take it.
func (rig *healthRig) hand(t *testing.T, to chan time.Time, what string) {
	t.Helper()
	select {
	case to <- time.Now():
	case <-time.After(within):
		t.Fatalf("the recorder does not take %s", what)
	}
}

func (rig *healthRig) nextWrite(t *testing.T) []store.KooDriveCalls {
	t.Helper()
	select {
	case calls := <-rig.store.writes:
		return calls
	case <-time.After(within):
		t.Fatal("the recorder wrote nothing")
		return nil
	}
}

// wantWrite reads the next write and compares it with want.
func (rig *healthRig) wantWrite(t *testing.T, what string, want ...store.KooDriveCalls) {
	t.Helper()
	got := rig.nextWrite(t)
	if len(got) != len(want) {
		t.Fatalf("%s: wrote %+v, want %+v", what, got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: wrote\n %+v\nwant\n %+v", what, got[i], want[i])
		}
	}
}

var (
	success = koodrive.Call{Endpoint: koodrive.NotifyPackageExpirePath, Outcome: koodrive.OutcomeSuccess}
	busy    = koodrive.Call{Endpoint: koodrive.NotifyPackageExpirePath, Outcome: koodrive.OutcomeRetryable, HTTPStatus: 503, Code: "503",
		Message: "service busy"}
	refused = koodrive.Call{Endpoint: koodrive.NotifyPackageExpirePath, Outcome: koodrive.OutcomeAuthFailed, HTTPStatus: 401, Code: "401",
		Message: "token expired"}
)

// summary is what the recorder writes for notifyPackageExpire's calls: the last at
// second last, with the last success, last failure and unanswered calls given.
func summary(outcome string, last int, lastSuccess time.Time, failure store.KooDriveFailure, answered bool, unanswered int64, since time.Time) store.KooDriveCalls {
	return store.KooDriveCalls{KooDriveHealth: store.KooDriveHealth{Endpoint: koodrive.NotifyPackageExpirePath, LastOutcome: outcome,
		LastCallAt: second(last), LastSuccessAt: lastSuccess, LastFailure: failure, Unanswered: unanswered, UnansweredSince: since},
		Answered: answered}
}

func failureOf(c koodrive.Call, n int) store.KooDriveFailure {
	return store.KooDriveFailure{At: second(n), Outcome: c.Outcome, HTTPStatus: c.HTTPStatus, Code: c.Code, Message: c.Message}
}

// TestKooDriveCallsAreSummedUpUntilTheTick: an endpoint's first call is written at once;
// the calls after it that change nothing are written together at the next tick, as one
// summary.
func TestKooDriveCallsAreSummedUpUntilTheTick(t *testing.T) {
	rig := newHealthRig(t)
	rig.recorder.Report(success)
	rig.wantWrite(t, "the first call", summary(koodrive.OutcomeSuccess, 1, second(1), store.KooDriveFailure{}, true, 0, time.Time{}))
	rig.endQuiet(t)
	for range 3 {
		rig.recorder.Report(success)
	}
	rig.tick(t)
	rig.wantWrite(t, "three more calls", summary(koodrive.OutcomeSuccess, 4, second(4), store.KooDriveFailure{}, true, 0, time.Time{}))
}

// TestAChangeOfKooDriveIsWrittenAtOnce: KooDrive stopping answering, refusing the
// credentials and answering again are each written without waiting for a tick; a change
// within the quiet time after such a write waits for its end and is written with the
// calls after it.
func TestAChangeOfKooDriveIsWrittenAtOnce(t *testing.T) {
	rig := newHealthRig(t)
	rig.recorder.Report(success)
	rig.wantWrite(t, "the first call", summary(koodrive.OutcomeSuccess, 1, second(1), store.KooDriveFailure{}, true, 0, time.Time{}))
	rig.endQuiet(t)

	rig.recorder.Report(busy)
	rig.wantWrite(t, "KooDrive stops answering", summary(koodrive.OutcomeRetryable, 2, time.Time{}, failureOf(busy, 2), false, 1, second(2)))
	rig.recorder.Report(busy)
	rig.recorder.Report(refused)
	rig.recorder.Report(refused)
	rig.endQuiet(t)
	rig.wantWrite(t, "credentials refused within the quiet time",
		summary(koodrive.OutcomeAuthFailed, 5, time.Time{}, failureOf(refused, 5), false, 3, second(3)))
	rig.endQuiet(t)

	rig.recorder.Report(success)
	rig.wantWrite(t, "KooDrive answers again", summary(koodrive.OutcomeSuccess, 6, second(6), store.KooDriveFailure{}, true, 0, time.Time{}))
}

// TestKooDriveHealthOutlivesAStoreOutage: writes that fail keep their calls for the next
// write, which sums them up with the later calls; the outage is logged once when it
// starts and once when it ends.
func TestKooDriveHealthOutlivesAStoreOutage(t *testing.T) {
	rig := newHealthRig(t)
	rig.store.setDown(true)
	rig.recorder.Report(success)
	rig.wantWrite(t, "the first call, store down", summary(koodrive.OutcomeSuccess, 1, second(1), store.KooDriveFailure{}, true, 0, time.Time{}))
	rig.endQuiet(t)
	rig.recorder.Report(busy)
	outage := summary(koodrive.OutcomeRetryable, 2, second(1), failureOf(busy, 2), true, 1, second(2))
	rig.wantWrite(t, "a change, store still down", outage)
	rig.endQuiet(t)
	rig.tick(t)
	rig.wantWrite(t, "a tick, store still down", outage)

	rig.store.setDown(false)
	rig.recorder.Report(busy)
	rig.tick(t)
	rig.wantWrite(t, "the store answers again", summary(koodrive.OutcomeRetryable, 3, second(1), failureOf(busy, 3), true, 2, second(2)))
	rig.stop()
	log := rig.log.String()
	if strings.Count(log, "KooDrive's health is not written") != 1 || strings.Count(log, "KooDrive's health is written again") != 1 ||
		strings.Count(log, "\n") != 2 {
		t.Fatalf("log:\n%s\nwant one line when the outage starts and one when it ends", log)
	}
}

// TestStoppingTheRecorderWritesTheLastCalls: Start's stop writes what the ticks have not
// written yet, before it returns.
func TestStoppingTheRecorderWritesTheLastCalls(t *testing.T) {
	st := &healthStore{writes: make(chan []store.KooDriveCalls, 16)}
	recorder := NewKooDriveHealthRecorder(st, slog.New(slog.DiscardHandler))
	calls := 0
	recorder.now = func() time.Time { calls++; return second(calls) }
	stop := recorder.Start(time.Hour)
	recorder.Report(refused)
	var first []store.KooDriveCalls
	select {
	case first = <-st.writes:
	case <-time.After(within):
		t.Fatal("the first call was not written")
	}
	if len(first) != 1 || first[0].LastOutcome != koodrive.OutcomeAuthFailed {
		t.Fatalf("first write %+v", first)
	}
	recorder.Report(refused)
	stop()
	select {
	case last := <-st.writes:
		want := summary(koodrive.OutcomeAuthFailed, 2, time.Time{}, failureOf(refused, 2), false, 1, second(2))
		if len(last) != 1 || last[0] != want {
			t.Fatalf("last write %+v, want %+v", last, want)
		}
	default:
		t.Fatal("stop returned without writing the last call")
	}
}
