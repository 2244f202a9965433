package starter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/workflows"
)

// Actor is who runs an operator action, and through which door.
type Actor struct {
	// Name identifies the person: the operating-system user of a CLI command, or the
	// signed-in operator of the console.
	Name string
	// Via is the door: ViaCLI or ViaConsole.
	Via string
	// Host is the machine the action came from.
	Host string
}

// The doors an operator acts through.
const (
	ViaCLI     = "cli"
	ViaConsole = "console"
)

// CLIActor is the actor of a command run on this machine: the operating-system user
// (with the user who ran sudo, when they did), on this host.
func CLIActor() Actor {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = fmt.Sprintf("uid %d", os.Getuid())
	}
	if sudo := os.Getenv("SUDO_USER"); sudo != "" && sudo != name {
		name += " (sudo by " + sudo + ")"
	}
	host, _ := os.Hostname()
	return Actor{Name: name, Via: ViaCLI, Host: host}
}

// Operator is the one door for operator actions, whichever interface the operator uses
// (the CLI, the console): each action runs the rule book and the Temporal calls the same
// way, and appends exactly one entry to the audit log with its result — ok or failed,
// and what it did. An Operator without an actor refuses to act.
type Operator struct {
	Store *store.Store
	Actor Actor
	// Dial connects to Temporal; the actions that need it call it once.
	Dial func(ctx context.Context) (client.Client, error)
}

// ErrNoActor is returned by every action of an Operator whose actor is not named.
var ErrNoActor = errors.New("operator action refused: who is acting is not known (the audit log needs a name)")

// auditRecord is what an action tells the audit log beyond its error.
type auditRecord struct {
	subjects []string
	detail   string
}

// subject adds the business objects the action touched.
func (r *auditRecord) subject(s ...string) { r.subjects = append(r.subjects, s...) }

// audited runs an action and appends its one audit entry: args say what was asked
// (no secrets: no action takes one), the record what it touched and did. A failed
// action is recorded as failed with its error; an action whose entry cannot be written
// reports that as its error, so nobody acts unrecorded without being told.
func (o *Operator) audited(ctx context.Context, action, args string, run func(r *auditRecord) error) error {
	if o.Actor.Name == "" {
		return ErrNoActor
	}
	rec := &auditRecord{}
	err := run(rec)
	entry := store.AuditEntry{Actor: o.Actor.Name, Via: o.Actor.Via, Host: o.Actor.Host, Action: action, Args: args,
		Subjects: rec.subjects, Result: store.AuditOK, Detail: rec.detail}
	if err != nil {
		entry.Result, entry.Detail = store.AuditFailed, strings.TrimSpace(rec.detail+"; "+err.Error())
		entry.Detail = strings.TrimPrefix(entry.Detail, "; ")
	}
	// Recorded even when the caller gave up (Ctrl-C after the action was sent).
	auditCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, auditErr := o.Store.AppendAudit(auditCtx, entry); auditErr != nil {
		return errors.Join(err, fmt.Errorf("%s was %s, but it is not in the audit log: %w", action, entry.Result, auditErr))
	}
	return err
}

// RetryResult is the outcome of one expiration's retry.
type RetryResult struct {
	WorkflowID string
	// Restarted is true when the expiration had been terminated or cancelled outside
	// kooflow and its workflow was started again, rather than retried.
	Restarted bool
	// Err is nil when the expiration took the retry.
	Err error
}

