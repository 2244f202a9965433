package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// maxGroupCommit bounds how many waiting durable transactions share one commit. A
// commit of 128 intake transactions holds SQLite's write lock for a few milliseconds.
const maxGroupCommit = 128

// errStoreClosed answers a durable transaction that arrives after Close.
var errStoreClosed = errors.New("store is closed")

// groupCommitter is SQLite's durable commit path. On SQLite every write takes the one
// write lock and every durable commit waits for an fsync of the WAL, so concurrent
// intake commits queue behind each other's fsync. The committer runs the transactions
// that are waiting when it is free as one database transaction and commits them with one
// fsync. When any of them fails (or the commit does), that transaction is rolled back
// and every member is run again in a transaction of its own, so a failure is its
// member's alone; members must therefore set their results afresh on each run. Every
// caller is answered only after the commit that holds its work is on disk (or with the
// error that refused it), so a "done" still means fsynced. With one caller at a time it
// is a plain transaction.
//
// This is group commit, as database servers do for their log: the fsync is shared, the
// per-transaction work is not. Savepoints per member would isolate a failure without the
// rerun, but SQLite then journals every page a member touches a second time, which cost
// more than the shared fsync saved. PostgreSQL groups commits itself, so there durable
// transactions run on the pool as they always did.
type groupCommitter struct {
	db    *sql.DB
	queue chan *groupWork

	closeOnce sync.Once
	stop      chan struct{}
	stopped   chan struct{}
}

// groupWork is one caller's transaction and where its result goes.
type groupWork struct {
	ctx  context.Context
	fn   func(ctx context.Context, tx *sql.Tx) error
	done chan error
}

func newGroupCommitter(db *sql.DB) *groupCommitter {
	g := &groupCommitter{db: db, queue: make(chan *groupWork), stop: make(chan struct{}), stopped: make(chan struct{})}
	go g.run()
	return g
}

// do runs fn in the next group commit and returns once that commit is on disk.
func (g *groupCommitter) do(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	w := &groupWork{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case g.queue <- w:
	case <-ctx.Done():
		return ctx.Err()
	case <-g.stop:
		return errStoreClosed
	}
	// Once taken, the work is answered: the caller must know whether it committed, so it
	// waits for the commit even past its own deadline (a commit takes milliseconds).
	return <-w.done
}

// close stops the committer after the group it is committing.
func (g *groupCommitter) close() {
	g.closeOnce.Do(func() { close(g.stop) })
	<-g.stopped
}

func (g *groupCommitter) run() {
	defer close(g.stopped)
	for {
		var first *groupWork
		select {
		case first = <-g.queue:
		case <-g.stop:
			return
		}
		group := []*groupWork{first}
	gather:
		for len(group) < maxGroupCommit {
			select {
			case w := <-g.queue:
				group = append(group, w)
			default:
				break gather
			}
		}
		g.commit(group)
	}
}

// commit runs the group and answers every member.
func (g *groupCommitter) commit(group []*groupWork) {
	if len(group) == 1 || g.together(group) != nil {
		for _, w := range group {
			w.done <- txOn(w.ctx, g.db, func(tx *sql.Tx) error { return w.fn(w.ctx, tx) })
		}
		return
	}
	for _, w := range group {
		w.done <- nil
	}
}

// together runs every member of the group in one transaction and commits it. An error
// means nothing of the group was committed.
func (g *groupCommitter) together(group []*groupWork) error {
	// The group's transaction is no one caller's: a caller that gives up must not roll
	// back the others' work, so statements run without the callers' cancellation
	// (SQLite interrupts a cancelled statement by rolling back the whole transaction).
	tx, err := g.db.BeginTx(context.Background(), nil)
	if err != nil {
		return fmt.Errorf("begin group commit: %w", err)
	}
	defer tx.Rollback()
	for _, w := range group {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		if err := w.fn(context.WithoutCancel(w.ctx), tx); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("group commit: %w", err)
	}
	return nil
}
