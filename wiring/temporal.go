package wiring

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// A long-running process (`kooflow worker`, the relay of `kooflow webhook`) starts whether
// Temporal is up or not: it logs once that it waits and for which address, tries again
// with capped exponential backoff, logs once when it is connected, and never gives up;
// only a signal stops it. Until then its /readyz answers 503 with the reason.

// TemporalRetryMin and TemporalRetryMax bound the pause between two attempts to reach
// Temporal: the first pause is TemporalRetryMin, each next one twice the last, never more
// than TemporalRetryMax — the SDK's own cap on reconnecting — so a waiting process is
// connected within about ten seconds of Temporal serving.
const (
	TemporalRetryMin = 250 * time.Millisecond
	TemporalRetryMax = 10 * time.Second
)

// temporalAttemptTimeout bounds one attempt's calls to Temporal.
const temporalAttemptTimeout = 10 * time.Second

// Backoff is a capped exponential backoff: Next returns Min, then twice the last pause, at
// most Max. The zero Backoff starts over.
type Backoff struct {
	Min, Max time.Duration
	last     time.Duration
}

// Next returns the next pause.
func (b *Backoff) Next() time.Duration {
	b.last = min(max(2*b.last, b.Min), b.Max)
	return b.last
}

// Readiness is what a process's /readyz answers: not ready, with a plain reason, until
// SetReady. It is safe for concurrent use; a nil *Readiness is always ready.
type Readiness struct {
	mu     sync.Mutex
	reason string // empty once ready
}

// NewReadiness returns a Readiness that is not ready, for reason.
func NewReadiness(reason string) *Readiness {
	return &Readiness{reason: reason}
}

// SetReady marks the process ready.
func (r *Readiness) SetReady() { r.set("") }

// SetNotReady marks the process not ready, for reason.
func (r *Readiness) SetNotReady(reason string) { r.set(reason) }

func (r *Readiness) set(reason string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reason = reason
}

// Ready reports whether the process is ready and, when it is not, why.
func (r *Readiness) Ready() (bool, string) {
	if r == nil {
		return true, ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reason == "", r.reason
}

// ServeHTTP answers 200 "ready", or 503 with the reason, in plain text.
func (r *Readiness) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	ready, reason := r.Ready()
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintln(w, reason)
		return
	}
	_, _ = fmt.Fprintln(w, "ready")
}

// TemporalWait waits for a Temporal cluster: see Run.
type TemporalWait struct {
	// Address names the cluster in messages (host:port); Namespace is the namespace.
	Address   string
	Namespace string
	// Backoff paces the attempts; a zero Max means TemporalRetryMin to TemporalRetryMax.
	Backoff Backoff
	// Readiness, when set, is not ready with the reason "waiting for Temporal at …" until
	// an attempt succeeds, and ready after.
	Readiness *Readiness
	Logger    *slog.Logger
}

// Reason is what /readyz answers while the process waits.
func (w *TemporalWait) Reason() string {
	return fmt.Sprintf("waiting for Temporal at %s (namespace %s)", w.Address, w.Namespace)
}

// Run calls attempt until it succeeds, pausing by Backoff between attempts, and returns
// nil then, or ctx's error when ctx ends first. It never gives up on its own. It logs
// one line when the first attempt fails (the address and the error) and one line when an
// attempt succeeds after that; every further failure is logged at debug level only.
func (w *TemporalWait) Run(ctx context.Context, attempt func(context.Context) error) error {
	if w.Backoff.Max == 0 {
		w.Backoff = Backoff{Min: TemporalRetryMin, Max: TemporalRetryMax}
	}
	logger := w.Logger
	if logger == nil {
		logger = slog.Default()
	}
	w.Readiness.SetNotReady(w.Reason())
	start := time.Now()
	for n := 1; ; n++ {
		err := tryOnce(ctx, attempt)
		if err == nil {
			if n > 1 {
				logger.Info("connected to Temporal", "address", w.Address, "namespace", w.Namespace,
					"attempts", n, "waited", time.Since(start).Round(time.Millisecond).String())
			}
			w.Readiness.SetReady()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		pause := w.Backoff.Next()
		if n == 1 {
			logger.Warn("waiting for Temporal; retrying until it answers", "address", w.Address, "namespace", w.Namespace,
				"retryIn", pause.String(), "maxRetryInterval", w.Backoff.Max.String(), "error", err)
		} else {
			logger.Debug("Temporal still unreachable", "address", w.Address, "attempt", n, "retryIn", pause.String(), "error", err)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func tryOnce(ctx context.Context, attempt func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, temporalAttemptTimeout)
	defer cancel()
	return attempt(ctx)
}

// ProbeTemporal returns nil when the cluster behind c answers and knows namespace: what a
// worker or a relay needs before it starts.
func ProbeTemporal(ctx context.Context, c client.Client, namespace string) error {
	if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return fmt.Errorf("Temporal health check: %w", err)
	}
	if _, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace}); err != nil {
		return fmt.Errorf("describe namespace %s: %w", namespace, err)
	}
	return nil
}

// AwaitTemporal waits until the cluster behind c answers (ProbeTemporal) and start, if not
// nil, succeeds, with TemporalWait's logging and backoff; ready follows the wait. It
// returns ctx's error when ctx ends first.
func (p *Parts) AwaitTemporal(ctx context.Context, c client.Client, ready *Readiness, start func(context.Context) error) error {
	w := &TemporalWait{Address: p.ClientOptions.HostPort, Namespace: p.ClientOptions.Namespace, Readiness: ready, Logger: p.logger}
	return w.Run(ctx, func(ctx context.Context) error {
		if err := ProbeTemporal(ctx, c, w.Namespace); err != nil {
			return err
		}
		if start != nil {
			return start(ctx)
		}
		return nil
	})
}
