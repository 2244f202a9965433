package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Intent kinds.
const (
	// IntentStart starts an expiry's workflow.
	IntentStart = "start"
	// IntentStop tells the open expirations of a subject that KooGallery overtook them.
	IntentStop = "stop"
)

// Intent states.
const (
	IntentPending   = "pending"
	IntentDone      = "done"
	IntentCancelled = "cancelled"
	// IntentHeld: the start of a conflict, waiting for an operator (no relay claims it).
	IntentHeld = "held"
)

// Intent outcomes, recorded when an intent is done or cancelled.
const (
	// OutcomeStarted: the relay started the workflow.
	OutcomeStarted = "started"
	// OutcomeExisting: Temporal already had the workflow (an earlier start whose answer
	// was lost, e.g. the relay crashed between start and mark).
	OutcomeExisting = "existing"
	// OutcomeSignalled: a stop was delivered to every open expiration of the subject.
	OutcomeSignalled = "signalled"
	// OutcomeOvertaken: a start cancelled before any workflow existed, because a renewal
	// or release of the subject came after it.
	OutcomeOvertaken = "overtaken"
	// OutcomeSuperseded: a held conflict's start, cancelled because an operator ran the
	// subject's expiry for another period.
	OutcomeSuperseded = "superseded"
)

// Intent is one accepted action waiting for, or delivered to, Temporal.
type Intent struct {
	ID         int64
	Kind       string
	Source     string
	Subject    string
	WorkflowID string
	// Payload is the JSON the relay delivers: the workflow input, or the stop request.
	Payload   []byte
	State     string
	Outcome   string
	Attempts  int
	LastError string
	CreatedAt time.Time
	UpdatedAt time.Time
	// AvailableAt is when the intent may next be claimed: now for a new one, the end of
	// a relay's lease, or the end of a backoff after a failed delivery.
	AvailableAt time.Time
}

// ExpiryIntent is everything intake commits for one accepted expiry, in one transaction.
type ExpiryIntent struct {
	// Expiration is the expiry's row; its WorkflowID identifies the expiry.
	Expiration Expiration
	// Input is the workflow input, JSON.
	Input []byte
	// Delivery is the call that carried the expiry, recorded with the same commit; a
	// delivery without a Source is not recorded (SmartHub's push log is its event table).
	Delivery Delivery
	// SmartHubEventID, when set, marks that stored push as started with the workflow ID.
	SmartHubEventID string
	// Hold, when set, is why the expiry is a conflict held for an operator
	// (StateConflict) instead of queued.
	Hold string
	// RunHeld is an operator's decision to run the expiry even if it is a held conflict.
	RunHeld bool
}

// Acceptance says what accepting an expiry did.
type Acceptance struct {
	WorkflowID string
	// Existing is true when the expiry was already accepted (a duplicate delivery, now or
	// months later): nothing new was queued.
	Existing bool
	// State is where the expiry stands now.
	State string
}

