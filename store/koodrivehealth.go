package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// KooDriveHealth is what kooflow's workers last saw of one KooDrive endpoint: the
// console's overview says from it whether KooDrive answers and accepts kooflow's
// credentials. Outcomes are the koodrive client's (koodrive.Outcome*).
type KooDriveHealth struct {
	// Endpoint is the path called, e.g. /koodrive/ose/v1/carrier/users/notifyPackageExpire.
	Endpoint string
	// LastOutcome is the newest call's outcome, LastCallAt when it was made.
	LastOutcome string
	LastCallAt  time.Time
	// LastSuccessAt is when KooDrive last accepted a call; zero for never.
	LastSuccessAt time.Time
	// LastFailure is the newest call that did not succeed; its At is zero for none.
	LastFailure KooDriveFailure
	// Unanswered counts the calls KooDrive did not answer (retryable errors, refused
	// credentials) since the last it answered (a success, or a rejection of the request);
	// UnansweredSince is when the first of them was made, zero when there are none.
	Unanswered      int64
	UnansweredSince time.Time
}

// KooDriveFailure is a KooDrive call that did not succeed. It holds what KooDrive
// answered, never a credential (koodrive.Call).
type KooDriveFailure struct {
	// At is when the call was made; Outcome is the koodrive client's.
	At      time.Time
	Outcome string
	// HTTPStatus is the answer's status, 0 when no answer arrived.
	HTTPStatus int
	// Code and Message are KooDrive's error code and message, or why no answer arrived.
	Code    string
	Message string
}

// KooDriveCalls sums up calls to one endpoint made one after another, as
// RecordKooDriveCalls takes them: the fields of KooDriveHealth over those calls alone,
// and whether KooDrive answered any of them.
type KooDriveCalls struct {
	KooDriveHealth
	// Answered says that KooDrive answered at least one of the calls: the row's count of
	// unanswered calls then starts again from the calls' own.
	Answered bool
}

// FollowedBy sums up c's calls and then later's, as recording c and then later does.
// The zero KooDriveCalls stands for no calls.
func (c KooDriveCalls) FollowedBy(later KooDriveCalls) KooDriveCalls {
	if later.LastCallAt.IsZero() {
		return c
	}
	sum := later
	if later.LastSuccessAt.IsZero() {
		sum.LastSuccessAt = c.LastSuccessAt
	}
	if later.LastFailure.At.IsZero() {
		sum.LastFailure = c.LastFailure
	}
	if !later.Answered {
		sum.Answered = c.Answered
		sum.Unanswered = c.Unanswered + later.Unanswered
		if c.Unanswered > 0 {
			sum.UnansweredSince = c.UnansweredSince
		}
	}
	return sum
}

// maxKooDriveMessage bounds the failure message kept, in characters: a page quoted
// from a gateway says all it can in its first lines.
const maxKooDriveMessage = 500

