package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// MatchKind names the kind of identifier a subscription was found by.
type MatchKind string

// The kinds of identifier FindSubscriptions tries, in MatchKinds' order. The values are
// stable (they are what `kooflow status -o json` reports).
const (
	// MatchInstance: a KooGallery instance ID.
	MatchInstance MatchKind = "instanceId"
	// MatchWorkflow: the workflow ID of an expiration kooflow accepted
	// (expire/koogallery/<instance>/<period>, expire/smarthub/sub<id>/<period>[/test]),
	// found in the expirations table.
	MatchWorkflow MatchKind = "workflowId"
	// MatchSIM: a SmartHub SIM package, gIccid/packageCode.
	MatchSIM MatchKind = "gIccid/packageCode"
	// MatchICCID: a bare gIccid, every package of the SIM.
	MatchICCID MatchKind = "gIccid"
	// MatchOrder: KooGallery's purchase order ID (orderId).
	MatchOrder MatchKind = "orderId"
	// MatchCarrierOrder: the carrier's order ID (carrierOrderId).
	MatchCarrierOrder MatchKind = "carrierOrderId"
	// MatchCarrierUser: the carrier user ID, every package of the user.
	MatchCarrierUser MatchKind = "carrierUserId"
)

// MatchKinds lists every kind of identifier FindSubscriptions tries, in order of
// precedence: a subscription an identifier names in several ways is reported once, as
// the first of them.
var MatchKinds = []MatchKind{MatchInstance, MatchWorkflow, MatchSIM, MatchICCID, MatchOrder, MatchCarrierOrder, MatchCarrierUser}

// Noun is how operators call the kind: "instance ID", "carrier user id", …
func (k MatchKind) Noun() string {
	switch k {
	case MatchInstance:
		return "instance ID"
	case MatchWorkflow:
		return "workflow ID"
	case MatchSIM:
		return "ICCID/packageCode"
	case MatchICCID:
		return "ICCID"
	case MatchOrder:
		return "order id"
	case MatchCarrierOrder:
		return "carrier order id"
	case MatchCarrierUser:
		return "carrier user id"
	}
	return string(k)
}

// Match is one subscription an identifier names, and how it names it.
type Match struct {
	// Kind is the kind of identifier that matched (the first in MatchKinds' order when
	// the identifier names the subscription in several ways).
	Kind MatchKind
	// Subject is the name kooflow's expirations, deliveries and intents know the
	// subscription by: the subject of the expiration for a workflow ID, the SIM
	// (gIccid/packageCode) for an ICCID, else the instance ID when the subscription has
	// one, else its SIM, else its order ID.
	Subject      string
	Subscription Subscription
}

// SIMSubject names a SIM package as expirations and intents do: gIccid/packageCode, as
// starter.SmartHubSubject writes it.
func SIMSubject(gIccid, packageCode string) string { return gIccid + "/" + packageCode }

// Subjects returns every subject kooflow may have recorded about sub: its instance ID
// (KooGallery's expirations) and its SIM package (SmartHub's), those it has.
func Subjects(sub Subscription) []string {
	var out []string
	if sub.InstanceID != "" {
		out = append(out, sub.InstanceID)
	}
	if sub.GIccid != "" {
		out = append(out, SIMSubject(sub.GIccid, sub.PackageCode))
	}
	return out
}

// findBranch is one kind's indexed lookup: a SELECT of (subscription id, rank, subject)
// and the arguments of its '?'s.
type findBranch struct {
	query string
	args  []any
}

// FindSubscriptions returns the subscriptions identifier names — as an instance ID, a
// workflow ID, gIccid/packageCode, a bare gIccid, an order ID, a carrier order ID or a
// carrier user ID — at most limit of them (100 when limit is not positive), ordered by
// the kind that matched (MatchKinds' order), then by registry ID. None is not an error:
// the result is empty.
//
// It is one query, every kind served by an index (see migrations 0001, 0004, 0006,
// 0008), so a registry of millions answers in milliseconds.
func (s *Store) FindSubscriptions(ctx context.Context, identifier string, limit int) ([]Match, error) {
	if strings.TrimSpace(identifier) == "" {
		return nil, errors.New("find subscriptions: the identifier is empty")
	}
	if limit <= 0 {
		limit = 100
	}
	query, args := s.findQuery(identifier, limit)
	rows, err := s.db.QueryContext(ctx, s.rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("find subscriptions for %q: %w", identifier, err)
	}
	defer rows.Close()
	var out []Match
	for rows.Next() {
		var (
			rank    int
			subject string
		)
		sub, err := scanSubscription(prefixScanner{rows, []any{&rank, &subject}})
		if err != nil {
			return nil, fmt.Errorf("find subscriptions for %q: %w", identifier, err)
		}
		if rank < 0 || rank >= len(MatchKinds) {
			return nil, fmt.Errorf("find subscriptions for %q: unknown match rank %d", identifier, rank)
		}
		out = append(out, Match{Kind: MatchKinds[rank], Subject: matchSubject(MatchKinds[rank], subject, sub), Subscription: sub})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find subscriptions for %q: %w", identifier, err)
	}
	return out, nil
}

