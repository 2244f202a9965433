// Package rules is kooflow's expiry rule book: whether an expiry reported for a
// registered subscription still stands, whoever reports it — KooGallery V1 or V2,
// SmartHub, an operator's `kooflow expire` — and, checked again when the workflow runs,
// whether it still stands then. Every entry point and the expiration workflow ask these
// functions, so the rules cannot drift apart between them.
package rules

import (
	"fmt"
	"time"

	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/records"
)

// RenewedTolerance separates a renewed instance from one whose expiry KooGallery reports
// a little early: an expiry of an instance whose registered expiry time is more than this
// in the future was overtaken by a renewal (a late retry, or an out-of-order delivery)
// and is ignored. **Assumed**: KooGallery does not document how early it may report an
// expiry; one hour matches its one-hour retry rule.
const RenewedTolerance = time.Hour

// Judgement is the rule book's answer. The zero Judgement means the expiry is due.
type Judgement struct {
	// Overtaken is the final state of an expiry that no longer stands:
	// contract.StateRenewed or contract.StateReleased; empty when the expiry is due.
	Overtaken string
	// Reason says why, for the sender and the record.
	Reason string
}

// Due reports whether the expiry stands: freeze, and tell KooDrive.
func (j Judgement) Due() bool { return j.Overtaken == "" }

// KooGalleryExpiry judges an expiry (expireInstance, or a status change to FREEZE) of
// sub at now:
//   - a released instance has nothing to freeze;
//   - an instance registered to expire more than RenewedTolerance after now was renewed
//     since, so the expiry is ignored;
//   - otherwise the expiry of the instance's current period is due.
func KooGalleryExpiry(sub records.Subscription, now time.Time) Judgement {
	switch {
	case sub.Status == records.StatusReleased:
		return Judgement{Overtaken: contract.StateReleased, Reason: "instance is released; nothing to freeze"}
	case !sub.ExpireTime.IsZero() && sub.ExpireTime.After(now.Add(RenewedTolerance)):
		return Judgement{Overtaken: contract.StateRenewed, Reason: fmt.Sprintf(
			"the registry has this instance running until %s, more than %s from now (renewed); this expiry is ignored",
			sub.ExpireTime.UTC().Format(time.RFC3339), RenewedTolerance)}
	}
	return Judgement{}
}

// SmartHubExpiry judges a SmartHub package expiry of sub: a released subscription has
// nothing to freeze; otherwise the expiry of the period ending at the push's validThru is
// due (SmartHub periods are the package's validThru, not the registry's expiry time).
func SmartHubExpiry(sub records.Subscription) Judgement {
	if sub.Status == records.StatusReleased {
		return Judgement{Overtaken: contract.StateReleased, Reason: "subscription is released; nothing to freeze"}
	}
	return Judgement{}
}

// SmartHubPeriod judges the period a SmartHub package-expired push reports (the one that
// ended at its validThru, in records.PeriodLayout) against latest, the newest period already
// known for the SIM package ("" when none): an older period was overtaken — the SIM's
// newer period is known, so a late or out-of-order push must neither freeze the SIM for
// an old period again nor tell KooDrive again. It is acknowledged and ignored. The same
// period is due (and found again by the intake's deduplication); a newer one is due.
func SmartHubPeriod(period, latest string) Judgement {
	if latest != "" && period < latest {
		return Judgement{Overtaken: contract.StateRenewed, Reason: fmt.Sprintf(
			"validThru period %s is older than this SIM package's latest known period %s (a late or out-of-order push); acknowledged and ignored",
			period, latest)}
	}
	return Judgement{}
}
