package statement

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/xuri/excelize/v2"
)

// DiffTypeMeanings explains KooDrive's diffType values (spec koodrive-carrier.md §4).
var DiffTypeMeanings = map[string]string{
	"1": "no subscription record on the carrier side (KooDrive has it, the statement does not)",
	"2": "no subscription record on the KooDrive side (the statement has it, KooDrive does not)",
	"3": "benefits inconsistent between the carrier and KooDrive",
}

// Discrepancy is one line of the report.
type Discrepancy struct {
	DiffType         string
	CarrierOrderID   string
	KdOrderID        string
	CarrierUserID    string
	CarrierOrderTime string
	KdUserID         string
	UserStatus       string
	// PackageID is the package kooflow's registry has for CarrierOrderID (KooDrive's
	// DiffBill carries none); empty when the registry does not know the order.
	PackageID string
	// Raw is KooDrive's record as received, unknown fields included.
	Raw string
}

// ReportColumns are the columns of the report's Discrepancies sheet, in order: KooDrive's
// DiffBill fields as documented, then packageId from the registry, then the raw record.
var ReportColumns = []string{"diffType", "carrierOrderId", "kdOrderId", "carrierUserId", "carrierOrderTime", "kdUserId", "userStatus", "packageId", "raw"}

// ReportWriter streams discrepancies into a report workbook with a summary sheet.
type ReportWriter struct {
	path   string
	book   *workbook
	sw     *excelize.StreamWriter
	rows   int
	counts map[string]int
}

// CreateReport starts a discrepancy report at path.
func CreateReport(path string) (*ReportWriter, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create report directory: %w", err)
	}
	book := newBook()
	if err := book.SetSheetName("Sheet1", "Discrepancies"); err != nil {
		book.Close()
		return nil, err
	}
	sw, err := book.NewStreamWriter("Discrepancies")
	if err != nil {
		book.Close()
		return nil, err
	}
	header := make([]any, len(ReportColumns))
	for i, c := range ReportColumns {
		header[i] = c
	}
	if err := sw.SetRow("A1", header); err != nil {
		book.Close()
		return nil, err
	}
	return &ReportWriter{path: path, book: book, sw: sw, rows: 1, counts: map[string]int{}}, nil
}

// Add appends one discrepancy.
func (r *ReportWriter) Add(d Discrepancy) error {
	r.rows++
	cell, _ := excelize.CoordinatesToCellName(1, r.rows)
	r.counts[d.DiffType]++
	return r.sw.SetRow(cell, []any{d.DiffType, d.CarrierOrderID, d.KdOrderID, d.CarrierUserID, d.CarrierOrderTime, d.KdUserID, d.UserStatus, d.PackageID, d.Raw})
}

// Close writes the summary sheet (count and meaning per diffType) and saves the file.
// It returns the counts.
func (r *ReportWriter) Close() (map[string]int, error) {
	defer r.book.Close()
	if err := r.sw.Flush(); err != nil {
		return nil, err
	}
	if _, err := r.book.NewSheet("Summary"); err != nil {
		return nil, err
	}
	types := []string{"1", "2", "3"}
	for t := range r.counts {
		if _, known := DiffTypeMeanings[t]; !known {
			types = append(types, t)
		}
	}
	sort.Strings(types)
	rows := [][]any{{"diffType", "count", "meaning"}}
	total := 0
	for _, t := range types {
		meaning, ok := DiffTypeMeanings[t]
		if !ok {
			meaning = "not documented by KooDrive"
		}
		rows = append(rows, []any{t, r.counts[t], meaning})
		total += r.counts[t]
	}
	rows = append(rows, []any{"total", total, ""})
	for i, row := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := r.book.SetSheetRow("Summary", cell, &row); err != nil {
			return nil, err
		}
	}
	// Written beside its place and renamed, so a report is either the old one or whole.
	tmp := strings.TrimSuffix(r.path, ".xlsx") + ".partial.xlsx"
	if err := r.book.saveAs(tmp); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("save discrepancy report: %w", err)
	}
	if err := os.Rename(tmp, r.path); err != nil {
		return nil, fmt.Errorf("move discrepancy report into place: %w", err)
	}
	return r.counts, nil
}