// findQuery builds FindSubscriptions' query: a UNION ALL of one indexed lookup per kind
// (the SIM kind only for an identifier with a '/'), reduced to one row per subscription
// with its best rank, joined to the registry.
//
// Each lookup is written so that its index serves it on SQLite and in PostgreSQL's
// generic plans: order_id and carrier_order_id with the non-empty test of their partial
// indexes, and g_iccid = ? implying the SIM index's "g_iccid IS NOT NULL".
func (s *Store) findQuery(identifier string, limit int) (string, []any) {
	rank := func(k MatchKind) int {
		for i, kind := range MatchKinds {
			if kind == k {
				return i
			}
		}
		panic("unknown match kind " + string(k))
	}
	sel := func(k MatchKind, where string) string {
		return fmt.Sprintf("SELECT id AS sub_id, %d AS match_rank, CAST('' AS TEXT) AS match_subject FROM subscriptions WHERE %s", rank(k), where)
	}
	branches := []findBranch{
		{sel(MatchInstance, "instance_id = ?"), []any{identifier}},
		{fmt.Sprintf("SELECT subscription_id AS sub_id, %d AS match_rank, subject AS match_subject FROM expirations WHERE workflow_id = ?", rank(MatchWorkflow)), []any{identifier}},
	}
	if iccid, pkg, ok := strings.Cut(identifier, "/"); ok {
		branches = append(branches, findBranch{sel(MatchSIM, "g_iccid = ? AND package_code = ?"), []any{iccid, pkg}})
	}
	branches = append(branches,
		findBranch{sel(MatchICCID, "g_iccid = ?"), []any{identifier}},
		findBranch{sel(MatchOrder, "order_id = ? AND order_id <> ''"), []any{identifier}},
		findBranch{sel(MatchCarrierOrder, "carrier_order_id = ? AND carrier_order_id <> ''"), []any{identifier}},
		findBranch{sel(MatchCarrierUser, "carrier_user_id = ?"), []any{identifier}},
	)
	var (
		parts []string
		args  []any
	)
	for _, b := range branches {
		parts = append(parts, b.query)
		args = append(args, b.args...)
	}
	// Only the workflow lookup names a subject (its expiration's): MAX keeps it for a
	// subscription found that way.
	query := `SELECT m.match_rank, m.match_subject, ` + subscriptionColumns + `
 FROM (SELECT sub_id, MIN(match_rank) AS match_rank, MAX(match_subject) AS match_subject
       FROM (` + strings.Join(parts, "\n UNION ALL ") + `) found GROUP BY sub_id) m
 JOIN subscriptions ON subscriptions.id = m.sub_id
 ORDER BY m.match_rank, subscriptions.id LIMIT ?`
	return query, append(args, limit)
}

// matchSubject is the subject of a subscription found by kind: the expiration's for a
// workflow ID, the SIM for gIccid/packageCode or gIccid, else the instance ID when the
// subscription has one, else its SIM, else its order ID.
func matchSubject(kind MatchKind, expirationSubject string, sub Subscription) string {
	switch {
	case kind == MatchWorkflow && expirationSubject != "":
		return expirationSubject
	case (kind == MatchSIM || kind == MatchICCID) && sub.GIccid != "":
		return SIMSubject(sub.GIccid, sub.PackageCode)
	case sub.InstanceID != "":
		return sub.InstanceID
	case sub.GIccid != "":
		return SIMSubject(sub.GIccid, sub.PackageCode)
	}
	return sub.OrderID
}

// prefixScanner scans the first columns of a row into head, the rest into the
// arguments of Scan.
type prefixScanner struct {
	row  interface{ Scan(...any) error }
	head []any
}

// Scan scans the row into p.head followed by dest.
func (p prefixScanner) Scan(dest ...any) error {
	return p.row.Scan(append(append([]any{}, p.head...), dest...)...)
}