// AcceptExpiry commits an accepted expiry durably: its expirations row (state accepted),
// a start intent for the relay, the delivery, and the SmartHub event's status. An expiry
// already known — by its workflow ID, or by its business key (source, subject, period,
// test) under a workflow ID of an earlier naming scheme — is not queued again, and the
// acceptance names the workflow ID it was first accepted under. When this returns nil,
// the sender may be told "done": the commit is on disk.
//
// With in.Hold the expiry is a conflict held for an operator: its row is in state
// conflict with the reason, and its start intent waits in state held, seen by no relay.
// With in.RunHeld (an operator's decision) a held conflict of the same expiry is
// released: its row becomes accepted and its intent pending. Accepting a new expiry of a
// subject supersedes the subject's held conflicts (an operator corrected the registry
// and ran the expiry of the right period).
func (s *Store) AcceptExpiry(ctx context.Context, in ExpiryIntent) (Acceptance, error) {
	e := in.Expiration
	var acc Acceptance
	err := s.durableTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		acc = Acceptance{WorkflowID: e.WorkflowID, State: StateAccepted}
		now := s.stamp()
		known, heldConflict, err := s.subjectExpiries(ctx, tx, e, &acc.State)
		if err != nil {
			return err
		}
		if known != "" {
			acc.WorkflowID, acc.Existing = known, true
			return s.knownExpiry(ctx, tx, in, &acc, now)
		}
		state, intentState := StateAccepted, IntentPending
		if in.Hold != "" {
			state, intentState = StateConflict, IntentHeld
		}
		acc.State = state
		res, err := s.exec(ctx, tx, `INSERT INTO expirations (workflow_id, source, subject, period, subscription_id, carrier_user_id,
 package_id, test, state, last_error, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (workflow_id) DO NOTHING`,
			e.WorkflowID, e.Source, e.Subject, e.Period, e.SubscriptionID, e.CarrierUserID, e.PackageID, boolInt(e.Test), state, in.Hold, now, now)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			acc.Existing = true
			if err := tx.QueryRowContext(ctx, s.rebind("SELECT state FROM expirations WHERE workflow_id = ?"), e.WorkflowID).Scan(&acc.State); err != nil {
				return err
			}
			return s.knownExpiry(ctx, tx, in, &acc, now)
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO intake_intents (kind, source, subject, workflow_id, payload, state, available_at,
 created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, IntentStart, e.Source, e.Subject, e.WorkflowID, string(in.Input), intentState, now, now, now); err != nil {
			return err
		}
		if in.Hold == "" && heldConflict {
			if err := s.supersedeConflicts(ctx, tx, e, now); err != nil {
				return err
			}
		}
		return s.acceptedDelivery(ctx, tx, in, e.WorkflowID, false, now)
	})
	if err != nil {
		return Acceptance{}, fmt.Errorf("accept expiry %s: %w", e.WorkflowID, err)
	}
	return acc, nil
}

// subjectExpiries reads, in one statement, what accepting e must know of its subject's
// other expirations: known, the workflow ID of the same expiry accepted under another
// (an earlier scheme's) workflow ID, with its state in *state; and heldConflict, whether a
// conflict of the subject is held. The intake commits one of these per delivery: a
// statement fewer matters at month end.
func (s *Store) subjectExpiries(ctx context.Context, tx *sql.Tx, e Expiration, state *string) (known string, heldConflict bool, err error) {
	rows, err := tx.QueryContext(ctx, s.rebind(`SELECT workflow_id, state, period FROM expirations
 WHERE source = ? AND subject = ? AND test = ? AND workflow_id <> ? AND (period = ? OR state = ?)`),
		e.Source, e.Subject, boolInt(e.Test), e.WorkflowID, e.Period, StateConflict)
	if err != nil {
		return "", false, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, st, period string
		if err := rows.Scan(&id, &st, &period); err != nil {
			return "", false, err
		}
		if period == e.Period && known == "" {
			known, *state = id, st
		}
		heldConflict = heldConflict || st == StateConflict
	}
	return known, heldConflict, rows.Err()
}

// knownExpiry records the delivery of an expiry accepted before (acc names it) and, when
// an operator runs a held conflict (in.RunHeld), releases it to the relay.
func (s *Store) knownExpiry(ctx context.Context, tx *sql.Tx, in ExpiryIntent, acc *Acceptance, now string) error {
	if in.RunHeld && acc.State == StateConflict {
		if _, err := s.exec(ctx, tx, "UPDATE intake_intents SET state = ?, available_at = ?, updated_at = ? WHERE workflow_id = ? AND kind = ? AND state = ?",
			IntentPending, now, now, acc.WorkflowID, IntentStart, IntentHeld); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, "UPDATE expirations SET state = ?, last_error = ?, updated_at = ? WHERE workflow_id = ?",
			StateAccepted, "", now, acc.WorkflowID); err != nil {
			return err
		}
		acc.State, acc.Existing = StateAccepted, false
		return s.acceptedDelivery(ctx, tx, in, acc.WorkflowID, false, now)
	}
	return s.acceptedDelivery(ctx, tx, in, acc.WorkflowID, true, now)
}

