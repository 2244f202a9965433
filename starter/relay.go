package starter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/store"
)

// Relay defaults.
const (
	DefaultRelayParallel     = 16
	DefaultRelayBatch        = 64
	DefaultRelayLease        = 30 * time.Second
	DefaultRelayStartTimeout = 10 * time.Second
	DefaultRelayPoll         = time.Second
	// DefaultMaxActive is the admission cap (KOOFLOW_MAX_ACTIVE_EXPIRIES): the most
	// expiries Temporal works on at once. Measured with `go run ./bench storm -max-active`
	// (BENCHMARKS.md, "Admission control"): on one 2-core machine, 3,000 expiries drained
	// at the same pace with no cap and caps of 2,000 to 100, and the first 1,000 were
	// reserved after 123 s uncapped, 72–75 s at 500 and below. 500 leaves room for a
	// bigger installation's rate times a real KooDrive's latency.
	DefaultMaxActive = 500
	// relayBackoffMin and relayBackoffMax bound the pause after a pass in which Temporal
	// took nothing: short enough that a returning Temporal is used within seconds.
	relayBackoffMin = 250 * time.Millisecond
	relayBackoffMax = 5 * time.Second
)

// Relay delivers the intents Intake committed to Temporal: it starts every pending
// expiry with the same workflow ID and policies as a direct start (so a start that
// already happened is recognised, never doubled) and signals stops, in order of arrival
// and strictly in order per subject. While Temporal is unreachable it backs off and
// resumes by itself. Any number of relays may run against one store (several webhook
// replicas): each claims intents under a lease, so no intent is delivered by two at once.
//
// The crash window between a start and its mark is closed by the workflow ID: the
// intent stays pending, is claimed again when the lease ends, and the start then finds
// the workflow (store.OutcomeExisting).
type Relay struct {
	Store  *store.Store
	Client client.Client
	// Owner names this relay in the store (e.g. "webhook@host:pid").
	Owner  string
	Logger *slog.Logger
	// Observe, when set, counts each delivery by intent kind and outcome (store.Outcome*,
	// or "failed").
	Observe func(kind, outcome string)
	// Parallel bounds concurrent Temporal calls; Batch the intents claimed per pass.
	Parallel int
	Batch    int
	// Lease is how long claimed intents stay this relay's; StartTimeout bounds one call.
	Lease        time.Duration
	StartTimeout time.Duration
	// Poll is how often an idle relay looks for intents committed by other processes,
	// and how often a relay at its admission cap counts again.
	Poll time.Duration
	// MaxActive is the admission cap: the most expiries Temporal works on at once. 0
	// means DefaultMaxActive; negative, no cap. DeliverSubject (an operator's start of
	// one subject) is not held by it.
	MaxActive int
	// Admission, when set, is told the count of active expiries before each pass and
	// whether the cap held starts back.
	Admission func(active int, held bool)

	once  sync.Once
	nudge chan struct{}
}

func (r *Relay) init() {
	r.once.Do(func() {
		r.nudge = make(chan struct{}, 1)
		if r.Logger == nil {
			r.Logger = slog.Default()
		}
		if r.Parallel <= 0 {
			r.Parallel = DefaultRelayParallel
		}
		if r.Batch <= 0 {
			r.Batch = DefaultRelayBatch
		}
		if r.Lease <= 0 {
			r.Lease = DefaultRelayLease
		}
		if r.StartTimeout <= 0 {
			r.StartTimeout = DefaultRelayStartTimeout
		}
		if r.Poll <= 0 {
			r.Poll = DefaultRelayPoll
		}
		if r.Owner == "" {
			r.Owner = "relay"
		}
		if r.MaxActive == 0 {
			r.MaxActive = DefaultMaxActive
		}
	})
}

// Cap is the admission cap the relay applies, its default filled in; 0 when it has none.
func (r *Relay) Cap() int {
	r.init()
	return max(r.MaxActive, 0)
}

// Nudge wakes the relay now: something was just committed. It never blocks.
func (r *Relay) Nudge() {
	r.init()
	select {
	case r.nudge <- struct{}{}:
	default:
	}
}

