package koodrive

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
)

// Paths of the reconciliation and service endpoints.
const (
	ServicePath     = "/koodrive/ose/v1/service"
	DataVerifyPath  = "/koodrive/ose/v1/reconciliation/data/verify"
	DiffGetListPath = "/koodrive/ose/v1/reconciliation/diff/getList"
)

// XLSXContentType is the media type of an uploaded statement.
const XLSXContentType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

// MaxDiffPageSize is the largest pageSize diff/getList accepts.
const MaxDiffPageSize = 1000

// ServiceStatus is the tenant's KooDrive subscription status (GET /service).
type ServiceStatus struct {
	// Status is 0 for normal, 1 for frozen.
	Status           int    `json:"status"`
	TenantID         string `json:"tenantId"`
	OrganizationName string `json:"organizationName"`
	ProductType      string `json:"productType"`
}

// ServiceFrozenCode is the code a frozen tenant is reported with to Config.Report (by
// the worker's probe of GET /service): kooflow's, not one KooDrive sends.
const ServiceFrozenCode = "tenant-frozen"

// Frozen reports whether the tenant cannot use KooDrive.
func (s ServiceStatus) Frozen() bool { return s.Status == 1 }

// GetServiceStatus reads the tenant's subscription status.
func (c *Client) GetServiceStatus(ctx context.Context) (ServiceStatus, error) {
	raw, err := c.call(ctx, http.MethodGet, ServicePath, nil, "", nil)
	if err != nil {
		return ServiceStatus{}, err
	}
	var body struct {
		Data *ServiceStatus `json:"data"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || body.Data == nil {
		return ServiceStatus{}, &Error{Endpoint: ServicePath, HTTPStatus: 200, Msg: "answer has no service status data", Retryable: true}
	}
	return *body.Data, nil
}

// VerifyData uploads the reconciliation statement for billingCycle (yyyy-MM) as the
// multipart part "data" and returns KooDrive's batch number. The multipart body is built
// in memory, so the exact bytes sent are the bytes an app signature covers.
func (c *Client) VerifyData(ctx context.Context, billingCycle, filename string, statement io.Reader) (string, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	header := textproto.MIMEHeader{}
	header.Set("Content-Disposition", fmt.Sprintf(`form-data; name="data"; filename=%q`, filename))
	header.Set("Content-Type", XLSXContentType)
	part, err := mw.CreatePart(header)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(part, statement); err != nil {
		return "", fmt.Errorf("read statement %s: %w", filename, err)
	}
	if err := mw.WriteField("billingCycle", billingCycle); err != nil {
		return "", err
	}
	if err := mw.Close(); err != nil {
		return "", err
	}
	raw, err := c.call(ctx, http.MethodPost, DataVerifyPath, nil, mw.FormDataContentType(), body.Bytes())
	if err != nil {
		return "", err
	}
	var res struct {
		BatchNo string `json:"batchNo"`
	}
	if err := json.Unmarshal(raw, &res); err != nil || res.BatchNo == "" {
		return "", &Error{Endpoint: DataVerifyPath, HTTPStatus: 200, Msg: "answer has no batchNo: " + truncate(string(raw), 200), Retryable: true}
	}
	return res.BatchNo, nil
}

// DiffBill is one discrepancy. Fields after diffType are not public, so Raw keeps the
// record exactly as KooDrive sent it, unknown fields included.
type DiffBill struct {
	CarrierOrderID   string          `json:"carrierOrderId"`
	KdOrderID        string          `json:"kdOrderId"`
	CarrierUserID    string          `json:"carrierUserId"`
	CarrierOrderTime string          `json:"carrierOrderTime"`
	KdUserID         string          `json:"kdUserId"`
	UserStatus       string          `json:"userStatus"`
	DiffType         string          `json:"diffType"`
	Raw              json.RawMessage `json:"-"`
}

// DiffPage is one page of discrepancies.
type DiffPage struct {
	// Ready is false while KooDrive is still checking the batch (see diffListReady).
	Ready          bool
	DiffList       []DiffBill
	Total          int
	NextPageCursor string
}

// GetDiffList reads one page of a batch's discrepancies. pageSize must be 1-1000.
func (c *Client) GetDiffList(ctx context.Context, batchNo string, pageSize int, cursor string) (DiffPage, error) {
	if pageSize < 1 || pageSize > MaxDiffPageSize {
		return DiffPage{}, &Error{Endpoint: DiffGetListPath, Msg: fmt.Sprintf("pageSize %d is outside 1-%d", pageSize, MaxDiffPageSize)}
	}
	q := url.Values{"batchNo": {batchNo}, "pageSize": {strconv.Itoa(pageSize)}}
	if cursor != "" {
		q.Set("pageCursor", cursor)
	}
	raw, err := c.call(ctx, http.MethodGet, DiffGetListPath, q, "", nil)
	if err != nil {
		return DiffPage{}, err
	}
	var body struct {
		DiffList       []json.RawMessage `json:"diffList"`
		Total          *int              `json:"total"`
		NextPageCursor string            `json:"nextPageCursor"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return DiffPage{}, &Error{Endpoint: DiffGetListPath, HTTPStatus: 200, Msg: "answer is not the documented JSON: " + err.Error(), Retryable: true}
	}
	page := DiffPage{Ready: diffListReady(body.Total), NextPageCursor: body.NextPageCursor}
	if body.Total != nil {
		page.Total = *body.Total
	}
	for _, item := range body.DiffList {
		var bill DiffBill
		if err := json.Unmarshal(item, &bill); err != nil {
			return DiffPage{}, &Error{Endpoint: DiffGetListPath, HTTPStatus: 200, Msg: "a DiffBill is not an object: " + err.Error()}
		}
		bill.Raw = append(json.RawMessage(nil), item...)
		page.DiffList = append(page.DiffList, bill)
	}
	return page, nil
}

// diffListReady decides whether a getList answer holds the batch's results.
// UNCONFIRMED (spec koodrive-carrier.md §4): KooDrive documents no "still processing"
// status. We assume the check is asynchronous and that an answer without a `total`
// (absent or null) means "not checked yet", while any `total`, 0 included, means the
// results are final. The sandbox emulates exactly this; change it here when KooDrive
// confirms how an unfinished batch answers.
func diffListReady(total *int) bool {
	return total != nil
}
