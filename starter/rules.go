package starter

import (
	"time"

	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/rules"
	"github.com/kooflow/kooflow/store"
)

// Verdict is the rule book's answer (package rules) for one reported expiry, with what
// it takes to run it when it is due.
type Verdict struct {
	// Accept is true when the expiry must run: freeze and tell KooDrive.
	Accept bool
	// Input is the workflow input of an accepted expiry.
	Input contract.ExpirationInput
	// WorkflowID names the accepted expiry.
	WorkflowID string
	// Ignored says, for the sender and the record, why an expiry that is acknowledged
	// does nothing.
	Ignored string
}

// KooGalleryExpiry judges a KooGallery expiry of sub (a test rehearsal when test is set)
// by rules.KooGalleryExpiry, naming the instance's current period when it is due.
func KooGalleryExpiry(sub store.Subscription, test bool, now time.Time) Verdict {
	if j := rules.KooGalleryExpiry(sub, now); !j.Due() {
		return Verdict{Ignored: j.Reason}
	}
	in := ExpirationInput(SourceKooGallery, sub.InstanceID, sub, test)
	return Verdict{Accept: true, Input: in, WorkflowID: ExpirationWorkflowID(in)}
}

// SmartHubExpiry judges a SmartHub package-expired push for sub, the SIM package it
// names, whose validity ended at validThru, by rules.SmartHubExpiry and, against
// latestPeriod (the newest period already known for the SIM package, "" when none), by
// rules.SmartHubPeriod.
func SmartHubExpiry(sub store.Subscription, validThru time.Time, latestPeriod string) Verdict {
	if j := rules.SmartHubExpiry(sub); !j.Due() {
		return Verdict{Ignored: j.Reason}
	}
	period := validThru.UTC().Format(periodLayout)
	if j := rules.SmartHubPeriod(period, latestPeriod); !j.Due() {
		return Verdict{Ignored: j.Reason}
	}
	in := ExpirationInput(SourceSmartHub, SmartHubSubject(sub.GIccid, sub.PackageCode), sub, false)
	in.Period = period
	return Verdict{Accept: true, Input: in, WorkflowID: ExpirationWorkflowID(in)}
}
