package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/kooflow/kooflow/koodrive"
)

// KooDriveRecord is a subscription as KooDrive sees it, for reconciliation.
type KooDriveRecord struct {
	CarrierOrderID   string
	CarrierUserID    string
	CarrierOrderTime string
	PackageID        string
	KdOrderID        string
	KdUserID         string
	UserStatus       string
}

// batch is one uploaded statement and its discrepancies.
type batch struct {
	cycle string
	diffs []map[string]any
	polls int
}

// SeedKooDriveSide sets the records KooDrive compares uploaded statements with.
func (s *Sandbox) SeedKooDriveSide(records []KooDriveRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kdRecords = append([]KooDriveRecord(nil), records...)
}

// SetProcessingPolls makes every batch "not checked yet" for its first n getList calls.
func (s *Sandbox) SetProcessingPolls(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.processingPolls = n
}

// SetProcessingWhile makes batches "not checked yet" while cond reports true.
func (s *Sandbox) SetProcessingWhile(cond func() bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.processingWhile = cond
}

// SetServiceFrozen sets the tenant status GET /service reports.
func (s *Sandbox) SetServiceFrozen(frozen bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serviceFrozen = frozen
}

// Upload is one accepted data/verify call.
type Upload struct {
	BatchNo  string
	Cycle    string
	Filename string
	Rows     int
}

// Uploads returns every accepted statement upload, in order.
func (s *Sandbox) Uploads() []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Upload(nil), s.uploads...)
}

func (s *Sandbox) service(w http.ResponseWriter, r *http.Request) {
	if !s.admit(w, r, http.MethodGet, "service") {
		return
	}
	if a := s.injected(r.URL.Path); a != nil {
		writeAnswer(w, a)
		return
	}
	s.mu.Lock()
	status := 0
	if s.serviceFrozen {
		status = 1
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"code": 0, "msg": "Success.", "data": map[string]any{
		"status": status, "tenantId": "sandbox-tenant", "organizationName": "kooflow sandbox", "productType": "carrier",
		"spaceCapacity": 1024, "userCount": 100,
	}})
}

var cyclePattern = regexp.MustCompile(`^([0-9]{4})-(0[1-9]|1[0-2])$`)

// statementColumns are the columns the sandbox needs in an uploaded statement.
var statementColumns = []string{"carrierOrderId", "carrierUserId", "carrierOrderTime", "packageId"}

func (s *Sandbox) verifyData(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if !s.admit(w, r, http.MethodPost, "data/verify") {
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		s.reject(w, path, http.StatusBadRequest, "13000102", "Content-Type must be multipart/form-data")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 256<<20)
	if err := r.ParseMultipartForm(32 << 20); err != nil {
		s.reject(w, path, http.StatusBadRequest, "13000102", "unreadable multipart body: "+err.Error())
		return
	}
	defer r.MultipartForm.RemoveAll()
	cycle := r.FormValue("billingCycle")
	m := cyclePattern.FindStringSubmatch(cycle)
	if m == nil {
		s.reject(w, path, http.StatusBadRequest, "13000102", fmt.Sprintf("billingCycle %q is not yyyy-MM", cycle))
		return
	}
	year, _ := strconv.Atoi(m[1])
	month, _ := strconv.Atoi(m[2])
	now := s.opts.Now().UTC()
	if !time.Date(year, time.Month(month), 1, 0, 0, 0, 0, time.UTC).Before(time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)) {
		s.reject(w, path, http.StatusBadRequest, "13000102", fmt.Sprintf("billingCycle %s is not a past cycle", cycle))
		return
	}
	files := r.MultipartForm.File["data"]
	if len(files) != 1 {
		s.reject(w, path, http.StatusBadRequest, "13000102", "exactly one file part named data is required")
		return
	}
	fh := files[0]
	if !strings.HasSuffix(strings.ToLower(fh.Filename), ".xlsx") && !strings.HasSuffix(strings.ToLower(fh.Filename), ".xls") {
		s.reject(w, path, http.StatusBadRequest, "13000102", fmt.Sprintf("file %q must be .xlsx or .xls", fh.Filename))
		return
	}
	f, err := fh.Open()
	if err != nil {
		s.reject(w, path, http.StatusBadRequest, "13000102", "unreadable file part")
		return
	}
	defer f.Close()
	rows, err := readStatement(f)
	if err != nil {
		s.reject(w, path, http.StatusBadRequest, "13000102", "data is not a readable statement: "+err.Error())
		return
	}
	if a := s.injected(path); a != nil {
		writeAnswer(w, a)
		return
	}
	s.mu.Lock()
	s.batchSeq++
	batchNo := fmt.Sprintf("%d%06d", 1465526600000000+int64(year*100+month), s.batchSeq)
	if s.batches == nil {
		s.batches = map[string]*batch{}
	}
	s.batches[batchNo] = &batch{cycle: cycle, diffs: compare(rows, s.kdRecords)}
	s.uploads = append(s.uploads, Upload{BatchNo: batchNo, Cycle: cycle, Filename: fh.Filename, Rows: len(rows)})
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"code": 0, "msg": "Success.", "batchNo": batchNo})
}

