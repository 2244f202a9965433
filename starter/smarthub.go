package starter

import (
	"context"
	"errors"
	"fmt"

	"github.com/kooflow/kooflow/store"
)

// ErrUnmatched means a SmartHub expiry names a SIM/package the registry does not know.
var ErrUnmatched = errors.New("SIM and package are not in the registry")

// SmartHubSubject names a SIM package: gIccid/packageCode.
func SmartHubSubject(gIccid, packageCode string) string { return gIccid + "/" + packageCode }

// StartSmartHubExpiry starts the expiration workflow for a stored SmartHub
// package-expired push, with ID expire/smarthub/<gIccid>/<packageCode>/<validThru>, and
// records on the event what became of it. A SIM not in the registry marks the event
// unmatched and returns ErrUnmatched; fix the registry and replay it.
func (s *Starter) StartSmartHubExpiry(ctx context.Context, ev store.SmartHubEvent) (StartResult, error) {
	sub, err := s.Store.SubscriptionBySIM(ctx, ev.GIccid, ev.PackageCode)
	if errors.Is(err, store.ErrNotFound) {
		detail := fmt.Sprintf("SIM %s package %s is not in the registry: import it, then `kooflow replay %s`", ev.GIccid, ev.PackageCode, ev.EventID)
		if err := s.Store.SetSmartHubEventStatus(ctx, ev.EventID, store.EventUnmatched, "", detail); err != nil {
			return StartResult{}, err
		}
		return StartResult{}, fmt.Errorf("SmartHub event %s: %w", ev.EventID, ErrUnmatched)
	}
	if err != nil {
		return StartResult{}, err
	}
	in := ExpirationInput(SourceSmartHub, SmartHubSubject(ev.GIccid, ev.PackageCode), sub, false)
	in.Period = ev.ValidThru.UTC().Format(periodLayout)
	res, err := s.StartExpiration(ctx, in)
	if err != nil {
		return StartResult{}, err
	}
	if err := s.Store.SetSmartHubEventStatus(ctx, ev.EventID, store.EventStarted, res.WorkflowID, ""); err != nil {
		return res, err
	}
	return res, nil
}
