package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"modernc.org/sqlite/vtab"
)

// An import streams its rows into SQLite through a virtual table (module importFeedModule):
// `INSERT INTO staging SELECT * FROM feed` pulls each row from the import's source as
// SQLite asks for it. The driver's other way in, binding a multi-row INSERT's parameters,
// searches the argument list for each of its hundreds of parameters and ran a third of a
// million-row import's staging; the feed hands SQLite each value once.
//
// The module is registered with the driver for every connection the process opens (the
// driver has no other way); a feed table exists only on the import's connection, for the
// one statement that reads it, and names its rows by a token the import registers here.

const importFeedModule = "kooflow_import_feed"

func init() {
	if err := vtab.RegisterModule(nil, importFeedModule, importFeedTables{}); err != nil {
		panic(fmt.Sprintf("register SQLite module %s: %v", importFeedModule, err))
	}
}

// importFeeds are the rows sources of imports under way, by token.
var importFeeds = struct {
	sync.Mutex
	next int64
	m    map[string]*copySource
}{m: map[string]*copySource{}}

// openImportFeed makes src's rows readable on q's connection as the table temp.feedTable
// until the returned func forgets src (the table goes with the import's connection).
func openImportFeed(ctx context.Context, q execer, src *copySource) (remove func(), err error) {
	importFeeds.Lock()
	importFeeds.next++
	token := "feed" + strconv.FormatInt(importFeeds.next, 10)
	importFeeds.m[token] = src
	importFeeds.Unlock()
	remove = func() {
		importFeeds.Lock()
		defer importFeeds.Unlock()
		delete(importFeeds.m, token)
	}
	if _, err := q.ExecContext(ctx, "CREATE VIRTUAL TABLE temp."+feedTable+" USING "+importFeedModule+"("+token+")"); err != nil {
		remove()
		return nil, fmt.Errorf("open the import's rows to SQLite: %w", err)
	}
	return remove, nil
}

// importFeedTables implements the module: a table's one argument is a feed's token.
type importFeedTables struct{}

// Create declares a feed table (CREATE VIRTUAL TABLE); it is Connect.
func (importFeedTables) Create(ctx vtab.Context, args []string) (vtab.Table, error) {
	return importFeedTables{}.Connect(ctx, args)
}

// Connect declares the staging columns of the feed args[3] names.
func (importFeedTables) Connect(ctx vtab.Context, args []string) (vtab.Table, error) {
	if len(args) != 4 {
		return nil, fmt.Errorf("%s takes one argument, a feed's token; got %d", importFeedModule, len(args)-3)
	}
	importFeeds.Lock()
	src := importFeeds.m[args[3]]
	importFeeds.Unlock()
	if src == nil {
		return nil, fmt.Errorf("%s: no import feed %q", importFeedModule, args[3])
	}
	if err := ctx.Declare("CREATE TABLE x (" + strings.Join(stagingColumns, ", ") + ")"); err != nil {
		return nil, err
	}
	return &importFeedTable{src: src}, nil
}

// importFeedTable is a feed's rows, to be read once, in order.
type importFeedTable struct {
	src *copySource
}

// BestIndex offers the one plan there is: every row, in the source's order.
func (t *importFeedTable) BestIndex(info *vtab.IndexInfo) error {
	info.EstimatedCost = 1e9
	info.EstimatedRows = 1e6
	return nil
}

// Open starts a cursor over the rows.
func (t *importFeedTable) Open() (vtab.Cursor, error) { return &importFeedCursor{src: t.src}, nil }

// Disconnect has nothing to release: the feed belongs to its import.
func (t *importFeedTable) Disconnect() error { return nil }

// Destroy has nothing to release either.
func (t *importFeedTable) Destroy() error { return nil }

// errFeedReadTwice: a source streams, so its rows can be read only once.
var errFeedReadTwice = errors.New(importFeedModule + ": the import's rows were already read")

// importFeedCursor reads a feed's source; its rowids count the rows from 1.
type importFeedCursor struct {
	src   *copySource
	rowid int64
	eof   bool
}

// Filter starts the one scan a source allows.
func (c *importFeedCursor) Filter(int, string, []vtab.Value) error {
	if c.src.read {
		return errFeedReadTwice
	}
	c.src.read = true
	return c.Next()
}

// Next pulls the next row from the source.
func (c *importFeedCursor) Next() error {
	c.eof = !c.src.Next()
	c.rowid++
	return c.src.err
}

// Eof reports whether the rows are done.
func (c *importFeedCursor) Eof() bool { return c.eof }

// Column returns the current row's value of column col (stagingColumns order).
func (c *importFeedCursor) Column(col int) (vtab.Value, error) {
	if col < 0 || col >= len(c.src.vals) {
		return nil, fmt.Errorf("%s: no column %d", importFeedModule, col)
	}
	return c.src.vals[col], nil
}

// Rowid numbers the rows in the order they were read.
func (c *importFeedCursor) Rowid() (int64, error) { return c.rowid, nil }

// Close ends the cursor; the source is its import's to stop.
func (c *importFeedCursor) Close() error { return nil }