// retryOrRestart first compares the expiration with Temporal (CheckExpiration): one
// terminated or cancelled outside kooflow is started again (Restart); a stalled one is
// retried.
func (s *Starter) retryOrRestart(ctx context.Context, workflowID string) (restarted bool, err error) {
	if _, err := CheckExpiration(ctx, s.Client, s.Store, workflowID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	if rec, err := s.Store.Expiration(ctx, workflowID); err == nil && (rec.State == store.StateTerminated || rec.State == store.StateCancelled) {
		return true, Restart(ctx, s.Client, s.Store, workflowID)
	}
	return false, s.Retry(ctx, workflowID)
}

// RetryStalled gives stalled expirations another hour of KooDrive attempts: target as
// StalledWorkflowIDs reads it (a workflow ID, an instance or SIM package, or "" for every
// stalled expiration). It returns each expiration's result; the error says how many
// failed. One audit entry names every expiration it tried.
func (o *Operator) RetryStalled(ctx context.Context, target string) ([]RetryResult, error) {
	args := "--all-stalled"
	if target != "" {
		args = target
	}
	return o.retry(ctx, args, func() ([]string, error) { return StalledWorkflowIDs(ctx, o.Store, target) })
}

// RetryEach retries the expirations named by workflowIDs — the ones an operator chose from
// a filtered list (asked describes the filter, for the audit log) — each as RetryStalled
// would. One audit entry names them all.
func (o *Operator) RetryEach(ctx context.Context, workflowIDs []string, asked string) ([]RetryResult, error) {
	return o.retry(ctx, asked, func() ([]string, error) {
		if len(workflowIDs) == 0 {
			return nil, fmt.Errorf("%w matches %s", ErrNothingStalled, asked)
		}
		return workflowIDs, nil
	})
}

// retry retries the expirations targets finds, under one audit entry.
func (o *Operator) retry(ctx context.Context, args string, targets func() ([]string, error)) ([]RetryResult, error) {
	var results []RetryResult
	err := o.audited(ctx, "retry", args, func(r *auditRecord) error {
		ids, err := targets()
		if err != nil {
			return err
		}
		r.subject(ids...)
		c, err := o.Dial(ctx)
		if err != nil {
			return err
		}
		s := &Starter{Client: c, Store: o.Store}
		var failed int
		for _, id := range ids {
			restarted, err := s.retryOrRestart(ctx, id)
			results = append(results, RetryResult{WorkflowID: id, Restarted: restarted, Err: err})
			if err != nil {
				failed++
			}
		}
		r.detail = fmt.Sprintf("%d of %d retried", len(ids)-failed, len(ids))
		if failed > 0 {
			return fmt.Errorf("%d of %d retries failed", failed, len(ids))
		}
		return nil
	})
	return results, err
}

// Expire accepts the expiry of a KooGallery instance by hand, judged by the same rule
// book as a delivery, with one difference: an expiry KooGallery reported that is held
// as a conflict (the registry's date disagrees) runs, because the operator's command is
// the decision it waits for. An instance whose registry date is ahead and for which
// KooGallery reported nothing is refused: fix the registry first. It queues the expiry
// for the relay; the caller may deliver it at once (Relay.DeliverSubject).
func (o *Operator) Expire(ctx context.Context, instanceID string, test bool) (Verdict, store.Acceptance, error) {
	var (
		v   Verdict
		acc store.Acceptance
	)
	args := "--instance " + instanceID
	if test {
		args += " --test"
	}
	err := o.audited(ctx, "expire", args, func(r *auditRecord) error {
		r.subject(instanceID)
		sub, err := o.Store.SubscriptionByInstance(ctx, instanceID)
		if err != nil {
			return err
		}
		v = KooGalleryExpiry(sub, test, time.Now())
		if v.Held() {
			held, err := o.Store.Expiration(ctx, v.WorkflowID)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("instance %s is not expired: the registry has it running until %s and KooGallery reported no expiry for it; if the registry is wrong, import the right date first",
					instanceID, sub.ExpireTime.UTC().Format(time.RFC3339))
			}
			if err != nil {
				return err
			}
			if held.State == store.StateConflict {
				v = v.RunByOperator()
			}
		}
		if !v.Accept && !v.Held() {
			return fmt.Errorf("instance %s is not expired: %s", instanceID, v.Ignored)
		}
		r.subject(v.WorkflowID)
		acc, err = (&Intake{Store: o.Store}).AcceptExpiry(ctx, v, store.Delivery{}, "")
		if err != nil {
			return err
		}
		if acc.Existing && (acc.State == store.StateTerminated || acc.State == store.StateCancelled) {
			// Ended outside kooflow before it finished: the operator's expire starts it again.
			c, err := o.Dial(ctx)
			if err != nil {
				return err
			}
			if err := Restart(ctx, c, o.Store, acc.WorkflowID); err != nil {
				return err
			}
			r.detail = fmt.Sprintf("started %s again (it was %s outside kooflow)", acc.WorkflowID, acc.State)
			acc.State, acc.Existing = store.StateAccepted, false
			return nil
		}
		switch {
		case acc.Existing:
			r.detail = fmt.Sprintf("already accepted (state %s); nothing new queued", acc.State)
		case v.Accept && v.Held():
			r.detail = "ran the expiry held as a conflict with the registry: " + v.Conflict
		default:
			r.detail = "accepted and queued"
		}
		return nil
	})
	return v, acc, err
}

// Replay processes a stored SmartHub push again, e.g. an unmatched expiry after the
// registry was fixed.
func (o *Operator) Replay(ctx context.Context, eventID string, isExpiry func(store.SmartHubEvent) bool) (Verdict, store.Acceptance, error) {
	var (
		v   Verdict
		acc store.Acceptance
	)
	err := o.audited(ctx, "replay", eventID, func(r *auditRecord) error {
		r.subject(eventID)
		ev, err := o.Store.SmartHubEvent(ctx, eventID)
		if err != nil {
			return err
		}
		r.subject(SmartHubSubject(ev.GIccid, ev.PackageCode))
		if !isExpiry(ev) {
			return fmt.Errorf("event %s is not a package expiry (%q): only package expiries start anything", ev.EventID, ev.TriggerType)
		}
		v, acc, err = (&Intake{Store: o.Store}).AcceptSmartHubExpiry(ctx, ev, store.Delivery{})
		if err != nil {
			return err
		}
		if !v.Accept {
			return fmt.Errorf("event %s starts nothing: %s", ev.EventID, v.Ignored)
		}
		r.subject(acc.WorkflowID)
		r.detail = "accepted " + acc.WorkflowID
		if acc.Existing {
			r.detail = fmt.Sprintf("already accepted as %s (state %s)", acc.WorkflowID, acc.State)
		}
		return nil
	})
	return v, acc, err
}

