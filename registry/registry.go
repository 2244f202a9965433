// Package registry reads the carrier's subscription registry from CSV or XLSX files and
// validates every row before anything is written: a file with any bad row is refused
// whole, with every bad row's number and reason.
package registry

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/kooflow/kooflow/store"
)

// Columns is the header a registry file may carry, matched case-insensitively.
var Columns = []string{"instanceId", "orderId", "carrierUserId", "packageId", "carrierOrderId",
	"carrierOrderTime", "expireTime", "gIccid", "packageCode"}

// MaxRows bounds one import, so a wrong file cannot exhaust memory.
const MaxRows = 2_000_000

// RowError is one invalid row.
type RowError struct {
	// Row is the 1-based line of the file (the header is row 1).
	Row    int
	Reason string
}

// ImportError lists every invalid row of a refused file.
type ImportError struct {
	File string
	Rows []RowError
}

// Error implements error.
func (e *ImportError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d invalid row(s), nothing imported:", e.File, len(e.Rows))
	for i, r := range e.Rows {
		if i == 50 {
			fmt.Fprintf(&b, "\n  … and %d more", len(e.Rows)-50)
			break
		}
		fmt.Fprintf(&b, "\n  row %d: %s", r.Row, r.Reason)
	}
	return b.String()
}

// ReadFile parses path by its extension (.csv or .xlsx) and validates every row.
func ReadFile(path string) ([]store.Subscription, error) {
	var (
		rows [][]string
		err  error
	)
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		rows, err = readCSV(path)
	case ".xlsx":
		rows, err = readXLSX(path)
	default:
		return nil, fmt.Errorf("%s: registry files must be .csv or .xlsx", path)
	}
	if err != nil {
		return nil, err
	}
	return Parse(path, rows)
}

func readCSV(path string) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open registry file: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	var rows [][]string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(rows) > MaxRows {
			return nil, fmt.Errorf("%s: more than %d rows; split the file", path, MaxRows)
		}
		rows = append(rows, rec)
	}
}

func readXLSX(path string) ([][]string, error) {
	f, err := excelize.OpenFile(path)
	if err != nil {
		return nil, fmt.Errorf("open registry workbook %s: %w", path, err)
	}
	defer f.Close()
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		return nil, fmt.Errorf("%s: workbook has no sheet", path)
	}
	it, err := f.Rows(sheets[0])
	if err != nil {
		return nil, fmt.Errorf("%s: read sheet %s: %w", path, sheets[0], err)
	}
	defer it.Close()
	var rows [][]string
	for it.Next() {
		cols, err := it.Columns()
		if err != nil {
			return nil, fmt.Errorf("%s: row %d: %w", path, len(rows)+1, err)
		}
		if len(rows) > MaxRows {
			return nil, fmt.Errorf("%s: more than %d rows; split the file", path, MaxRows)
		}
		rows = append(rows, cols)
	}
	return rows, it.Error()
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._:\-]{1,64}$`)

// Parse validates rows (the first is the header) and returns the subscriptions, or an
// *ImportError naming every bad row.
func Parse(file string, rows [][]string) ([]store.Subscription, error) {
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: file is empty; the first row must be a header with %s", file, strings.Join(Columns, ", "))
	}
	index := map[string]int{}
	known := map[string]string{}
	for _, c := range Columns {
		known[strings.ToLower(c)] = c
	}
	for i, h := range rows[0] {
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
	var (
		subs    []store.Subscription
		bad     []RowError
		seenIDs = map[string]int{}
	)
	for i, row := range rows[1:] {
		rowNum := i + 2
		get := func(col string) string {
			j, ok := index[col]
			if !ok || j >= len(row) {
				return ""
			}
			return strings.TrimSpace(row[j])
		}
		if isBlank(row) {
			continue
		}
		sub := store.Subscription{
			InstanceID: get("instanceId"), OrderID: get("orderId"), CarrierUserID: get("carrierUserId"),
			PackageID: get("packageId"), CarrierOrderID: get("carrierOrderId"), CarrierOrderTime: get("carrierOrderTime"),
			GIccid: get("gIccid"), PackageCode: get("packageCode"),
		}
		var reasons []string
		if sub.InstanceID == "" && (sub.GIccid == "" || sub.PackageCode == "") && sub.OrderID == "" {
			reasons = append(reasons, "needs instanceId, or both gIccid and packageCode, or orderId")
		}
		if (sub.GIccid == "") != (sub.PackageCode == "") {
			reasons = append(reasons, "gIccid and packageCode go together")
		}
		for _, f := range []struct{ name, value string }{
			{"instanceId", sub.InstanceID}, {"orderId", sub.OrderID}, {"carrierUserId", sub.CarrierUserID}, {"packageId", sub.PackageID},
			{"gIccid", sub.GIccid}, {"packageCode", sub.PackageCode},
		} {
			required := f.name == "carrierUserId" || f.name == "packageId"
			switch {
			case f.value == "" && required:
				reasons = append(reasons, f.name+" is required")
			case f.value != "" && !idPattern.MatchString(f.value):
				reasons = append(reasons, fmt.Sprintf("%s %q must be 1-64 letters, digits or . _ : -", f.name, f.value))
			}
		}
		if v := get("expireTime"); v != "" {
			t, err := ParseTime(v)
			if err != nil {
				reasons = append(reasons, err.Error())
			}
			sub.ExpireTime = t
		}
		key := "instance:" + sub.InstanceID
		switch {
		case sub.InstanceID != "":
		case sub.GIccid != "":
			key = "sim:" + sub.GIccid + "/" + sub.PackageCode
		default:
			key = "order:" + sub.OrderID
		}
		if first, dup := seenIDs[key]; dup {
			reasons = append(reasons, fmt.Sprintf("same subscription as row %d", first))
		} else {
			seenIDs[key] = rowNum
		}
		if sub.OrderID != "" && key != "order:"+sub.OrderID {
			if first, dup := seenIDs["order:"+sub.OrderID]; dup {
				reasons = append(reasons, fmt.Sprintf("orderId %s is already on row %d (one subscription per order)", sub.OrderID, first))
			} else {
				seenIDs["order:"+sub.OrderID] = rowNum
			}
		}
		if len(reasons) > 0 {
			bad = append(bad, RowError{Row: rowNum, Reason: strings.Join(reasons, "; ")})
			continue
		}
		subs = append(subs, sub)
	}
	if len(bad) > 0 {
		return nil, &ImportError{File: file, Rows: bad}
	}
	return subs, nil
}

func isBlank(row []string) bool {
	for _, v := range row {
		if strings.TrimSpace(v) != "" {
			return false
		}
	}
	return true
}

// timeLayouts are the expiry formats a registry file may use; all are read as UTC.
var timeLayouts = []string{"20060102150405", time.RFC3339, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"}

// ParseTime reads an expiry time in any of the accepted layouts.
func ParseTime(v string) (time.Time, error) {
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("expireTime %q is not yyyyMMddHHmmss, RFC 3339 or yyyy-MM-dd[ HH:mm:ss]", v)
}
