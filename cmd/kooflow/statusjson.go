package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/kooflow/kooflow/store"
)

// statusJSON is status -o json: the table's facts for scripts, no error cut.
type statusJSON struct {
	// Query is the identifier status was asked about; Matches are the subscriptions it
	// names, each with the kind of identifier that matched (moreMatches: it names more
	// than are listed). With several matches, subject, registry, deliveries and
	// operatorActions are absent and expirations and the queue are empty.
	Query       string      `json:"query,omitempty"`
	Matches     []matchJSON `json:"matches,omitempty"`
	MoreMatches bool        `json:"moreMatches,omitempty"`
	// UnmatchedPushes are the SmartHub pushes waiting, unmatched, for the matches' SIMs
	// or the query read as a SIM (replay each with kooflow replay <eventId>).
	UnmatchedPushes []unmatchedEventJSON `json:"unmatchedPushes,omitempty"`
	// Subject and Registry are present when status was asked about one subscription.
	Subject     string           `json:"subject,omitempty"`
	Registry    *registryJSON    `json:"registry,omitempty"`
	Expirations []expirationJSON `json:"expirations"`
	Counts      countsJSON       `json:"counts"`
	Queue       queueJSON        `json:"queue"`
	// Deliveries and OperatorActions are present when status was asked about one subject.
	Deliveries      []deliveryJSON   `json:"deliveries,omitempty"`
	OperatorActions []auditEntryJSON `json:"operatorActions,omitempty"`
	// Temporal says whether the open expirations shown were checked against Temporal.
	Temporal temporalCheckJSON `json:"temporal"`
}

// temporalCheckJSON is what status learned from Temporal: checked is false when nothing
// shown could still run; unconfirmed says why Temporal could not be asked (the states
// are then kooflow's record); drift lists the expirations found ended outside kooflow.
type temporalCheckJSON struct {
	Checked     bool        `json:"checked"`
	Unconfirmed string      `json:"unconfirmed,omitempty"`
	Drift       []driftJSON `json:"drift,omitempty"`
}

// driftJSON is an expiration found ended in Temporal outside kooflow.
type driftJSON struct {
	WorkflowID     string `json:"workflowId"`
	TemporalStatus string `json:"temporalStatus"`
	State          string `json:"state"`
}

// matchJSON is one subscription an identifier names: how it matched (kind, one of
// store.MatchKinds: instanceId, workflowId, gIccid/packageCode, gIccid, orderId,
// carrierOrderId, carrierUserId), the subject kooflow knows it by, its registry entry and
// its newest expirations.
type matchJSON struct {
	Kind           string                `json:"kind"`
	Subject        string                `json:"subject"`
	InstanceID     string                `json:"instanceId,omitempty"`
	GIccid         string                `json:"gIccid,omitempty"`
	PackageCode    string                `json:"packageCode,omitempty"`
	OrderID        string                `json:"orderId,omitempty"`
	CarrierOrderID string                `json:"carrierOrderId,omitempty"`
	Status         string                `json:"status"`
	CarrierUserID  string                `json:"carrierUserId"`
	PackageID      string                `json:"packageId"`
	ExpireTime     *time.Time            `json:"expireTime,omitempty"`
	Expirations    []matchExpirationJSON `json:"expirations"`
	// MoreExpirations is set when the subscription has more expirations than listed.
	MoreExpirations bool `json:"moreExpirations,omitempty"`
}

// matchExpirationJSON is one expiration of a match, and where it stands.
type matchExpirationJSON struct {
	WorkflowID string `json:"workflowId"`
	State      string `json:"state"`
	Test       bool   `json:"test"`
}

// registryJSON is a subject's registry entry; Known is false when the registry lacks it.
type registryJSON struct {
	Known         bool        `json:"known"`
	Status        string      `json:"status,omitempty"`
	CarrierUserID string      `json:"carrierUserId,omitempty"`
	PackageID     string      `json:"packageId,omitempty"`
	ExpireTime    *time.Time  `json:"expireTime,omitempty"`
	FrozenPeriod  string      `json:"frozenPeriod,omitempty"`
	History       []eventJSON `json:"history,omitempty"`
}

// eventJSON is one entry of a subscription's history.
type eventJSON struct {
	At     time.Time `json:"at"`
	Event  string    `json:"event"`
	Detail string    `json:"detail,omitempty"`
	// ImportID is the registry import that made the event, if one did.
	ImportID int64 `json:"importId,omitempty"`
}

// expirationJSON is one expiration and where it stands, its last error whole.
type expirationJSON struct {
	WorkflowID    string    `json:"workflowId"`
	Source        string    `json:"source"`
	Subject       string    `json:"subject"`
	Period        string    `json:"period"`
	State         string    `json:"state"`
	Test          bool      `json:"test"`
	Attempts      int       `json:"attempts"`
	CarrierUserID string    `json:"carrierUserId"`
	PackageID     string    `json:"packageId"`
	UpdatedAt     time.Time `json:"updatedAt"`
	LastError     string    `json:"lastError"`
}

// countsJSON counts every state, live expirations and test rehearsals apart, zeros included.
type countsJSON struct {
	Live map[string]int `json:"live"`
	Test map[string]int `json:"test"`
}

// queueJSON is the intake queue: for every subject its size and oldest acceptance, and the
// queued intents listed.
type queueJSON struct {
	Pending *int         `json:"pending,omitempty"`
	Oldest  *time.Time   `json:"oldest,omitempty"`
	Intents []queuedJSON `json:"intents"`
}

// queuedJSON is one intent the intake accepted and Temporal has not been handed yet.
type queuedJSON struct {
	Kind       string    `json:"kind"`
	WorkflowID string    `json:"workflowId,omitempty"`
	Subject    string    `json:"subject"`
	Accepted   time.Time `json:"accepted"`
	Tries      int       `json:"tries"`
	LastError  string    `json:"lastError"`
}