// supersedeConflicts ends the held conflicts of e's subject other than e itself: a new
// expiry of the subject was accepted (an operator corrected the registry and ran it).
// It runs only when subjectExpiries found a held conflict.
func (s *Store) supersedeConflicts(ctx context.Context, tx *sql.Tx, e Expiration, now string) error {
	res, err := s.exec(ctx, tx, `UPDATE expirations SET state = ?, last_error = ?, updated_at = ?
 WHERE subject = ? AND source = ? AND test = ? AND state = ? AND workflow_id <> ?`,
		StateSuperseded, "superseded by "+e.WorkflowID, now, e.Subject, e.Source, boolInt(e.Test), StateConflict, e.WorkflowID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err
	}
	_, err = s.exec(ctx, tx, `UPDATE intake_intents SET state = ?, outcome = ?, updated_at = ?
 WHERE kind = ? AND subject = ? AND source = ? AND state = ? AND workflow_id <> ?`,
		IntentCancelled, OutcomeSuperseded, now, IntentStart, e.Subject, e.Source, IntentHeld, e.WorkflowID)
	return err
}

// acceptedDelivery records, with an accepted expiry, what carried it: the SmartHub
// event's status and the delivery, both naming workflowID; the delivery's outcome is
// DeliveryDuplicate when the expiry was known already, else DeliveryAccepted unless the
// caller classified it (a conflict).
func (s *Store) acceptedDelivery(ctx context.Context, tx *sql.Tx, in ExpiryIntent, workflowID string, existing bool, now string) error {
	if in.SmartHubEventID != "" {
		if _, err := s.exec(ctx, tx, "UPDATE smarthub_events SET status = ?, workflow_id = ?, detail = '', updated_at = ? WHERE event_id = ?",
			EventStarted, workflowID, now, in.SmartHubEventID); err != nil {
			return err
		}
	}
	if in.Delivery.Source == "" {
		return nil
	}
	if in.Delivery.WorkflowID == "" || in.Delivery.WorkflowID == in.Expiration.WorkflowID {
		in.Delivery.WorkflowID = workflowID
	}
	switch {
	case existing:
		in.Delivery.Outcome = DeliveryDuplicate
	case in.Delivery.Outcome == "":
		in.Delivery.Outcome = DeliveryAccepted
	}
	return s.insertDelivery(ctx, tx, in.Delivery)
}

// StopRequest asks the open expirations of Subject to end, because KooGallery overtook
// them: Reason is StateRenewed or StateReleased.
type StopRequest struct {
	Source  string
	Subject string
	Reason  string
	Detail  string
	// Payload is the stop signal's JSON, delivered by the relay.
	Payload []byte
}

// StopAcceptance says what accepting a stop did.
type StopAcceptance struct {
	// Cancelled lists expiries whose start was still queued and never tried: they end
	// with the stop's reason and no workflow is ever started for them.
	Cancelled []string
	// Queued is true when open expirations remain (started, or whose start may have
	// reached Temporal): a stop intent was queued behind them for the relay.
	Queued bool
}

