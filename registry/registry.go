// Package registry imports the carrier's subscription registry from CSV or XLSX files,
// all rows or none. The file is read twice, streaming, so memory does not grow with its
// size: one pass validates every row and reports every bad one, nothing written then;
// the other feeds the store's bulk import, which refuses the whole file if rows repeat a
// subscription or clash with the registry (listing every such row), and applies the rest
// in one transaction. For a CSV file the two passes run at the same time, the import
// committing only once the validation found every row sound.
package registry

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/kooflow/kooflow/store"
)

// Columns is the header a registry file may carry, matched case-insensitively.
var Columns = columnNames[:]

// columnNames are Columns, in the order of the col constants.
var columnNames = [...]string{"instanceId", "orderId", "carrierUserId", "packageId", "carrierOrderId",
	"carrierOrderTime", "expireTime", "gIccid", "packageCode"}

// MaxReportedRows bounds how many bad rows an ImportError lists; the rest are counted.
const MaxReportedRows = store.MaxReportedProblems

// RowError is one invalid row.
type RowError struct {
	// Row is the 1-based row of the file (the header is row 1).
	Row    int
	Reason string
}

// ImportError lists the invalid rows of a refused file.
type ImportError struct {
	File string
	// Rows are the first MaxReportedRows bad rows, in file order.
	Rows []RowError
	// Total counts every bad row.
	Total int
}

// Error implements error.
func (e *ImportError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d invalid row(s), nothing imported:", e.File, max(e.Total, len(e.Rows)))
	for i, r := range e.Rows {
		if i == 50 {
			fmt.Fprintf(&b, "\n  … and %d more", max(e.Total, len(e.Rows))-50)
			break
		}
		fmt.Fprintf(&b, "\n  row %d: %s", r.Row, r.Reason)
	}
	return b.String()
}

// Import phases, besides the store's (store.PhaseStaging, PhaseChecking, PhaseApplying).
const PhaseValidating = "validating"

// Progress says how far an import is in its current phase.
type Progress struct {
	Phase string
	// Rows counts the rows done in this phase; Total the rows it will do (0: unknown).
	Rows, Total int
	// Fraction is the share of the phase done, from 0 to 1, or -1 when unknown.
	Fraction float64
}

// Options tune Import.
type Options struct {
	// Progress, when set, is called as the import advances.
	Progress func(Progress)
	// Origin is who runs the import and from which file, recorded with it.
	Origin store.ImportOrigin
}

// Import validates path (.csv or .xlsx) and upserts its rows into st in one transaction.
// A file with invalid rows, rows naming one subscription twice, or rows whose identities
// belong to different subscriptions is refused whole with an *ImportError naming every
// such row; nothing is written then.
//
// A CSV file is validated on its own goroutine while its rows load, so the validation
// pass costs no time of its own on a second core: the import commits only once the
// validation found every row sound, and is cancelled at the first row that is not (the
// validation reads on, to list every bad row).
// An XLSX workbook, which excelize holds in memory, is validated first, so that only one
// copy of it is open at a time.
func Import(ctx context.Context, st *store.Store, path string, opts Options) (store.ImportStats, error) {
	if strings.ToLower(filepath.Ext(path)) != ".csv" {
		n, err := validate(ctx, path, opts.Progress, nil)
		if err != nil {
			return store.ImportStats{}, err
		}
		return load(ctx, st, path, opts, n, nil)
	}
	loadCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	validated := make(chan struct{})
	var invalid error
	go func() {
		defer close(validated)
		// The parser runs here, off the caller's goroutine: a panic in it is the import's
		// error, not the end of the process (the console's, say).
		defer func() {
			if p := recover(); p != nil {
				invalid = fmt.Errorf("validating %s panicked: %v", path, p)
				cancel(invalid)
			}
		}()
		// The load stops at the first bad row; the validation reads on to list them all.
		_, invalid = validate(ctx, path, nil, func() { cancel(errBadRows) })
		if invalid != nil {
			cancel(invalid)
		}
	}()
	waitValid := func() error {
		<-validated
		return invalid
	}
	stats, err := load(loadCtx, st, path, opts, 0, waitValid)
	// Bad rows are the answer whenever there are any, whatever stopped the load.
	if err := waitValid(); err != nil {
		return store.ImportStats{}, err
	}
	return stats, err
}

