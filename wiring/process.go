package wiring

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
)

// Process is a running `kooflow worker` or `kooflow webhook`: what the command runs
// until it is told to stop.
type Process struct {
	// Parts are the process's store, metrics and client options; Client its Temporal
	// client (lazy: it connects when Temporal answers).
	Parts  *Parts
	Client client.Client
	// WebhookURL is where the webhook listens (empty for the worker); MetricsURL serves
	// /metrics, /healthz and /readyz.
	WebhookURL string
	MetricsURL string
	// ConsoleURL is where the console listens (`kooflow console` only).
	ConsoleURL string
	// Ready is what MetricsURL/readyz answers: 503 "waiting for Temporal at host:port …"
	// until the worker polls (the webhook: until its relay reaches Temporal), 200 after.
	Ready *Readiness
	// stops run in reverse order.
	stops []func()
}

// Start runs the process r — StartWorkerProcess, StartWebhookProcess or
// StartConsoleProcess — as its command does.
func Start(ctx context.Context, r Role, cfg Config) (*Process, error) {
	switch r {
	case Worker:
		return StartWorkerProcess(ctx, cfg)
	case Webhook:
		return StartWebhookProcess(ctx, cfg)
	case Console:
		return StartConsoleProcess(ctx, cfg)
	}
	return nil, fmt.Errorf("wiring: unknown process %q", r)
}

// StartWorkerProcess runs kooflow's Temporal worker: it opens the parts, builds the
// activities' dependencies and serves the metrics, health and readiness, and returns;
// in the background it waits for Temporal as long as it takes (AwaitTemporal), registers
// the search attributes and starts the worker. Only a configuration error returns one.
// Stop lets the activities in flight finish for up to Config.WorkerOptions'
// WorkerStopTimeout.
func StartWorkerProcess(ctx context.Context, cfg Config) (_ *Process, err error) {
	p, err := openProcess(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer p.stopOnError(&err)
	deps, err := p.Parts.WorkerDependencies()
	if err != nil {
		return nil, err
	}
	if err := p.lazyClient(); err != nil {
		return nil, err
	}
	if err := p.serveMetrics(); err != nil {
		return nil, err
	}
	var w sdkworker.Worker
	stopWaiting := p.whenTemporal(ctx, func(ctx context.Context) error {
		p.Parts.EnsureSearchAttributes(ctx, p.Client)
		started, err := p.Parts.startWorker(p.Client, deps)
		if err != nil {
			return err
		}
		w = started
		p.Parts.logger.Info("worker running", "taskQueue", "kooflow", "metrics", p.MetricsURL+"/metrics", "store", p.Parts.Store.Dialect())
		return nil
	})
	p.stops = append(p.stops, func() {
		stopWaiting()
		if w != nil {
			p.Ready.SetNotReady("stopping: finishing the activities in flight")
			p.Parts.logger.Info("worker draining: activities in flight may finish", "stopTimeout", cfg.WorkerOptions.WorkerStopTimeout.String())
			w.Stop()
		}
	})
	return p, nil
}

// StartWebhookProcess runs the intake: the webhook and the relay on a lazy Temporal
// client, so deliveries are accepted while Temporal is down (the relay waits for it), and
// the metrics, health and readiness.
func StartWebhookProcess(ctx context.Context, cfg Config) (_ *Process, err error) {
	p, err := openProcess(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer p.stopOnError(&err)
	if err := p.lazyClient(); err != nil {
		return nil, err
	}
	if err := p.serveMetrics(); err != nil {
		return nil, err
	}
	in, err := p.Parts.StartIntake(ctx, p.Client, p.Ready)
	if err != nil {
		return nil, err
	}
	p.WebhookURL = in.URL
	p.stops = append(p.stops, in.Stop)
	p.Parts.logger.Info("webhook listening", "url", in.URL, "metrics", p.MetricsURL+"/metrics",
		"temporal", p.Parts.ClientOptions.HostPort, "store", p.Parts.Store.Dialect())
	return p, nil
}

func openProcess(ctx context.Context, cfg Config) (*Process, error) {
	parts, err := Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	p := &Process{Parts: parts, stops: []func(){parts.Close}}
	w := TemporalWait{Address: parts.ClientOptions.HostPort, Namespace: parts.ClientOptions.Namespace}
	p.Ready = NewReadiness(w.Reason())
	return p, nil
}

func (p *Process) lazyClient() (err error) {
	if p.Client, err = p.Parts.LazyClient(); err != nil {
		return err
	}
	p.stops = append(p.stops, p.Client.Close)
	return nil
}

// whenTemporal runs start in the background once Temporal answers (Parts.AwaitTemporal,
// which p.Ready follows). The function it returns stops the wait, if it still runs, and
// returns once it has ended.
func (p *Process) whenTemporal(ctx context.Context, start func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Parts.AwaitTemporal(ctx, p.Client, p.Ready, start)
	}()
	return func() {
		cancel()
		<-done
	}
}

func (p *Process) serveMetrics() error {
	ms, err := p.Parts.ServeMetrics(p.Ready)
	if err != nil {
		return err
	}
	p.MetricsURL = ms.URL
	p.stops = append(p.stops, ms.Shutdown)
	return nil
}

func (p *Process) stopOnError(err *error) {
	if *err != nil {
		p.Stop()
	}
}

// Stop stops what the process started, last started first: the worker (or the wait for
// Temporal) or the webhook and relay, the metrics server, the client, then the store.
func (p *Process) Stop() {
	for i := len(p.stops) - 1; i >= 0; i-- {
		p.stops[i]()
	}
	p.stops = nil
}