// AcceptStop commits a stop durably. Queued starts of the subject that no relay ever
// claimed are cancelled on the spot; for every other open expiration a stop intent is
// queued, which the relay delivers only after the subject's earlier intents.
func (s *Store) AcceptStop(ctx context.Context, req StopRequest) (StopAcceptance, error) {
	var acc StopAcceptance
	err := s.durableTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		acc = StopAcceptance{}
		now := s.stamp()
		// Held conflicts end the same way: KooGallery's renewal or release settles them.
		rows, err := tx.QueryContext(ctx, s.rebind(`SELECT id, workflow_id FROM intake_intents
 WHERE subject = ? AND kind = ? AND state IN (?, ?) AND attempts = 0`), req.Subject, IntentStart, IntentPending, IntentHeld)
		if err != nil {
			return err
		}
		var ids []int64
		var workflowIDs []string
		for rows.Next() {
			var id int64
			var wf string
			if err := rows.Scan(&id, &wf); err != nil {
				rows.Close()
				return err
			}
			ids, workflowIDs = append(ids, id), append(workflowIDs, wf)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i, id := range ids {
			// attempts = 0 again in the update: a relay whose claim committed in between
			// may have reached Temporal, and then the stop must be delivered instead.
			cancelled, err := s.cancelStart(ctx, tx, id, workflowIDs[i], req.Reason, req.Detail, now, true)
			if err != nil {
				return err
			}
			if cancelled {
				acc.Cancelled = append(acc.Cancelled, workflowIDs[i])
			}
		}
		open, err := s.countOpen(ctx, tx, req.Subject)
		if err != nil || open == 0 {
			return err
		}
		acc.Queued = true
		_, err = s.exec(ctx, tx, `INSERT INTO intake_intents (kind, source, subject, payload, state, available_at, created_at, updated_at)
 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, IntentStop, req.Source, req.Subject, string(req.Payload), IntentPending, now, now, now)
		return err
	})
	if err != nil {
		return StopAcceptance{}, fmt.Errorf("accept stop of %s: %w", req.Subject, err)
	}
	return acc, nil
}

func (s *Store) countOpen(ctx context.Context, q execer, subject string) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, s.rebind("SELECT COUNT(*) FROM expirations WHERE subject = ? AND state IN (?, ?, ?, ?)"),
		subject, OpenStates[0], OpenStates[1], OpenStates[2], OpenStates[3]).Scan(&n)
	return n, err
}

// cancelStart ends a pending start intent that never became a workflow, and its expiry
// with reason. With unclaimedOnly it cancels only an intent no relay ever claimed. It
// reports whether it cancelled.
func (s *Store) cancelStart(ctx context.Context, tx execer, id int64, workflowID, reason, detail, now string, unclaimedOnly bool) (bool, error) {
	query := "UPDATE intake_intents SET state = ?, outcome = ?, lease_owner = '', last_error = '', updated_at = ? WHERE id = ? AND state IN (?, ?)"
	if unclaimedOnly {
		query += " AND attempts = 0"
	}
	res, err := s.exec(ctx, tx, query, IntentCancelled, OutcomeOvertaken, now, id, IntentPending, IntentHeld)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	_, err = s.exec(ctx, tx, "UPDATE expirations SET state = ?, last_error = ?, updated_at = ? WHERE workflow_id = ?",
		reason, "overtaken before its workflow started: "+detail, now, workflowID)
	return err == nil, err
}

// ClaimOptions say which intents a relay takes.
type ClaimOptions struct {
	// Owner names the relay (process), for the record.
	Owner string
	// Limit is the most intents claimed at once.
	Limit int
	// Lease is how long the claimed intents are the owner's; a relay that dies leaves
	// them to be claimed again after it.
	Lease time.Duration
	// Subject, when set, claims only that subject's intents (the operator CLI).
	Subject string
	// StopsOnly claims only stops and the starts a pending stop of the same subject
	// overtook: what a relay at its admission cap may still deliver, since neither
	// starts new work (an overtaken start is settled as overtaken, or as existing if an
	// earlier attempt reached Temporal, never started).
	StopsOnly bool
}

// ClaimIntents leases the oldest deliverable intents: pending, available now, and each
// the earliest pending intent of its subject, so a subject's intents are delivered
// strictly in order (a stop never before the start it follows). At most one intent per
// subject is claimed. Claims are atomic across processes: on PostgreSQL through
// FOR UPDATE SKIP LOCKED, on SQLite through its single writer.
func (s *Store) ClaimIntents(ctx context.Context, o ClaimOptions) ([]Intent, error) {
	if o.Limit <= 0 {
		o.Limit = 32
	}
	var out []Intent
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		query := `SELECT ` + intentColumns + ` FROM intake_intents i WHERE state = ? AND available_at <= ?`
		args := []any{IntentPending, formatTime(now)}
		if o.Subject != "" {
			query += " AND subject = ?"
			args = append(args, o.Subject)
		}
		if o.StopsOnly {
			query += ` AND (kind = ? OR EXISTS (SELECT 1 FROM intake_intents s WHERE s.subject = i.subject AND s.kind = ? AND s.state = ? AND s.id > i.id))`
			args = append(args, IntentStop, IntentStop, IntentPending)
		}
		query += ` AND NOT EXISTS (SELECT 1 FROM intake_intents j WHERE j.subject = i.subject AND j.state = ? AND j.id < i.id)
 ORDER BY id LIMIT ?`
		args = append(args, IntentPending, o.Limit)
		if s.dialect == postgres {
			query += " FOR UPDATE SKIP LOCKED"
		}
		rows, err := tx.QueryContext(ctx, s.rebind(query), args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			in, err := scanIntent(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, in)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(out) == 0 {
			return err
		}
		until, stamp := formatTime(now.Add(o.Lease)), formatTime(now)
		ids := make([]any, 0, len(out)+3)
		ids = append(ids, until, o.Owner, stamp)
		for i := range out {
			ids = append(ids, out[i].ID)
			out[i].Attempts++
		}
		_, err = s.exec(ctx, tx, `UPDATE intake_intents SET attempts = attempts + 1, available_at = ?, lease_owner = ?, updated_at = ?
 WHERE id IN (`+placeholders(len(out))+`)`, ids...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim intake intents: %w", err)
	}
	return out, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// CompleteIntents marks delivered intents done with outcome. A start delivered (started,
// or found existing) also stamps its expiry's started_at: from then on the expiry counts
// as Temporal's until its workflow moves it on (ActiveExpirations).
func (s *Store) CompleteIntents(ctx context.Context, outcome string, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	now := s.stamp()
	idArgs := make([]any, len(ids))
	for i, id := range ids {
		idArgs[i] = id
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `UPDATE intake_intents SET state = ?, outcome = ?, lease_owner = '', last_error = '', updated_at = ?
 WHERE id IN (`+placeholders(len(ids))+`)`, append([]any{IntentDone, outcome, now}, idArgs...)...); err != nil {
			return err
		}
		if outcome != OutcomeStarted && outcome != OutcomeExisting {
			return nil
		}
		_, err := s.exec(ctx, tx, `UPDATE expirations SET started_at = ? WHERE started_at = '' AND workflow_id IN
 (SELECT workflow_id FROM intake_intents WHERE kind = ? AND id IN (`+placeholders(len(ids))+`))`, append([]any{now, IntentStart}, idArgs...)...)
		return err
	})
	if err != nil {
		return fmt.Errorf("complete %d intake intents: %w", len(ids), err)
	}
	return nil
}

// activeSQL counts the expiries Temporal is working on; its literals (not parameters)
// let both databases read the partial index expirations_admitted for the second count.
// (The index's definition in migration 0013 names 'accepted' too.)
const activeSQL = `SELECT (SELECT COUNT(*) FROM expirations WHERE state IN ('` + StateFreezing + `', '` + StateNotifying + `'))
 + (SELECT COUNT(*) FROM expirations WHERE state = '` + StateAccepted + `' AND started_at <> '')`

// staleActiveSQL lists expiries counted as Temporal's whose last sign of life is older
// than a bound (both arguments), oldest first; each half reads its index in order.
const staleActiveSQL = `SELECT workflow_id, updated_at AS since FROM expirations
 WHERE state IN ('` + StateFreezing + `', '` + StateNotifying + `') AND updated_at < ?
 UNION ALL
 SELECT workflow_id, started_at AS since FROM expirations WHERE state = '` + StateAccepted + `' AND started_at <> '' AND started_at < ?
 ORDER BY since LIMIT ?`

// StaleActiveExpirations lists, oldest first, at most limit expiries that
// ActiveExpirations counts but whose workflow has shown no sign of life since before: no
// state change since, or started before and never begun. A round of KooDrive attempts
// moves an expiry within the hour, so these are the ones to ask Temporal about: a
// workflow deleted in Temporal would otherwise hold a place under the admission cap for
// ever.
func (s *Store) StaleActiveExpirations(ctx context.Context, before time.Time, limit int) ([]string, error) {
	cutoff := formatTime(before)
	rows, err := s.db.QueryContext(ctx, s.rebind(staleActiveSQL), cutoff, cutoff, limit)
	if err != nil {
		return nil, fmt.Errorf("list stale active expirations: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id, since string
		if err := rows.Scan(&id, &since); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// ExpirationStarted reports whether the relay (or an operator's restart) delivered the
// start of workflowID: Temporal has, or had, its workflow.
func (s *Store) ExpirationStarted(ctx context.Context, workflowID string) (bool, error) {
	var started string
	err := s.db.QueryRowContext(ctx, s.rebind("SELECT started_at FROM expirations WHERE workflow_id = ?"), workflowID).Scan(&started)
	if errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("expiration %s: %w", workflowID, ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("expiration %s: %w", workflowID, err)
	}
	return started != "", nil
}

// ActiveExpirations counts the expiries Temporal is working on now: those whose start the
// relay delivered and whose workflow has not yet reserved, stalled or ended them (states
// accepted with started_at, freezing, notifying). A stalled expiry waits for an operator
// and costs Temporal nothing meanwhile, so it is not counted. The relay's admission cap
// limits this number.
func (s *Store) ActiveExpirations(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, activeSQL).Scan(&n); err != nil {
		return 0, fmt.Errorf("count active expirations: %w", err)
	}
	return n, nil
}

// CancelOvertakenStart ends a start intent whose workflow Temporal never had, because a
// later stop (reason, detail) overtook it; its expiry ends with that reason.
func (s *Store) CancelOvertakenStart(ctx context.Context, in Intent, reason, detail string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := s.cancelStart(ctx, tx, in.ID, in.WorkflowID, reason, detail, s.stamp(), false)
		return err
	})
	if err != nil {
		return fmt.Errorf("cancel overtaken start %s: %w", in.WorkflowID, err)
	}
	return nil
}

// DeferIntent returns a claimed intent to the queue after a failed delivery: it may be
// claimed again at retryAt, and cause is kept for operators.
func (s *Store) DeferIntent(ctx context.Context, id int64, cause string, retryAt time.Time) error {
	if _, err := s.exec(ctx, s.db, "UPDATE intake_intents SET available_at = ?, lease_owner = '', last_error = ?, updated_at = ? WHERE id = ? AND state = ?",
		formatTime(retryAt), cause, s.stamp(), id, IntentPending); err != nil {
		return fmt.Errorf("defer intake intent %d: %w", id, err)
	}
	return nil
}

// PendingStop returns the earliest stop intent queued for subject after intent id, if any.
func (s *Store) PendingStop(ctx context.Context, subject string, after int64) (Intent, bool, error) {
	in, err := scanIntent(s.db.QueryRowContext(ctx, s.rebind(`SELECT `+intentColumns+` FROM intake_intents
 WHERE subject = ? AND kind = ? AND state = ? AND id > ? ORDER BY id LIMIT 1`), subject, IntentStop, IntentPending, after))
	if errors.Is(err, ErrNotFound) {
		return Intent{}, false, nil
	}
	if err != nil {
		return Intent{}, false, fmt.Errorf("pending stop of %s: %w", subject, err)
	}
	return in, true, nil
}

// IntentBacklog is what the intake has accepted and the relay has not delivered yet.
type IntentBacklog struct {
	Pending int
	// Oldest is when the oldest pending intent was accepted; zero when none is pending.
	Oldest time.Time
}

// backlogSQL is Backlog's SQL; its argument is IntentPending.
const backlogSQL = "SELECT COUNT(*), MIN(created_at) FROM intake_intents WHERE state = ?"

// Backlog counts pending intents and finds the oldest one.
func (s *Store) Backlog(ctx context.Context) (IntentBacklog, error) {
	var b IntentBacklog
	var oldest sql.NullString
	if err := s.db.QueryRowContext(ctx, s.rebind(backlogSQL), IntentPending).
		Scan(&b.Pending, &oldest); err != nil {
		return b, fmt.Errorf("intake backlog: %w", err)
	}
	b.Oldest = parseTime(oldest.String)
	return b, nil
}

// PendingIntents lists pending intents, oldest first; subject narrows them to one subject.
func (s *Store) PendingIntents(ctx context.Context, subject string, limit int) ([]Intent, error) {
	query := "SELECT " + intentColumns + " FROM intake_intents WHERE state = ?"
	args := []any{IntentPending}
	if subject != "" {
		query += " AND subject = ?"
		args = append(args, subject)
	}
	query += " ORDER BY id LIMIT ?"
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, s.rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list pending intents: %w", err)
	}
	defer rows.Close()
	var out []Intent
	for rows.Next() {
		in, err := scanIntent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

const intentColumns = "id, kind, source, subject, workflow_id, payload, state, outcome, attempts, last_error, available_at, created_at, updated_at"

func scanIntent(row interface{ Scan(...any) error }) (Intent, error) {
	var (
		in                          Intent
		payload                     string
		available, created, updated string
	)
	err := row.Scan(&in.ID, &in.Kind, &in.Source, &in.Subject, &in.WorkflowID, &payload, &in.State, &in.Outcome, &in.Attempts,
		&in.LastError, &available, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return Intent{}, ErrNotFound
	}
	if err != nil {
		return Intent{}, err
	}
	in.Payload = []byte(payload)
	in.AvailableAt, in.CreatedAt, in.UpdatedAt = parseTime(available), parseTime(created), parseTime(updated)
	return in, nil
}