// load feeds path's rows to the store's bulk import: total is how many there are (0:
// not known yet), confirm whether the import may commit.
func load(ctx context.Context, st *store.Store, path string, opts Options, total int, confirm func() error) (store.ImportStats, error) {
	rows := &fileRows{path: path}
	var progress func(store.ImportProgress)
	if opts.Progress != nil {
		progress = func(p store.ImportProgress) {
			f := rows.fraction() // while the rows are read and their number is not known
			if p.Total > 0 {
				f = float64(p.Done) / float64(p.Total)
			}
			opts.Progress(Progress{Phase: p.Phase, Rows: p.Done, Total: p.Total, Fraction: f})
		}
	}
	stats, err := st.ImportSubscriptions(ctx, rows.all, store.ImportOptions{Total: total, Progress: progress, Origin: opts.Origin, Confirm: confirm})
	var conflict *store.ImportConflictError
	if errors.As(err, &conflict) {
		ierr := &ImportError{File: path, Total: conflict.Total}
		for _, p := range conflict.Problems {
			ierr.Rows = append(ierr.Rows, RowError{Row: p.Line, Reason: p.Reason})
		}
		return store.ImportStats{}, ierr
	}
	if err != nil {
		return store.ImportStats{}, fmt.Errorf("import %s: %w", path, err)
	}
	return stats, nil
}

// Validate reads path once and checks every row on its own (required columns, formats,
// identities), returning how many rows it would import, or an *ImportError listing the
// bad rows. Rows that repeat a subscription, or clash with the registry, are found by
// Import, which needs the registry.
func Validate(path string) (int, error) { return validate(context.Background(), path, nil, nil) }

// errBadRows stops a load whose file the validation found a bad row in.
var errBadRows = errors.New("the file has invalid rows")

// validate reads path once, checking every row; it calls firstBad, if set, at the first
// bad row, and stops early only when ctx ends.
func validate(ctx context.Context, path string, progress func(Progress), firstBad func()) (int, error) {
	src, err := open(path)
	if err != nil {
		return 0, err
	}
	defer src.close()
	var (
		ierr  = &ImportError{File: path}
		valid int
		last  time.Time
	)
	err = src.each(func(row int, sub store.Subscription, reasons []string) error {
		if (valid+ierr.Total)%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if len(reasons) > 0 {
			if ierr.Total == 0 && firstBad != nil {
				firstBad()
			}
			ierr.Total++
			if len(ierr.Rows) < MaxReportedRows {
				ierr.Rows = append(ierr.Rows, RowError{Row: row, Reason: strings.Join(reasons, "; ")})
			}
		} else {
			valid++
		}
		if progress != nil && (valid+ierr.Total)%4096 == 0 && time.Since(last) > 100*time.Millisecond {
			last = time.Now()
			progress(Progress{Phase: PhaseValidating, Rows: valid + ierr.Total, Fraction: src.fraction()})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if progress != nil {
		progress(Progress{Phase: PhaseValidating, Rows: valid + ierr.Total, Total: valid + ierr.Total, Fraction: 1})
	}
	if ierr.Total > 0 {
		return 0, ierr
	}
	return valid, nil
}

// Rows streams the subscriptions of a validated file, each with its row number. A row
// that is not valid (the file changed since it was validated, or is being validated at
// the same time) ends the stream with an error, so nothing is applied.
func Rows(path string) iter.Seq2[store.ImportRow, error] { return (&fileRows{path: path}).all }

// fileRows streams a file's rows and says how far into the file it is.
type fileRows struct {
	path string
	// src is the file being read, once all has opened it.
	src *source
}

func (f *fileRows) all(yield func(store.ImportRow, error) bool) {
	src, err := open(f.path)
	if err != nil {
		yield(store.ImportRow{}, err)
		return
	}
	defer src.close()
	f.src = src
	stopped := errors.New("stopped")
	err = src.each(func(row int, sub store.Subscription, reasons []string) error {
		if len(reasons) > 0 {
			return fmt.Errorf("%s: row %d is not valid: %s", f.path, row, strings.Join(reasons, "; "))
		}
		if !yield(store.ImportRow{Line: row, Subscription: sub}, nil) {
			return stopped
		}
		return nil
	})
	if err != nil && !errors.Is(err, stopped) {
		yield(store.ImportRow{}, err)
	}
}

// fraction is the share of the file read so far, -1 when not known.
func (f *fileRows) fraction() float64 {
	if f.src == nil {
		return -1
	}
	return f.src.fraction()
}

// source reads a registry file row by row.
type source struct {
	path string
	// next returns the next row's cells, io.EOF after the last.
	next     func() ([]string, error)
	fraction func() float64
	close    func() error
}

func open(path string) (*source, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return openCSV(path)
	case ".xlsx":
		return openXLSX(path)
	default:
		return nil, fmt.Errorf("%s: registry files must be .csv or .xlsx", path)
	}
}

// countingReader counts the bytes read through it, for progress.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func openCSV(path string) (*source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open registry file: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open registry file: %w", err)
	}
	cr := &countingReader{r: f}
	r := csv.NewReader(cr)
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	// Each record's strings are fresh; only the slice holding them is reused.
	r.ReuseRecord = true
	row := 0
	return &source{
		path: path,
		next: func() ([]string, error) {
			rec, err := r.Read()
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			row++
			return rec, err
		},
		fraction: func() float64 {
			if info.Size() == 0 {
				return -1
			}
			return float64(cr.n) / float64(info.Size())
		},
		close: f.Close,
	}, nil
}

