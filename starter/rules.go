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
	// Rule names the rule that ignored or held the expiry (rules.Rule*).
	Rule string
	// Conflict, when set, says why the expiry is held for an operator instead of run
	// (rules.Judgement.Conflict); Input and WorkflowID name the expiry it would run.
	Conflict string
}

// Held reports whether the expiry is a conflict held for an operator.
func (v Verdict) Held() bool { return v.Conflict != "" }

// RunByOperator is v as an operator decides it: a held conflict is run (the operator
// checked the registry and confirms the expiry); any other verdict is unchanged.
func (v Verdict) RunByOperator() Verdict {
	if v.Held() {
		v.Accept = true
	}
	return v
}

// KooGalleryExpiry judges a KooGallery expiry of sub (a test rehearsal when test is set)
// by rules.KooGalleryExpiry, naming the instance's current period when it is due.
func KooGalleryExpiry(sub store.Subscription, test bool, now time.Time) Verdict {
	j := rules.KooGalleryExpiry(sub, now)
	if j.Overtaken != "" {
		return Verdict{Ignored: j.Reason, Rule: j.Rule}
	}
	in := ExpirationInput(SourceKooGallery, sub.InstanceID, sub, test)
	if j.Conflict {
		return Verdict{Conflict: j.Reason, Rule: j.Rule, Input: in, WorkflowID: ExpirationWorkflowID(in)}
	}
	return Verdict{Accept: true, Input: in, WorkflowID: ExpirationWorkflowID(in)}
}

// SmartHubExpiry judges a SmartHub package-expired push for sub, the SIM package it
// names, whose validity ended at validThru, by rules.SmartHubExpiry and, against
// latestPeriod (the newest period already known for the SIM package, "" when none), by
// rules.SmartHubPeriod.
func SmartHubExpiry(sub store.Subscription, validThru time.Time, latestPeriod string) Verdict {
	if j := rules.SmartHubExpiry(sub); !j.Due() {
		return Verdict{Ignored: j.Reason, Rule: j.Rule}
	}
	period := validThru.UTC().Format(periodLayout)
	if j := rules.SmartHubPeriod(period, latestPeriod); !j.Due() {
		return Verdict{Ignored: j.Reason, Rule: j.Rule}
	}
	in := ExpirationInput(SourceSmartHub, SmartHubSubject(sub.GIccid, sub.PackageCode), sub, false)
	in.Period = period
	return Verdict{Accept: true, Input: in, WorkflowID: ExpirationWorkflowID(in)}
}