// json turns rep into status -o json's document.
func (rep statusReport) json() statusJSON {
	doc := statusJSON{
		Query:       rep.Query,
		MoreMatches: rep.MoreMatches,
		Subject:     rep.Subject,
		Expirations: make([]expirationJSON, 0, len(rep.Expirations)),
		Counts:      countsJSON{Live: map[string]int{}, Test: map[string]int{}},
		Queue:       queueJSON{Intents: make([]queuedJSON, 0, len(rep.Queued))},
		Temporal:    temporalCheckJSON{Checked: rep.Live.Asked && rep.Live.Unconfirmed == "", Unconfirmed: rep.Live.Unconfirmed},
	}
	for _, d := range rep.Live.Drift {
		doc.Temporal.Drift = append(doc.Temporal.Drift, driftJSON{WorkflowID: d.WorkflowID, TemporalStatus: d.Status, State: d.State})
	}
	for _, m := range rep.Matches {
		doc.Matches = append(doc.Matches, matchOf(m))
	}
	for _, e := range rep.Unmatched {
		doc.UnmatchedPushes = append(doc.UnmatchedPushes, unmatchedEventOf(e))
	}
	if rep.Subject != "" {
		doc.Registry = registryOf(rep.Subscription, rep.History)
		doc.Deliveries, doc.OperatorActions = deliveriesJSON(rep.Deliveries), auditJSON(rep.Actions)
	}
	for _, e := range rep.Expirations {
		doc.Expirations = append(doc.Expirations, expirationJSON{
			WorkflowID: e.WorkflowID, Source: e.Source, Subject: e.Subject, Period: e.Period, State: e.State, Test: e.Test,
			Attempts: e.Attempts, CarrierUserID: e.CarrierUserID, PackageID: e.PackageID, UpdatedAt: e.UpdatedAt, LastError: e.LastError,
		})
	}
	for _, s := range store.States {
		doc.Counts.Live[s], doc.Counts.Test[s] = rep.Counts.Live[s], rep.Counts.Test[s]
	}
	if rep.Query == "" {
		pending := rep.Backlog.Pending
		doc.Queue.Pending = &pending
		if !rep.Backlog.Oldest.IsZero() {
			oldest := rep.Backlog.Oldest
			doc.Queue.Oldest = &oldest
		}
	}
	for _, in := range rep.Queued {
		q := queuedJSON{Kind: in.Kind, Subject: in.Subject, Accepted: in.CreatedAt, Tries: in.Attempts, LastError: in.LastError}
		if in.Kind != store.IntentStop {
			q.WorkflowID = in.WorkflowID
		}
		doc.Queue.Intents = append(doc.Queue.Intents, q)
	}
	return doc
}

// matchOf is one match for JSON.
func matchOf(m subjectMatch) matchJSON {
	sub := m.Subscription
	j := matchJSON{Kind: string(m.Kind), Subject: m.Subject, InstanceID: sub.InstanceID, GIccid: sub.GIccid, PackageCode: sub.PackageCode,
		OrderID: sub.OrderID, CarrierOrderID: sub.CarrierOrderID, Status: sub.Status, CarrierUserID: sub.CarrierUserID, PackageID: sub.PackageID,
		Expirations: make([]matchExpirationJSON, 0, len(m.Expirations)), MoreExpirations: m.MoreExpirations}
	if !sub.ExpireTime.IsZero() {
		t := sub.ExpireTime
		j.ExpireTime = &t
	}
	for _, e := range m.Expirations {
		j.Expirations = append(j.Expirations, matchExpirationJSON{WorkflowID: e.WorkflowID, State: e.State, Test: e.Test})
	}
	return j
}

// registryOf is a subject's registry entry for JSON, or {"known": false} for none.
func registryOf(sub *store.Subscription, history []store.Event) *registryJSON {
	if sub == nil {
		return &registryJSON{}
	}
	r := &registryJSON{Known: true, Status: sub.Status, CarrierUserID: sub.CarrierUserID, PackageID: sub.PackageID, FrozenPeriod: sub.FrozenPeriod}
	if !sub.ExpireTime.IsZero() {
		t := sub.ExpireTime
		r.ExpireTime = &t
	}
	for _, e := range history {
		r.History = append(r.History, eventJSON{At: e.At, Event: e.Event, Detail: e.Detail, ImportID: e.ImportID})
	}
	return r
}

// unmatchedEventJSON is a SmartHub expiry whose SIM/package is not in the registry.
type unmatchedEventJSON struct {
	EventID     string    `json:"eventId"`
	ReceivedAt  time.Time `json:"receivedAt"`
	GIccid      string    `json:"gIccid"`
	PackageCode string    `json:"packageCode"`
	ValidThru   time.Time `json:"validThru"`
}

// unmatchedJSON is status --unmatched -o json's document.
func unmatchedJSON(events []store.SmartHubEvent) map[string][]unmatchedEventJSON {
	list := make([]unmatchedEventJSON, 0, len(events))
	for _, e := range events {
		list = append(list, unmatchedEventOf(e))
	}
	return map[string][]unmatchedEventJSON{"unmatched": list}
}

// unmatchedEventOf is one unmatched SmartHub push for JSON.
func unmatchedEventOf(e store.SmartHubEvent) unmatchedEventJSON {
	return unmatchedEventJSON{EventID: e.EventID, ReceivedAt: e.ReceivedAt, GIccid: e.GIccid, PackageCode: e.PackageCode, ValidThru: e.ValidThru}
}

// writeJSON writes v as indented JSON.
func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}
