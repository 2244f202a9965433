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
	// contract.StateRenewed or contract.StateReleased; empty when the expiry is due or
	// in conflict.
	Overtaken string
	// Conflict is set when the expiry contradicts the registry and nothing KooGallery
	// reported explains it: it is held (contract.StateConflict) for an operator.
	Conflict bool
	// Rule names the rule that decided, for the delivery log: one of the Rule* names;
	// empty when the expiry is due.
	Rule string
	// Reason says why, for the sender and the record.
	Reason string
}

// The rules' names, as recorded with an ignored or held delivery.
const (
	RuleReleased         = "released"
	RuleRenewed          = "renewed-by-koogallery"
	RuleRegistryConflict = "registry-date-conflict"
	RuleOlderPeriod      = "older-period"
)

// Due reports whether the expiry stands: freeze, and tell KooDrive.
func (j Judgement) Due() bool { return j.Overtaken == "" && !j.Conflict }

// KooGalleryExpiry judges an expiry (expireInstance, or a status change to FREEZE) of
// sub at now. This is the one place the rule lives:
//   - a released instance has nothing to freeze (overtaken: released);
//   - an instance that KooGallery itself renewed (refreshInstance, recorded as
//     sub.RenewedUntil) to more than RenewedTolerance after now was renewed since: the
//     expiry is a late or out-of-order delivery and is ignored (overtaken: renewed);
//   - an instance whose registry date alone is more than RenewedTolerance after now,
//     with no renewal from KooGallery behind it (an import with a wrong or stale date), is
//     a conflict: KooGallery says the customer stopped paying, the registry disagrees,
//     and only an operator can say which is right. Ignoring it would leave the customer
//     a package nobody pays for; running it could freeze a paid one. It is held;
//   - otherwise the expiry of the instance's current period is due.
func KooGalleryExpiry(sub records.Subscription, now time.Time) Judgement {
	horizon := now.Add(RenewedTolerance)
	switch {
	case sub.Status == records.StatusReleased:
		return Judgement{Overtaken: contract.StateReleased, Rule: RuleReleased, Reason: "instance is released; nothing to freeze"}
	case !sub.RenewedUntil.IsZero() && sub.RenewedUntil.After(horizon):
		return Judgement{Overtaken: contract.StateRenewed, Rule: RuleRenewed, Reason: fmt.Sprintf(
			"KooGallery renewed this instance until %s, more than %s from now; this expiry is ignored",
			sub.RenewedUntil.UTC().Format(time.RFC3339), RenewedTolerance)}
	case !sub.ExpireTime.IsZero() && sub.ExpireTime.After(horizon):
		return Judgement{Conflict: true, Rule: RuleRegistryConflict, Reason: fmt.Sprintf(
			"KooGallery reported this instance expired at %s, but the registry has it running until %s and KooGallery reported no renewal: "+
				"held for an operator (check the registry; `kooflow expire --instance %s` runs the expiry, a renewal or release from KooGallery ends it)",
			now.UTC().Format(time.RFC3339), sub.ExpireTime.UTC().Format(time.RFC3339), sub.InstanceID)}
	}
	return Judgement{}
}

// SmartHubExpiry judges a SmartHub package expiry of sub: a released subscription has
// nothing to freeze; otherwise the expiry of the period ending at the push's validThru is
// due (SmartHub periods are the package's validThru, not the registry's expiry time).
func SmartHubExpiry(sub records.Subscription) Judgement {
	if sub.Status == records.StatusReleased {
		return Judgement{Overtaken: contract.StateReleased, Rule: RuleReleased, Reason: "subscription is released; nothing to freeze"}
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
		return Judgement{Overtaken: contract.StateRenewed, Rule: RuleOlderPeriod, Reason: fmt.Sprintf(
			"validThru period %s is older than this SIM package's latest known period %s (a late or out-of-order push); acknowledged and ignored",
			period, latest)}
	}
	return Judgement{}
}