func openXLSX(path string) (*source, error) {
	f, err := excelize.OpenFile(path)
	if err != nil {
		return nil, fmt.Errorf("open registry workbook %s: %w", path, err)
	}
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		f.Close()
		return nil, fmt.Errorf("%s: workbook has no sheet", path)
	}
	it, err := f.Rows(sheets[0])
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: read sheet %s: %w", path, sheets[0], err)
	}
	row := 0
	return &source{
		path: path,
		next: func() ([]string, error) {
			if !it.Next() {
				if err := it.Error(); err != nil {
					return nil, fmt.Errorf("%s: %w", path, err)
				}
				return nil, io.EOF
			}
			row++
			cols, err := it.Columns()
			if err != nil {
				return nil, fmt.Errorf("%s: row %d: %w", path, row, err)
			}
			return cols, nil
		},
		fraction: func() float64 { return -1 },
		close: func() error {
			it.Close()
			return f.Close()
		},
	}, nil
}

// each parses the header, then calls fn for every non-blank row with its 1-based row
// number (the header is row 1), the subscription it describes and what is wrong with it.
func (s *source) each(fn func(row int, sub store.Subscription, reasons []string) error) error {
	header, err := s.next()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: file is empty; the first row must be a header with %s", s.path, strings.Join(Columns, ", "))
	}
	if err != nil {
		return err
	}
	p, err := newParser(s.path, header)
	if err != nil {
		return err
	}
	for row := 2; ; row++ {
		cells, err := s.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if isBlank(cells) {
			continue
		}
		sub, reasons := p.parse(cells)
		if err := fn(row, sub, reasons); err != nil {
			return err
		}
	}
}

// parser turns cells into a subscription by the header's column order.
type parser struct {
	// at is where each of Columns is in a row, -1 when the header lacks it.
	at [len(columnNames)]int
}

// The positions of Columns, for parser.at.
const (
	colInstanceID = iota
	colOrderID
	colCarrierUserID
	colPackageID
	colCarrierOrderID
	colCarrierOrderTime
	colExpireTime
	colGIccid
	colPackageCode
)

func newParser(file string, header []string) (*parser, error) {
	index := map[string]int{}
	known := map[string]string{}
	for _, c := range Columns {
		known[strings.ToLower(c)] = c
	}
	for i, h := range header {
		name, ok := known[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))]
		if !ok {
			return nil, fmt.Errorf("%s: unknown column %q in the header; columns are %s", file, h, strings.Join(Columns, ", "))
		}
		if _, dup := index[name]; dup {
			return nil, fmt.Errorf("%s: column %s appears twice in the header", file, name)
		}
		index[name] = i
	}
	for _, required := range []string{"carrierUserId", "packageId"} {
		if _, ok := index[required]; !ok {
			return nil, fmt.Errorf("%s: the header lacks the required column %s", file, required)
		}
	}
	p := &parser{}
	for i, c := range Columns {
		p.at[i] = -1
		if j, ok := index[c]; ok {
			p.at[i] = j
		}
	}
	return p, nil
}