// readStatement opens an uploaded workbook and returns its rows as column→value maps.
func readStatement(f io.Reader) ([]map[string]string, error) {
	book, err := excelize.OpenReader(f)
	if err != nil {
		return nil, err
	}
	defer book.Close()
	sheets := book.GetSheetList()
	if len(sheets) == 0 {
		return nil, fmt.Errorf("workbook has no sheet")
	}
	it, err := book.Rows(sheets[0])
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var header []string
	var rows []map[string]string
	for it.Next() {
		cols, err := it.Columns()
		if err != nil {
			return nil, err
		}
		if header == nil {
			header = cols
			for _, want := range statementColumns {
				found := false
				for _, h := range header {
					found = found || h == want
				}
				if !found {
					return nil, fmt.Errorf("header lacks column %s", want)
				}
			}
			continue
		}
		row := map[string]string{}
		for i, v := range cols {
			if i < len(header) {
				row[header[i]] = v
			}
		}
		rows = append(rows, row)
	}
	if header == nil {
		return nil, fmt.Errorf("first sheet is empty")
	}
	return rows, it.Error()
}

// compare produces KooDrive's discrepancies: type 1, KooDrive has a subscription the
// carrier statement lacks; type 2, the statement has one KooDrive lacks; type 3, both
// have it but the benefit (package) differs. Records are matched by carrierOrderId.
func compare(statement []map[string]string, kd []KooDriveRecord) []map[string]any {
	carrier := map[string]map[string]string{}
	for _, row := range statement {
		carrier[row["carrierOrderId"]] = row
	}
	kdByOrder := map[string]KooDriveRecord{}
	var diffs []map[string]any
	for _, rec := range kd {
		kdByOrder[rec.CarrierOrderID] = rec
		row, ok := carrier[rec.CarrierOrderID]
		switch {
		case !ok:
			diffs = append(diffs, diff(rec.CarrierOrderID, rec.KdOrderID, rec.CarrierUserID, rec.CarrierOrderTime, rec.KdUserID, rec.UserStatus, "1", rec.PackageID))
		case row["packageId"] != rec.PackageID:
			diffs = append(diffs, diff(rec.CarrierOrderID, rec.KdOrderID, rec.CarrierUserID, rec.CarrierOrderTime, rec.KdUserID, rec.UserStatus, "3", rec.PackageID))
		}
	}
	for _, row := range statement {
		if _, ok := kdByOrder[row["carrierOrderId"]]; !ok {
			diffs = append(diffs, diff(row["carrierOrderId"], "", row["carrierUserId"], row["carrierOrderTime"], "", "", "2", row["packageId"]))
		}
	}
	sort.SliceStable(diffs, func(i, j int) bool { return diffs[i]["carrierOrderId"].(string) < diffs[j]["carrierOrderId"].(string) })
	return diffs
}

func diff(carrierOrderID, kdOrderID, carrierUserID, orderTime, kdUserID, userStatus, diffType, kdPackage string) map[string]any {
	return map[string]any{
		"carrierOrderId": carrierOrderID, "kdOrderId": kdOrderID, "carrierUserId": carrierUserID,
		"carrierOrderTime": orderTime, "kdUserId": kdUserID, "userStatus": userStatus, "diffType": diffType,
		// Not in the public DiffBill table: the sandbox adds a field so clients prove
		// they keep unknown fields.
		"kdPackageId": kdPackage,
	}
}

func (s *Sandbox) diffList(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if !s.admit(w, r, http.MethodGet, "diff/getList") {
		return
	}
	q := r.URL.Query()
	pageSize := 100
	if v := q.Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > koodrive.MaxDiffPageSize {
			s.reject(w, path, http.StatusBadRequest, "13000102", fmt.Sprintf("pageSize %q must be 1-%d", v, koodrive.MaxDiffPageSize))
			return
		}
		pageSize = n
	}
	offset := 0
	if c := q.Get("pageCursor"); c != "" {
		raw, err := base64.RawURLEncoding.DecodeString(c)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(raw), "offset:"))
		if err != nil || err2 != nil || n < 0 || !strings.HasPrefix(string(raw), "offset:") {
			s.reject(w, path, http.StatusBadRequest, "13000102", fmt.Sprintf("pageCursor %q is not a cursor this API returned", c))
			return
		}
		offset = n
	}
	if a := s.injected(path); a != nil {
		writeAnswer(w, a)
		return
	}
	s.mu.Lock()
	b, ok := s.batches[q.Get("batchNo")]
	if !ok {
		s.mu.Unlock()
		s.reject(w, path, http.StatusBadRequest, "13000102", fmt.Sprintf("batchNo %q is unknown", q.Get("batchNo")))
		return
	}
	b.polls++
	processing := b.polls <= s.processingPolls || (s.processingWhile != nil && s.processingWhile())
	diffs := b.diffs
	s.mu.Unlock()
	if processing {
		// An unfinished check answers without a total (see koodrive.diffListReady).
		writeJSON(w, http.StatusOK, map[string]any{"code": "0", "msg": "The batch is being checked.", "diffList": []any{}})
		return
	}
	if offset > len(diffs) {
		offset = len(diffs)
	}
	end := min(offset+pageSize, len(diffs))
	next := ""
	if end < len(diffs) {
		next = base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(end)))
	}
	page := diffs[offset:end]
	if page == nil {
		page = []map[string]any{}
	}
	body, _ := json.Marshal(map[string]any{"code": "0", "msg": "Success.", "diffList": page, "total": len(diffs), "nextPageCursor": next})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func writeAnswer(w http.ResponseWriter, a *answer) {
	for k, v := range a.header {
		w.Header()[k] = v
	}
	writeJSON(w, a.status, map[string]string{"code": a.code, "msg": a.msg})
}
