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
func SmartHubSubject(gIccid, packageCode string) string { return store.SIMSubject(gIccid, packageCode) }

// AcceptSmartHubExpiry judges a stored SmartHub package-expired push by the rule book
// and durably accepts it (workflow ID expire/smarthub/sub<subscription ID>/<validThru>),
// marking the event started. A SIM not in the registry marks the event unmatched and
// returns ErrUnmatched: fix the registry and replay it. An expiry the rule book ignores
// (a released SIM, or a validThru period older than the newest one known for the SIM
// package) marks the event stored with the reason, adds an "ignored" event to the
// subscription's history, and is returned with the verdict.
func (i *Intake) AcceptSmartHubExpiry(ctx context.Context, ev store.SmartHubEvent, delivery store.Delivery) (Verdict, store.Acceptance, error) {
	sub, err := i.Store.SubscriptionBySIM(ctx, ev.GIccid, ev.PackageCode)
	if errors.Is(err, store.ErrNotFound) {
		detail := fmt.Sprintf("SIM %s package %s is not in the registry: import it, then `kooflow replay %s`", ev.GIccid, ev.PackageCode, ev.EventID)
		if err := i.Store.SetSmartHubEventStatus(ctx, ev.EventID, store.EventUnmatched, "", detail); err != nil {
			return Verdict{}, store.Acceptance{}, err
		}
		return Verdict{}, store.Acceptance{}, fmt.Errorf("SmartHub event %s: %w", ev.EventID, ErrUnmatched)
	}
	if err != nil {
		return Verdict{}, store.Acceptance{}, err
	}
	latest, err := i.Store.LatestPeriod(ctx, SourceSmartHub, SmartHubSubject(ev.GIccid, ev.PackageCode))
	if err != nil {
		return Verdict{}, store.Acceptance{}, err
	}
	v := SmartHubExpiry(sub, ev.ValidThru, latest)
	if !v.Accept {
		return v, store.Acceptance{}, i.Store.IgnoreSmartHubExpiry(ctx, ev.EventID, sub.ID, v.Ignored)
	}
	acc, err := i.AcceptExpiry(ctx, v, delivery, ev.EventID)
	return v, acc, err
}
