// Package statement writes the carrier's monthly reconciliation statement and the
// discrepancy report as Excel workbooks with excelize's stream writer, so a statement of
// a million subscriptions is written in constant memory.
package statement

import (
	"archive/zip"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/xuri/excelize/v2"
)

// Columns are the statement's columns, in order.
// UNCONFIRMED (spec koodrive-carrier.md §3.1): KooDrive's import template is not public;
// these columns are implied by the DiffBill record. Change them here, and only here,
// when the real template is obtained.
var Columns = []string{"carrierOrderId", "carrierUserId", "carrierOrderTime", "packageId", "status", "expireTime"}

// Row is one subscription line of the statement, in Columns order.
type Row [6]string

// Summary describes a written statement.
type Summary struct {
	Path string
	Rows int
	// SHA256 is the hash of the statement's content (header and rows, not the file's
	// bytes, which carry timestamps), so an unchanged statement hashes the same on a re-run.
	SHA256 string
}

// SheetName is the statement's only sheet.
const SheetName = "Statement"

// Writer streams rows into a statement workbook. Call Close to finish the file.
type Writer struct {
	path  string
	tmp   string
	book  *workbook
	sw    *excelize.StreamWriter
	hash  hash.Hash
	rows  int
	cells []any
	line  []byte
}

// Create starts a statement at path, writing to a temporary file beside it until Close.
func Create(path string) (*Writer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create statement directory: %w", err)
	}
	book := newBook()
	if err := book.SetSheetName("Sheet1", SheetName); err != nil {
		book.Close()
		return nil, err
	}
	sw, err := book.NewStreamWriter(SheetName)
	if err != nil {
		book.Close()
		return nil, fmt.Errorf("start statement stream: %w", err)
	}
	if err := sw.SetColWidth(1, len(Columns), 22); err != nil {
		book.Close()
		return nil, err
	}
	w := &Writer{path: path, tmp: strings.TrimSuffix(path, ".xlsx") + ".partial.xlsx", book: book, sw: sw, hash: sha256.New(), cells: make([]any, len(Columns))}
	header := make([]any, len(Columns))
	for i, c := range Columns {
		header[i] = c
	}
	if err := w.write(header); err != nil {
		book.Close()
		return nil, err
	}
	return w, nil
}

func (w *Writer) write(cells []any) error {
	cell, err := excelize.CoordinatesToCellName(1, w.rows+1)
	if err != nil {
		return err
	}
	// One hash write a row, from a reused buffer: a write per cell converted each cell
	// to a new byte slice.
	w.line = w.line[:0]
	for i, c := range cells {
		if i > 0 {
			w.line = append(w.line, '\t')
		}
		w.line = append(w.line, c.(string)...)
	}
	w.hash.Write(append(w.line, '\n'))
	if err := w.sw.SetRow(cell, cells); err != nil {
		return fmt.Errorf("write statement row %d: %w", w.rows+1, err)
	}
	w.rows++
	return nil
}

// Add appends one subscription row.
func (w *Writer) Add(r Row) error {
	for i, v := range r {
		w.cells[i] = v
	}
	return w.write(w.cells)
}

// Rows counts the subscription rows added so far.
func (w *Writer) Rows() int { return w.rows - 1 }

// workbook is an excelize file that is zipped with the fastest deflate level, on every
// core (parallelDeflate), and written straight to its file: excelize's SaveAs would
// assemble the whole zip in memory before writing it.
type workbook struct {
	*excelize.File
	zipTo io.Writer
}

func newBook() *workbook {
	b := &workbook{File: excelize.NewFile()}
	b.SetZipWriter(func(io.Writer) excelize.ZipWriter {
		zw := zip.NewWriter(b.zipTo)
		zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
			return newParallelDeflate(out), nil
		})
		return zw
	})
	return b
}

// FileMode is the permission of every statement and report file: readable by all,
// executable by none (excelize's own SaveAs would create them 0777 less the umask).
const FileMode os.FileMode = 0o644

// saveAs writes the workbook to path, the zip going to the file as it is made. The file
// is created new with FileMode (a stale file at path, from a crash or an older kooflow, is
// replaced, so its mode does not carry over).
func (b *workbook) saveAs(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, FileMode)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	b.zipTo = bw
	b.Path = path
	// Everything goes through the zip writer above; excelize's own buffer stays empty.
	if err := b.Write(refuseWrites{}); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// refuseWrites fails if excelize ever writes a workbook other than through its zip
// writer, instead of silently losing those bytes.
type refuseWrites struct{}

func (refuseWrites) Write([]byte) (int, error) {
	return 0, errors.New("excelize wrote the workbook past its zip writer")
}

// Close finishes the workbook and moves it into place.
func (w *Writer) Close() (Summary, error) {
	defer w.book.Close()
	if err := w.sw.Flush(); err != nil {
		return Summary{}, fmt.Errorf("finish statement: %w", err)
	}
	if err := w.book.saveAs(w.tmp); err != nil {
		os.Remove(w.tmp)
		return Summary{}, fmt.Errorf("save statement: %w", err)
	}
	if err := os.Rename(w.tmp, w.path); err != nil {
		return Summary{}, fmt.Errorf("move statement into place: %w", err)
	}
	return Summary{Path: w.path, Rows: w.Rows(), SHA256: hex.EncodeToString(w.hash.Sum(nil))}, nil
}

// ReadRows reads a written statement back: the header, then every row.
func ReadRows(path string) ([][]string, error) {
	book, err := excelize.OpenFile(path)
	if err != nil {
		return nil, fmt.Errorf("open statement %s: %w", path, err)
	}
	defer book.Close()
	rows, err := book.GetRows(SheetName)
	if err != nil {
		return nil, fmt.Errorf("read statement %s: %w", path, err)
	}
	return rows, nil
}

// Abort drops an unfinished statement.
func (w *Writer) Abort() {
	w.book.Close()
	os.Remove(w.tmp)
}