// recordKooDriveCallsSQL folds a summary of later calls into an endpoint's row. Rows
// written by several workers are merged by time: the newest call's outcome and the newest
// failure win, and the count of unanswered calls restarts with a summary that holds an
// answer (the last two parameters, both 1 or both 0).
const recordKooDriveCallsSQL = `INSERT INTO koodrive_health (endpoint, last_outcome, last_call_at, last_success_at,
 last_failure_at, last_failure_outcome, last_failure_status, last_failure_code, last_failure_message, unanswered_calls, unanswered_since)
 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
 ON CONFLICT (endpoint) DO UPDATE SET
 last_outcome = CASE WHEN excluded.last_call_at >= koodrive_health.last_call_at THEN excluded.last_outcome ELSE koodrive_health.last_outcome END,
 last_call_at = CASE WHEN excluded.last_call_at >= koodrive_health.last_call_at THEN excluded.last_call_at ELSE koodrive_health.last_call_at END,
 last_success_at = CASE WHEN excluded.last_success_at > koodrive_health.last_success_at THEN excluded.last_success_at ELSE koodrive_health.last_success_at END,
 last_failure_at = CASE WHEN excluded.last_failure_at > koodrive_health.last_failure_at THEN excluded.last_failure_at ELSE koodrive_health.last_failure_at END,
 last_failure_outcome = CASE WHEN excluded.last_failure_at > koodrive_health.last_failure_at THEN excluded.last_failure_outcome ELSE koodrive_health.last_failure_outcome END,
 last_failure_status = CASE WHEN excluded.last_failure_at > koodrive_health.last_failure_at THEN excluded.last_failure_status ELSE koodrive_health.last_failure_status END,
 last_failure_code = CASE WHEN excluded.last_failure_at > koodrive_health.last_failure_at THEN excluded.last_failure_code ELSE koodrive_health.last_failure_code END,
 last_failure_message = CASE WHEN excluded.last_failure_at > koodrive_health.last_failure_at THEN excluded.last_failure_message ELSE koodrive_health.last_failure_message END,
 unanswered_calls = CASE WHEN ? = 1 THEN excluded.unanswered_calls ELSE koodrive_health.unanswered_calls + excluded.unanswered_calls END,
 unanswered_since = CASE WHEN ? = 1 OR koodrive_health.unanswered_calls = 0 THEN excluded.unanswered_since ELSE koodrive_health.unanswered_since END`

// RecordKooDriveCalls folds summaries of KooDrive calls into the endpoints' health rows,
// in one transaction: the worker writes what it saw since its last write.
func (s *Store) RecordKooDriveCalls(ctx context.Context, calls []KooDriveCalls) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, c := range calls {
			if c.LastCallAt.IsZero() {
				continue
			}
			answered := 0
			if c.Answered {
				answered = 1
			}
			f := c.LastFailure
			if _, err := s.exec(ctx, tx, recordKooDriveCallsSQL, storable(c.Endpoint), c.LastOutcome, formatTime(c.LastCallAt),
				formatTime(c.LastSuccessAt), formatTime(f.At), f.Outcome, f.HTTPStatus, storable(f.Code),
				storable(truncateRunes(f.Message, maxKooDriveMessage)), c.Unanswered, formatTime(c.UnansweredSince),
				answered, answered); err != nil {
				return fmt.Errorf("endpoint %s: %w", c.Endpoint, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record KooDrive's health: %w", err)
	}
	return nil
}

// KooDriveHealth reads every endpoint's health row, by endpoint; none until the worker
// has called KooDrive.
func (s *Store) KooDriveHealth(ctx context.Context) ([]KooDriveHealth, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT endpoint, last_outcome, last_call_at, last_success_at, last_failure_at,
 last_failure_outcome, last_failure_status, last_failure_code, last_failure_message, unanswered_calls, unanswered_since
 FROM koodrive_health ORDER BY endpoint`)
	if err != nil {
		return nil, fmt.Errorf("read KooDrive's health: %w", err)
	}
	defer rows.Close()
	var health []KooDriveHealth
	for rows.Next() {
		var (
			h                                     KooDriveHealth
			lastCall, lastSuccess, failure, since string
		)
		if err := rows.Scan(&h.Endpoint, &h.LastOutcome, &lastCall, &lastSuccess, &failure, &h.LastFailure.Outcome,
			&h.LastFailure.HTTPStatus, &h.LastFailure.Code, &h.LastFailure.Message, &h.Unanswered, &since); err != nil {
			return nil, fmt.Errorf("read KooDrive's health: %w", err)
		}
		h.LastCallAt, h.LastSuccessAt, h.LastFailure.At, h.UnansweredSince = parseTime(lastCall), parseTime(lastSuccess), parseTime(failure), parseTime(since)
		health = append(health, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read KooDrive's health: %w", err)
	}
	return health, nil
}

// truncateRunes keeps the first n characters of s, marking a cut with "…".
func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
