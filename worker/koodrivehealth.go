package worker

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/store"
)

// KooDriveHealthStore is where a KooDriveHealthRecorder writes; *store.Store implements it.
type KooDriveHealthStore interface {
	RecordKooDriveCalls(ctx context.Context, calls []store.KooDriveCalls) error
}

var _ KooDriveHealthStore = (*store.Store)(nil)

// KooDriveHealthInterval is how often the worker writes the KooDrive calls it saw: a
// month-end storm of calls costs one small write per interval, not one per call.
const KooDriveHealthInterval = 10 * time.Second

// kooDriveHealthQuietTime is the least time between two writes that changes ask for: a
// KooDrive that answers one call in two does not cost a write per call either.
const kooDriveHealthQuietTime = time.Second

// kooDriveHealthLastWrite bounds the write of the last calls when the worker stops.
const kooDriveHealthLastWrite = 5 * time.Second

// callClass is what a call says of KooDrive: it answered, it did not, or it refused
// kooflow's credentials.
type callClass int

const (
	classNone callClass = iota
	classAnswered
	classUnanswered
	classCredentialsRefused
)

// classOf classes a koodrive outcome. A rejection is an answer: KooDrive took the call
// and refused what it asked.
func classOf(outcome string) callClass {
	switch outcome {
	case koodrive.OutcomeSuccess, koodrive.OutcomeRejected:
		return classAnswered
	case koodrive.OutcomeAuthFailed:
		return classCredentialsRefused
	default:
		return classUnanswered
	}
}

// KooDriveHealthRecorder keeps what the worker's KooDrive client reports of its calls
// (koodrive.Config.Report) and writes it to the store, where the console's overview reads
// it. It sums the calls up in memory, one summary per endpoint, and writes them every
// interval, and at once (at most once a second) when an endpoint starts or stops
// answering or refusing the credentials. When the store does not answer, the summaries
// are kept and written with the next ones, and the outage is logged once. It is safe for
// concurrent use.
type KooDriveHealthRecorder struct {
	store  KooDriveHealthStore
	logger *slog.Logger
	// now stamps the calls; after waits out the quiet time. Tests replace both.
	now   func() time.Time
	after func(time.Duration) <-chan time.Time

	mu sync.Mutex
	// pending sums up the calls not written yet, by endpoint; class is the last call's
	// class of each endpoint.
	pending map[string]store.KooDriveCalls
	class   map[string]callClass
	// changed asks the writer for a write now.
	changed chan struct{}
	// storeDown is set while writes fail (the outage is logged); only Run uses it.
	storeDown bool
}

// NewKooDriveHealthRecorder returns a recorder writing to st; run it with Start or Run.
func NewKooDriveHealthRecorder(st KooDriveHealthStore, logger *slog.Logger) *KooDriveHealthRecorder {
	if logger == nil {
		logger = slog.Default()
	}
	return &KooDriveHealthRecorder{store: st, logger: logger, now: time.Now, after: time.After,
		pending: map[string]store.KooDriveCalls{}, class: map[string]callClass{}, changed: make(chan struct{}, 1)}
}

// Report takes one call; it is the KooDrive client's koodrive.Config.Report. It never
// waits for the store.
func (h *KooDriveHealthRecorder) Report(c koodrive.Call) {
	at, class := h.now(), classOf(c.Outcome)
	call := store.KooDriveCalls{
		KooDriveHealth: store.KooDriveHealth{Endpoint: c.Endpoint, LastOutcome: c.Outcome, LastCallAt: at},
		Answered:       class == classAnswered,
	}
	if c.Outcome == koodrive.OutcomeSuccess {
		call.LastSuccessAt = at
	} else {
		call.LastFailure = store.KooDriveFailure{At: at, Outcome: c.Outcome, HTTPStatus: c.HTTPStatus, Code: c.Code, Message: c.Message}
	}
	if !call.Answered {
		call.Unanswered, call.UnansweredSince = 1, at
	}
	h.mu.Lock()
	h.pending[c.Endpoint] = h.pending[c.Endpoint].FollowedBy(call)
	changed := h.class[c.Endpoint] != class
	h.class[c.Endpoint] = class
	h.mu.Unlock()
	if changed {
		select {
		case h.changed <- struct{}{}:
		default: // a write is asked for already
		}
	}
}

// Start runs the recorder in the background, writing every interval; stop ends it after
// a last write of what remains, and returns once it has.
func (h *KooDriveHealthRecorder) Start(interval time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ticker := time.NewTicker(interval)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer ticker.Stop()
		h.Run(ctx, ticker.C)
	}()
	return func() {
		cancel()
		<-done
	}
}

// Run writes what was reported at every tick and whenever a change asks for it, until ctx
// ends; then it writes what remains and returns.
func (h *KooDriveHealthRecorder) Run(ctx context.Context, ticks <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			last, cancel := context.WithTimeout(context.WithoutCancel(ctx), kooDriveHealthLastWrite)
			n, err := h.write(last)
			cancel()
			if err != nil {
				h.logger.Warn("the last KooDrive calls were not written to the store before the worker stopped: the console shows the state before them",
					"endpoints", n, "error", err)
			}
			return
		case <-ticks:
			h.writeOrKeep(ctx)
		case <-h.changed:
			h.writeOrKeep(ctx)
			select {
			case <-ctx.Done():
			case <-h.after(kooDriveHealthQuietTime):
			}
		}
	}
}

// writeOrKeep writes what is pending; a failed write is kept for the next one, and the
// store's outage logged when it starts and when it ends.
func (h *KooDriveHealthRecorder) writeOrKeep(ctx context.Context) {
	n, err := h.write(ctx)
	switch {
	case err != nil && !h.storeDown:
		h.storeDown = true
		h.logger.Warn("KooDrive's health is not written: the store did not answer; the calls are kept and written when it does",
			"endpoints", n, "error", err)
	case err == nil && h.storeDown:
		h.storeDown = false
		h.logger.Info("KooDrive's health is written again: the store answers")
	}
}

// write writes the pending summaries in one transaction, in endpoint order (two workers
// writing at once take the rows' locks in the same order). When the write fails they are
// pending again, before the calls reported meanwhile. It returns how many endpoints it
// wrote or tried to.
func (h *KooDriveHealthRecorder) write(ctx context.Context) (int, error) {
	h.mu.Lock()
	if len(h.pending) == 0 {
		h.mu.Unlock()
		return 0, nil
	}
	batch := make([]store.KooDriveCalls, 0, len(h.pending))
	for _, c := range h.pending {
		batch = append(batch, c)
	}
	h.pending = map[string]store.KooDriveCalls{}
	h.mu.Unlock()
	slices.SortFunc(batch, func(a, b store.KooDriveCalls) int { return strings.Compare(a.Endpoint, b.Endpoint) })
	err := h.store.RecordKooDriveCalls(ctx, batch)
	if err != nil {
		h.mu.Lock()
		for _, c := range batch {
			h.pending[c.Endpoint] = c.FollowedBy(h.pending[c.Endpoint])
		}
		h.mu.Unlock()
	}
	return len(batch), err
}
