package worker

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/kooflow/kooflow/koodrive"
)

// ServiceStatusReader reads the tenant's KooDrive service status; *koodrive.Client
// implements it.
type ServiceStatusReader interface {
	GetServiceStatus(ctx context.Context) (koodrive.ServiceStatus, error)
}

// kooDriveProbeTimeout bounds one probe: the client's own timeout is 15 s.
const kooDriveProbeTimeout = 30 * time.Second

// KooDriveProbe asks KooDrive for the tenant's service status now and at every tick, so
// the console's overview knows whether KooDrive answers and accepts kooflow's credentials
// even when no expiry is due: at 3 a.m. a credential that died is on the overview within
// minutes, not at the month-end storm. The call reaches the KooDrive health recorder as
// every call does (the client reports it); a tenant KooDrive reports frozen is reported
// to it as a refusal of the service endpoint (koodrive.ServiceFrozenCode), which the overview asks
// an operator about.
type KooDriveProbe struct {
	KooDrive ServiceStatusReader
	// Report takes the probe's verdict on a frozen tenant: the recorder's Report.
	Report func(koodrive.Call)
	Logger *slog.Logger
}

// Run probes at once and at every tick until ctx ends.
func (p *KooDriveProbe) Run(ctx context.Context, ticks <-chan time.Time) {
	p.probe(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
			p.probe(ctx)
		}
	}
}

// Start runs the probe every interval in the background; stop ends it.
func (p *KooDriveProbe) Start(interval time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ticker := time.NewTicker(interval)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx, ticker.C)
	}()
	return func() {
		ticker.Stop()
		cancel()
		<-done
	}
}

func (p *KooDriveProbe) probe(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, kooDriveProbeTimeout)
	defer cancel()
	status, err := p.KooDrive.GetServiceStatus(ctx)
	switch {
	case ctx.Err() != nil && err != nil:
		return // stopping
	case err != nil:
		p.Logger.Warn("KooDrive service status probe failed", "error", err)
	case status.Frozen():
		msg := fmt.Sprintf("KooDrive reports the tenant %s (%s) frozen: it serves kooflow again once the carrier's KooDrive subscription is unfrozen",
			status.TenantID, status.OrganizationName)
		p.Logger.Warn("KooDrive service frozen", "tenantId", status.TenantID)
		p.Report(koodrive.Call{Endpoint: koodrive.ServicePath, Outcome: koodrive.OutcomeRejected, HTTPStatus: http.StatusOK,
			Code: koodrive.ServiceFrozenCode, Message: msg})
	}
}
