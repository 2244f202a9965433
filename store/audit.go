package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Audit results.
const (
	// AuditOK: the action did all it was asked.
	AuditOK = "ok"
	// AuditFailed: the action failed, or did only part of what it was asked (Detail says).
	AuditFailed = "failed"
)

// AuditEntry is one operator action: who, through which door, when, what, on which
// subjects, and how it ended. The log is append-only: the store offers no update or
// delete of an entry, only pruning past the retention.
type AuditEntry struct {
	ID int64
	At time.Time
	// Actor is who acted: the operating-system user of a CLI command, or the identity a
	// caller supplies (the console's signed-in operator).
	Actor string
	// Via is the door: "cli" or "console".
	Via string
	// Host is the machine the action came from.
	Host string
	// Action names the command, e.g. "retry" or "registry import".
	Action string
	// Args are the command's arguments, secrets removed.
	Args string
	// Subjects are the business objects acted on: instances, workflow IDs, SIM
	// packages, billing cycles.
	Subjects []string
	// Result is AuditOK or AuditFailed, and Detail says what happened.
	Result string
	Detail string
}

// AppendAudit appends e to the audit log (At defaults to now) and returns its ID.
func (s *Store) AppendAudit(ctx context.Context, e AuditEntry) (int64, error) {
	if e.At.IsZero() {
		e.At = s.now()
	}
	var id int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		id, err = s.insertID(ctx, tx, `INSERT INTO audit_log (at, actor, via, host, action, args, subjects, result, detail)
 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, formatTime(e.At), storable(e.Actor), e.Via, storable(e.Host), storable(e.Action), storable(e.Args),
			storable(strings.Join(e.Subjects, " ")), e.Result, storable(e.Detail))
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, subject := range e.Subjects {
			if subject == "" || seen[subject] {
				continue
			}
			seen[subject] = true
			if _, err := s.exec(ctx, tx, "INSERT INTO audit_subjects (audit_id, subject) VALUES (?, ?)", id, storable(subject)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("append to the audit log (%s by %s): %w", e.Action, e.Actor, err)
	}
	return id, nil
}

// AuditFilter selects audit entries; a zero field does not filter.
type AuditFilter struct {
	Actor  string
	Action string
	Result string
	// Subjects keeps entries that acted on any of these subjects.
	Subjects []string
	// Since and Until bound the time: Since <= at < Until.
	Since, Until time.Time
	// Limit is at most this many entries, newest first; zero means 100.
	Limit int
}

// AuditEntries returns the entries f selects, newest first.
func (s *Store) AuditEntries(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	query, args := s.auditQuery(f)
	rows, err := s.db.QueryContext(ctx, s.rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list the audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at, subjects string
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Via, &e.Host, &e.Action, &e.Args, &subjects, &e.Result, &e.Detail); err != nil {
			return nil, fmt.Errorf("list the audit log: %w", err)
		}
		e.At, e.Subjects = parseTime(at), strings.Fields(subjects)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list the audit log: %w", err)
	}
	return out, nil
}

// auditQuery is AuditEntries' SQL for f and its arguments.
func (s *Store) auditQuery(f AuditFilter) (string, []any) {
	var c conditions
	c.equal("actor", f.Actor)
	c.equal("action", f.Action)
	c.equal("result", f.Result)
	if len(f.Subjects) > 0 {
		c.add("id IN (SELECT audit_id FROM audit_subjects WHERE subject IN ("+placeholders(len(f.Subjects))+"))", anys(f.Subjects)...)
	}
	c.between("at", f.Since, f.Until)
	c.fromWindow(s.dialect, "audit_log", "at", f.Since)
	return c.newestFirst("SELECT id, at, actor, via, host, action, args, subjects, result, detail FROM audit_log", f.Limit)
}

// PruneRecords deletes the deliveries and audit entries older than cutoff — the
// retention of kooflow's record — and reports how many of each.
func (s *Store) PruneRecords(ctx context.Context, cutoff time.Time) (deliveries, audit int64, err error) {
	if deliveries, err = s.PruneDeliveries(ctx, cutoff); err != nil {
		return 0, 0, err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, "DELETE FROM audit_subjects WHERE audit_id IN (SELECT id FROM audit_log WHERE at < ?)", formatTime(cutoff)); err != nil {
			return err
		}
		res, err := s.exec(ctx, tx, "DELETE FROM audit_log WHERE at < ?", formatTime(cutoff))
		if err != nil {
			return err
		}
		audit, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return deliveries, 0, fmt.Errorf("prune the audit log before %s: %w", formatTime(cutoff), err)
	}
	return deliveries, audit, nil
}