// validID reports whether v is 1-64 letters, digits or . _ : - (checked byte by byte:
// a regular expression costs more than the rest of the million-row pass).
func validID(v string) bool {
	if len(v) < 1 || len(v) > 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// parse reads one row and says everything wrong with it on its own.
func (p *parser) parse(row []string) (store.Subscription, []string) {
	get := func(col int) string {
		j := p.at[col]
		if j < 0 || j >= len(row) {
			return ""
		}
		return strings.TrimSpace(row[j])
	}
	sub := store.Subscription{
		InstanceID: get(colInstanceID), OrderID: get(colOrderID), CarrierUserID: get(colCarrierUserID),
		PackageID: get(colPackageID), CarrierOrderID: get(colCarrierOrderID), CarrierOrderTime: get(colCarrierOrderTime),
		GIccid: get(colGIccid), PackageCode: get(colPackageCode),
	}
	var reasons []string
	if sub.InstanceID == "" && (sub.GIccid == "" || sub.PackageCode == "") && sub.OrderID == "" {
		reasons = append(reasons, "needs instanceId, or both gIccid and packageCode, or orderId")
	}
	if (sub.GIccid == "") != (sub.PackageCode == "") {
		reasons = append(reasons, "gIccid and packageCode go together")
	}
	for _, f := range [...]struct{ name, value string }{
		{"instanceId", sub.InstanceID}, {"orderId", sub.OrderID}, {"carrierUserId", sub.CarrierUserID}, {"packageId", sub.PackageID},
		{"gIccid", sub.GIccid}, {"packageCode", sub.PackageCode},
	} {
		required := f.name == "carrierUserId" || f.name == "packageId"
		switch {
		case f.value == "" && required:
			reasons = append(reasons, f.name+" is required")
		case f.value != "" && !validID(f.value):
			reasons = append(reasons, fmt.Sprintf("%s %q must be 1-64 letters, digits or . _ : -", f.name, f.value))
		}
	}
	if v := get(colExpireTime); v != "" {
		t, err := ParseTime(v)
		if err != nil {
			reasons = append(reasons, err.Error())
		}
		sub.ExpireTime = t
	}
	return sub, reasons
}

func isBlank(row []string) bool {
	for _, v := range row {
		if strings.TrimSpace(v) != "" {
			return false
		}
	}
	return true
}

// parseDigits reads the first layout, yyyyMMddHHmmss (KooGallery's and most registry
// files'), without time.Parse, which interprets the layout on every call; ok is false
// when v is not 14 digits or names no real time (time.Parse then says why).
func parseDigits(v string) (time.Time, bool) {
	if len(v) != 14 {
		return time.Time{}, false
	}
	n := func(from, to int) int {
		x := 0
		for _, c := range v[from:to] {
			if c < '0' || c > '9' {
				return -1
			}
			x = x*10 + int(c-'0')
		}
		return x
	}
	year, month, day, hour, minute, second := n(0, 4), n(4, 6), n(6, 8), n(8, 10), n(10, 12), n(12, 14)
	if year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, second, 0, time.UTC)
	if t.Day() != day { // the 31st of a shorter month, February 29th of a common year
		return time.Time{}, false
	}
	return t, true
}

// timeLayouts are the expiry formats a registry file may use; all are read as UTC.
var timeLayouts = []string{"20060102150405", time.RFC3339, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"}

// ParseTime reads an expiry time in any of the accepted layouts.
func ParseTime(v string) (time.Time, error) {
	if t, ok := parseDigits(v); ok {
		return t, nil
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("expireTime %q is not yyyyMMddHHmmss, RFC 3339 or yyyy-MM-dd[ HH:mm:ss]", v)
}