// Run delivers intents until ctx ends: at once when nudged, otherwise every Poll, and
// after a pass in which Temporal took nothing, after a backoff that ignores nudges.
func (r *Relay) Run(ctx context.Context) {
	r.init()
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		p, err := r.pass(ctx, "", backoff)
		if err != nil && ctx.Err() == nil {
			r.Logger.Error("intake relay cannot use the store; retrying", "error", err)
		}
		if p.delivered > 0 {
			backoff = 0
			continue
		}
		if err != nil || p.failed > 0 {
			backoff = min(max(2*backoff, relayBackoffMin), relayBackoffMax)
			sleep(ctx, backoff)
			continue
		}
		backoff = 0
		if p.held {
			// Nudges mean more intake, not more room: count again after Poll.
			sleep(ctx, r.Poll)
			continue
		}
		select {
		case <-ctx.Done():
		case <-r.nudge:
		case <-time.After(r.Poll):
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// DeliverSubject delivers what is deliverable now for one subject (the operator CLI's
// inline start): it reports how many intents were delivered and the last failure.
func (r *Relay) DeliverSubject(ctx context.Context, subject string) (int, error) {
	r.init()
	p, err := r.pass(ctx, subject, relayBackoffMin)
	if err != nil {
		return p.delivered, err
	}
	return p.delivered, p.lastErr
}

type passResult struct {
	delivered, failed int
	lastErr           error
	// held: the admission cap left no room for a start in this pass.
	held bool
}

// pass claims a batch within the admission cap and delivers it; failed intents are
// deferred by backoff.
func (r *Relay) pass(ctx context.Context, subject string, backoff time.Duration) (passResult, error) {
	claim := store.ClaimOptions{Owner: r.Owner, Limit: r.Batch, Lease: r.Lease, Subject: subject}
	var res passResult
	if subject == "" && r.MaxActive > 0 {
		active, err := r.Store.ActiveExpirations(ctx)
		if err != nil {
			return res, err
		}
		room := r.MaxActive - active
		res.held = room <= 0
		if res.held {
			claim.StopsOnly = true
		} else {
			claim.Limit = min(claim.Limit, room)
		}
		if r.Admission != nil {
			r.Admission(active, res.held)
		}
	}
	intents, err := r.Store.ClaimIntents(ctx, claim)
	if err != nil || len(intents) == 0 {
		return res, err
	}
	outcomes := make([]string, len(intents))
	errs := make([]error, len(intents))
	sem := make(chan struct{}, r.Parallel)
	var wg sync.WaitGroup
	for i := range intents {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			outcomes[i], errs[i] = r.deliver(ctx, intents[i])
		}()
	}
	wg.Wait()

	done := map[string][]int64{}
	retryAt := time.Now().Add(max(2*backoff, relayBackoffMin))
	for i, in := range intents {
		if errs[i] != nil {
			res.failed++
			res.lastErr = errs[i]
			r.observe(in.Kind, "failed")
			r.Logger.Warn("intake relay could not deliver; will retry", "kind", in.Kind, "workflowId", in.WorkflowID,
				"attempt", in.Attempts, "error", errs[i])
			if err := r.Store.DeferIntent(context.WithoutCancel(ctx), in.ID, errs[i].Error(), retryAt); err != nil {
				return res, err
			}
			continue
		}
		res.delivered++
		r.observe(in.Kind, outcomes[i])
		if outcomes[i] != store.OutcomeOvertaken { // already cancelled by the store
			done[outcomes[i]] = append(done[outcomes[i]], in.ID)
		}
	}
	for outcome, ids := range done {
		if err := r.Store.CompleteIntents(context.WithoutCancel(ctx), outcome, ids...); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (r *Relay) observe(kind, outcome string) {
	if r.Observe != nil {
		r.Observe(kind, outcome)
	}
}

// deliver hands one claimed intent to Temporal and returns its outcome.
func (r *Relay) deliver(ctx context.Context, in store.Intent) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.StartTimeout)
	defer cancel()
	switch in.Kind {
	case store.IntentStart:
		return r.deliverStart(ctx, in)
	case store.IntentStop:
		return r.deliverStop(ctx, in)
	}
	return "", fmt.Errorf("intent %d has unknown kind %q", in.ID, in.Kind)
}

// deliverStart starts the expiry's workflow — unless a stop queued after it overtook
// it, in which case the workflow must not start if it does not exist yet.
func (r *Relay) deliverStart(ctx context.Context, in store.Intent) (string, error) {
	var input contract.ExpirationInput
	if err := json.Unmarshal(in.Payload, &input); err != nil {
		return "", fmt.Errorf("decode intent %d for %s: %w", in.ID, in.WorkflowID, err)
	}
	stop, overtaken, err := r.Store.PendingStop(ctx, in.Subject, in.ID)
	if err != nil {
		return "", err
	}
	if overtaken {
		var req contract.StopRequest
		if err := json.Unmarshal(stop.Payload, &req); err != nil {
			return "", fmt.Errorf("decode stop intent %d: %w", stop.ID, err)
		}
		// An earlier claim may have reached Temporal even though its answer was lost.
		if in.Attempts > 1 {
			_, err := r.Client.DescribeWorkflowExecution(ctx, in.WorkflowID, "")
			var notFound *serviceerror.NotFound
			switch {
			case err == nil:
				return store.OutcomeExisting, nil // the stop queued behind it reaches it
			case !errors.As(err, &notFound):
				return "", fmt.Errorf("look up %s: %w", in.WorkflowID, err)
			}
		}
		if err := r.Store.CancelOvertakenStart(ctx, in, req.Reason, req.Detail); err != nil {
			return "", err
		}
		r.Logger.Info("queued expiration overtaken before it started; nothing will run", "workflowId", in.WorkflowID,
			"reason", req.Reason, "detail", req.Detail)
		return store.OutcomeOvertaken, nil
	}
	existing, err := startExpirationWorkflow(ctx, r.Client, in.WorkflowID, input)
	if err != nil {
		return "", err
	}
	if existing {
		return store.OutcomeExisting, nil
	}
	return store.OutcomeStarted, nil
}

// deliverStop signals every open expiration of the subject accepted before the stop.
// Expirations whose workflow is gone (finished) are skipped.
func (r *Relay) deliverStop(ctx context.Context, in store.Intent) (string, error) {
	var req contract.StopRequest
	if err := json.Unmarshal(in.Payload, &req); err != nil {
		return "", fmt.Errorf("decode stop intent %d: %w", in.ID, err)
	}
	for _, state := range store.OpenStates {
		exps, err := r.Store.Expirations(ctx, store.ExpirationFilter{Subject: in.Subject, State: state, Limit: 1000})
		if err != nil {
			return "", err
		}
		for _, e := range exps {
			if e.CreatedAt.After(in.CreatedAt) {
				continue // accepted after the stop: a new period, not overtaken
			}
			err := r.Client.SignalWorkflow(ctx, e.WorkflowID, "", contract.SignalStop, req)
			var notFound *serviceerror.NotFound
			if err != nil && !errors.As(err, &notFound) {
				return "", fmt.Errorf("stop expiration %s: %w", e.WorkflowID, err)
			}
			if err == nil {
				r.Logger.Info("expiration stopped", "workflowId", e.WorkflowID, "reason", req.Reason, "detail", req.Detail)
			}
		}
	}
	return store.OutcomeSignalled, nil
}
