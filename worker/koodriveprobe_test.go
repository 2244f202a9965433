package worker

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kooflow/kooflow/koodrive"
)

// fakeService answers the probe's status reads in order, and closes asked after each.
type fakeService struct {
	answers []koodrive.ServiceStatus
	errs    []error
	asked   chan struct{}
	n       int
}

func (f *fakeService) GetServiceStatus(context.Context) (koodrive.ServiceStatus, error) {
	defer func() { f.n++; f.asked <- struct{}{} }()
	return f.answers[f.n], f.errs[f.n]
}

// TestKooDriveProbeReportsAFrozenTenant: the probe asks at once and at every tick; a
// normal answer and a failed call (which the client reports itself) add nothing, a frozen
// tenant is reported as the service endpoint refusing, with the tenant named.
func TestKooDriveProbeReportsAFrozenTenant(t *testing.T) {
	svc := &fakeService{
		answers: []koodrive.ServiceStatus{{Status: 0}, {}, {Status: 1, TenantID: "t-42", OrganizationName: "Carrier"}},
		errs:    []error{nil, errors.New("connection refused"), nil},
		asked:   make(chan struct{}, 3),
	}
	var mu sync.Mutex
	var reported []koodrive.Call
	p := &KooDriveProbe{KooDrive: svc, Logger: slog.New(slog.DiscardHandler), Report: func(c koodrive.Call) {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, c)
	}}
	ctx, cancel := context.WithCancel(context.Background())
	ticks := make(chan time.Time)
	done := make(chan struct{})
	go func() { p.Run(ctx, ticks); close(done) }()
	<-svc.asked // at once
	ticks <- time.Now()
	<-svc.asked
	ticks <- time.Now()
	<-svc.asked
	cancel()
	<-done
	if svc.n != 3 {
		t.Fatalf("asked %d times, want 3 (at once, then at each tick)", svc.n)
	}
	if len(reported) != 1 {
		t.Fatalf("reported %+v; want only the frozen tenant", reported)
	}
	if c := reported[0]; c.Endpoint != koodrive.ServicePath || c.Outcome != koodrive.OutcomeRejected || c.Code != koodrive.ServiceFrozenCode ||
		c.HTTPStatus != 200 || c.Message == "" || !strings.Contains(c.Message, "t-42") {
		t.Errorf("reported %+v; want the service endpoint refusing, code %s, naming t-42", c, koodrive.ServiceFrozenCode)
	}
}