// Reconcile starts the reconciliation of a past billing cycle (force: again, although
// it completed). A reconciliation already running is returned in the error, never
// started twice.
func (o *Operator) Reconcile(ctx context.Context, in contract.ReconciliationInput, force bool) (client.WorkflowRun, error) {
	var run client.WorkflowRun
	args := "--cycle " + in.Cycle
	if force {
		args += " --force"
	}
	err := o.audited(ctx, "reconcile", args, func(r *auditRecord) error {
		r.subject(workflows.ReconciliationWorkflowID(in.Cycle))
		c, err := o.Dial(ctx)
		if err != nil {
			return err
		}
		s := &Starter{Client: c, Store: o.Store}
		start := s.StartReconciliation
		if force {
			start = s.ReconcileAgain
		}
		if run, err = start(ctx, in); err != nil {
			return err
		}
		r.detail = "started run " + run.GetRunID()
		return nil
	})
	return run, err
}

// ApplySchedule creates or updates the monthly reconciliation schedule (see the
// package function ApplySchedule) and reports whether it was created.
func (o *Operator) ApplySchedule(ctx context.Context, cfg ScheduleConfig) (bool, error) {
	var created bool
	args := fmt.Sprintf("--cron %q --time-zone %s", cfg.Cron, cfg.TimeZone)
	err := o.audited(ctx, "schedule apply", args, func(r *auditRecord) error {
		r.subject(ScheduleID)
		c, err := o.Dial(ctx)
		if err != nil {
			return err
		}
		if created, err = ApplySchedule(ctx, c, cfg); err != nil {
			return err
		}
		r.detail = "updated"
		if created {
			r.detail = "created"
		}
		return nil
	})
	return created, err
}

// SetSchedulePaused pauses the monthly reconciliation schedule (no cycle starts until it
// is unpaused) or unpauses it, with the operator's note, which Temporal keeps on the
// schedule and the audit log keeps with the action. A note is required: whoever looks
// at a paused schedule must learn why.
func (o *Operator) SetSchedulePaused(ctx context.Context, paused bool, note string) error {
	action := "schedule unpause"
	if paused {
		action = "schedule pause"
	}
	return o.audited(ctx, action, fmt.Sprintf("--note %q", note), func(r *auditRecord) error {
		r.subject(ScheduleID)
		if strings.TrimSpace(note) == "" {
			return errors.New("say why in a note (--note): whoever finds the schedule paused must learn why")
		}
		c, err := o.Dial(ctx)
		if err != nil {
			return err
		}
		handle := c.ScheduleClient().GetHandle(ctx, ScheduleID)
		note := note + " (" + o.Actor.Name + " via " + o.Actor.Via + ")"
		if paused {
			err = handle.Pause(ctx, client.SchedulePauseOptions{Note: note})
		} else {
			err = handle.Unpause(ctx, client.ScheduleUnpauseOptions{Note: note})
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", action, ScheduleID, err)
		}
		r.detail = action + "d"
		return nil
	})
}

// DescribeSchedule reads the monthly reconciliation schedule from Temporal (see the
// package function DescribeSchedule) with the runs it started. It only reads, so it is
// not audited.
func (o *Operator) DescribeSchedule(ctx context.Context) (*client.ScheduleDescription, []ScheduleRun, error) {
	c, err := o.Dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	d, err := DescribeSchedule(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	runs, err := ScheduleRuns(ctx, c, d)
	if err != nil {
		return d, nil, err
	}
	return d, runs, nil
}

// ImportRegistry imports a registry file through importFile (registry.Import, all rows
// or none), handing it the origin the registry records the import with (this operator
// and path), and records it in the audit log: the file, and what changed or why it was
// refused.
func (o *Operator) ImportRegistry(ctx context.Context, path string, importFile func(context.Context, *store.Store, string, store.ImportOrigin) (store.ImportStats, error)) (store.ImportStats, error) {
	var stats store.ImportStats
	err := o.audited(ctx, "registry import", path, func(r *auditRecord) error {
		var err error
		origin := store.ImportOrigin{Actor: o.Actor.Name, Via: o.Actor.Via, Source: path}
		if stats, err = importFile(ctx, o.Store, path, origin); err != nil {
			return err
		}
		r.detail = fmt.Sprintf("%d inserted, %d updated, %d unchanged", stats.Inserted, stats.Updated, stats.Unchanged)
		if stats.ImportID != 0 {
			r.detail = fmt.Sprintf("import %d: %s", stats.ImportID, r.detail)
		}
		return nil
	})
	return stats, err
}
