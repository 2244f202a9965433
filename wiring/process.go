package wiring

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"
)

// dialPatience is how long the worker waits for a Temporal cluster that is not up yet.
const dialPatience = 2 * time.Minute

// Process is a running `kooflow worker` or `kooflow webhook`: what the command runs
// until it is told to stop.
type Process struct {
	// Parts are the process's store, metrics and client options; Client its Temporal
	// client (lazy in the webhook).
	Parts  *Parts
	Client client.Client
	// WebhookURL is where the webhook listens (empty for the worker); MetricsURL serves
	// /metrics and /healthz.
	WebhookURL string
	MetricsURL string
	// stops run in reverse order.
	stops []func()
}

// Start runs the process r — StartWorkerProcess or StartWebhookProcess — as its command
// does.
func Start(ctx context.Context, r Role, cfg Config) (*Process, error) {
	switch r {
	case Worker:
		return StartWorkerProcess(ctx, cfg)
	case Webhook:
		return StartWebhookProcess(ctx, cfg)
	}
	return nil, fmt.Errorf("wiring: unknown process %q", r)
}

// StartWorkerProcess runs kooflow's Temporal worker: it opens the parts, waits up to two
// minutes for Temporal, registers the search attributes, serves the metrics and starts
// the worker.
func StartWorkerProcess(ctx context.Context, cfg Config) (_ *Process, err error) {
	p, err := openProcess(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer p.stopOnError(&err)
	if p.Client, err = p.Parts.Dial(ctx, dialPatience); err != nil {
		return nil, err
	}
	p.stops = append(p.stops, p.Client.Close)
	p.Parts.EnsureSearchAttributes(ctx, p.Client)
	if err := p.serveMetrics(); err != nil {
		return nil, err
	}
	w, err := p.Parts.StartWorker(p.Client)
	if err != nil {
		return nil, err
	}
	p.stops = append(p.stops, w.Stop)
	p.Parts.logger.Info("worker running", "taskQueue", "kooflow", "metrics", p.MetricsURL+"/metrics", "store", p.Parts.Store.Dialect())
	return p, nil
}

// StartWebhookProcess runs the intake: the webhook and the relay on a lazy Temporal
// client, so deliveries are accepted while Temporal is down, and the metrics.
func StartWebhookProcess(ctx context.Context, cfg Config) (_ *Process, err error) {
	p, err := openProcess(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer p.stopOnError(&err)
	if p.Client, err = p.Parts.LazyClient(); err != nil {
		return nil, err
	}
	p.stops = append(p.stops, p.Client.Close)
	if err := p.serveMetrics(); err != nil {
		return nil, err
	}
	in, err := p.Parts.StartIntake(ctx, p.Client)
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
	return &Process{Parts: parts, stops: []func(){parts.Close}}, nil
}

func (p *Process) serveMetrics() error {
	ms, err := p.Parts.ServeMetrics()
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

// Stop stops what the process started, last started first: the worker or the webhook and
// relay, the metrics server, the client, then the store.
func (p *Process) Stop() {
	for i := len(p.stops) - 1; i >= 0; i-- {
		p.stops[i]()
	}
	p.stops = nil
}
