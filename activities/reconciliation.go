package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/records"
	"github.com/kooflow/kooflow/statement"
)

// ReconciliationAPI is the part of the KooDrive client reconciliation uses.
type ReconciliationAPI interface {
	GetServiceStatus(ctx context.Context) (koodrive.ServiceStatus, error)
	VerifyData(ctx context.Context, billingCycle, filename string, statement io.Reader) (string, error)
	GetDiffList(ctx context.Context, batchNo string, pageSize int, cursor string) (koodrive.DiffPage, error)
}

// ReconciliationStore is the part of kooflow's store the reconciliation activities use;
// *store.Store implements it.
type ReconciliationStore interface {
	SaveRun(ctx context.Context, r records.ReconciliationRun) error
	EachStatementCandidate(ctx context.Context, start, end time.Time, fn func(records.StatementCandidate) error) error
	BatchFor(ctx context.Context, cycle, sha string) (string, error)
	RecordBatch(ctx context.Context, cycle, sha, batchNo string) error
	SaveDiscrepancies(ctx context.Context, ds []records.Discrepancy) error
	CountDiscrepancies(ctx context.Context, batchNo string) (map[string]int, error)
	EachDiscrepancy(ctx context.Context, batchNo string, fn func(records.Discrepancy) error) error
}

// ReconciliationObserver records finished runs and built statements; *metrics.Metrics
// implements it. (The last cycle's discrepancies are read from the store at scrape time.)
type ReconciliationObserver interface {
	CountReconciliationRun(state string)
	ObserveStatement(rows int, seconds float64)
}

// Reconciliation holds the dependencies of the reconciliation workflow's activities. As
// with Expiration, the worker registers the struct and each exported method's name is
// the activity's name in recorded histories.
type Reconciliation struct {
	Store    ReconciliationStore
	KooDrive ReconciliationAPI
	// Dir is where statements and reports are written: one folder per cycle and in it
	// one per run (runDir).
	Dir    string
	Logger *slog.Logger
	// Metrics records runs and statements; nil records nothing.
	Metrics ReconciliationObserver
}

func (a *Reconciliation) logger() *slog.Logger { return loggerOrDefault(a.Logger) }

// kooDriveError turns a KooDrive failure into an activity error: business rejections are
// non-retryable, everything else is retried by the activity's policy.
func kooDriveError(what string, err error) error {
	msg := fmt.Sprintf("%s: %v", what, err)
	if !koodrive.IsRetryable(err) {
		return temporal.NewNonRetryableApplicationError(msg, contract.ErrTypeKooDriveRejected, err)
	}
	return temporal.NewApplicationErrorWithCause(msg, contract.ErrTypeKooDriveUnavailable, err)
}

// CheckKooDriveService fails, non-retryably, when the tenant's KooDrive service is frozen.
func (a *Reconciliation) CheckKooDriveService(ctx context.Context) error {
	status, err := a.KooDrive.GetServiceStatus(ctx)
	if err != nil {
		return kooDriveError("check KooDrive service status", err)
	}
	if status.Frozen() {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("KooDrive service of tenant %s is frozen (status=1): reconciliation cannot run until it is unfrozen", status.TenantID),
			contract.ErrTypeServiceFrozen, nil)
	}
	return nil
}

// SaveReconciliationRun mirrors the workflow's progress into the store's row of this run
// (the cycle and Temporal's run ID: every run of a cycle keeps its own), for
// `kooflow reconcile list` and `show` and the metrics.
func (a *Reconciliation) SaveReconciliationRun(ctx context.Context, p contract.RunProgress) error {
	execution := activity.GetInfo(ctx).WorkflowExecution
	run := records.ReconciliationRun{
		Cycle: p.Cycle, WorkflowID: execution.ID, RunID: execution.RunID, State: p.State,
		StatementPath: p.StatementPath, StatementRows: p.StatementRows, StatementSHA256: p.StatementSHA256,
		BatchNo: p.BatchNo, ReportPath: p.ReportPath, Counts: p.Counts, Error: p.Error,
	}
	if err := a.Store.SaveRun(ctx, run); err != nil {
		return err
	}
	if a.Metrics != nil && activity.GetInfo(ctx).Attempt == 1 {
		a.Metrics.CountReconciliationRun(run.State)
	}
	return nil
}

// runDir is the folder of one run's files, <Dir>/<cycle>/<run ID>/, named by Temporal's
// run ID of the workflow: a retried activity belongs to the same run and rewrites its
// own files, while another run of the cycle (`kooflow reconcile --force`, a reset, the
// schedule after a failure) writes beside them and never over them. Releases before
// this wrote <Dir>/<cycle>/statement-<cycle>.xlsx and discrepancies-<cycle>.xlsx; those
// files stay where they are, and their runs' rows in the store still name them.
func (a *Reconciliation) runDir(ctx context.Context, cycle string) string {
	run := strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, activity.GetInfo(ctx).WorkflowExecution.RunID)
	if run == "" {
		run = "no-run-id"
	}
	return filepath.Join(a.Dir, cycle, run)
}

// statementBatch is how many rows travel together from the database reader to the
// statement writer.
const statementBatch = 1024

// BuildStatement writes the cycle's statement: one row per subscription active during
// the cycle, with its status at the cycle's end, streamed from one registry cursor into
// statement-<cycle>.xlsx in the run's folder (runDir). Reading the
// database and encoding the workbook run side by side (in batches, through a short
// channel), so a million-row statement takes about as long as the slower of the two, in
// memory that does not grow with the registry.
func (a *Reconciliation) BuildStatement(ctx context.Context, cycle string) (contract.StatementInfo, error) {
	start, end, err := contract.CycleBounds(cycle)
	if err != nil {
		return contract.StatementInfo{}, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidCycle", err)
	}
	began := time.Now()
	path := filepath.Join(a.runDir(ctx, cycle), "statement-"+cycle+".xlsx")
	w, err := statement.Create(path)
	if err != nil {
		return contract.StatementInfo{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []statement.Row, 4)
	free := make(chan []statement.Row, 6)
	readErr := make(chan error, 1)
	go func() {
		defer close(batches)
		batch := make([]statement.Row, 0, statementBatch)
		err := a.Store.EachStatementCandidate(ctx, start, end, func(c records.StatementCandidate) error {
			if !ordered(c, end) {
				return nil
			}
			batch = append(batch, statement.Row{c.CarrierOrderID, c.CarrierUserID, c.CarrierOrderTime, c.PackageID, c.Status, formatExpiry(c.ExpireTime)})
			if len(batch) < statementBatch {
				return nil
			}
			select {
			case batches <- batch:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case batch = <-free:
			default:
				batch = make([]statement.Row, 0, statementBatch)
			}
			return nil
		})
		if err == nil && len(batch) > 0 {
			select {
			case batches <- batch:
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		readErr <- err
	}()
	lastBeat := time.Now()
	var writeErr error
	for batch := range batches {
		for _, row := range batch {
			if writeErr = w.Add(row); writeErr != nil {
				break
			}
		}
		if writeErr != nil {
			cancel()
			break
		}
		if time.Since(lastBeat) > 5*time.Second {
			activity.RecordHeartbeat(ctx, w.Rows())
			lastBeat = time.Now()
		}
		select {
		case free <- batch[:0]:
		default:
		}
	}
	for range batches {
		// Drain, so the reader can see the cancellation and stop.
	}
	if err := errors.Join(writeErr, <-readErr); err != nil {
		w.Abort()
		if writeErr != nil {
			err = writeErr
		}
		return contract.StatementInfo{}, fmt.Errorf("build statement for %s: %w", cycle, err)
	}
	sum, err := w.Close()
	if err != nil {
		return contract.StatementInfo{}, err
	}
	a.logger().Info("statement built", "cycle", cycle, "rows", sum.Rows, "path", sum.Path, "seconds", time.Since(began).Seconds())
	if a.Metrics != nil {
		a.Metrics.ObserveStatement(sum.Rows, time.Since(began).Seconds())
	}
	return contract.StatementInfo{Path: sum.Path, Rows: sum.Rows, SHA256: sum.SHA256, BuildSeconds: time.Since(began).Seconds()}, nil
}

// ordered reports whether a statement candidate was ordered before the cycle ended:
// by its carrierOrderTime, or, when that is empty or unreadable, by when kooflow learned
// of it. (The store has already left out what expired or was released before the cycle.)
func ordered(c records.StatementCandidate, end time.Time) bool {
	at := c.CreatedAt
	if t, err := records.ParseTime(c.CarrierOrderTime); err == nil {
		at = t
	}
	return at.Before(end)
}

func formatExpiry(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// UploadStatement sends the statement to KooDrive's data/verify and returns the batch
// number. A statement whose content already has a batch for this cycle is not sent again.
func (a *Reconciliation) UploadStatement(ctx context.Context, cycle string, info contract.StatementInfo) (contract.UploadResult, error) {
	if batch, err := a.Store.BatchFor(ctx, cycle, info.SHA256); err == nil {
		a.logger().Info("statement already uploaded; reusing its batch", "cycle", cycle, "batchNo", batch)
		return contract.UploadResult{BatchNo: batch, Reused: true}, nil
	} else if !errors.Is(err, records.ErrNotFound) {
		return contract.UploadResult{}, err
	}
	f, err := os.Open(info.Path)
	if err != nil {
		return contract.UploadResult{}, fmt.Errorf("open statement %s: %w", info.Path, err)
	}
	defer f.Close()
	batch, err := a.KooDrive.VerifyData(ctx, cycle, cycle+".xlsx", f)
	if err != nil {
		return contract.UploadResult{}, kooDriveError("upload statement for "+cycle, err)
	}
	if err := a.Store.RecordBatch(ctx, cycle, info.SHA256, batch); err != nil {
		return contract.UploadResult{}, err
	}
	a.logger().Info("statement uploaded", "cycle", cycle, "batchNo", batch, "rows", info.Rows)
	return contract.UploadResult{BatchNo: batch}, nil
}

// errTypeNotReady marks the retryable error WaitForDiscrepancyResults returns while KooDrive is
// still checking; the activity's retry policy is the polling loop.
const errTypeNotReady = "ResultsNotReady"

// WaitForDiscrepancyResults asks KooDrive once whether the batch has been checked. It fails with a
// retryable error while it has not, so the activity's fixed-interval retries poll
// infrequently without growing the workflow's history.
func (a *Reconciliation) WaitForDiscrepancyResults(ctx context.Context, batchNo string) (int, error) {
	page, err := a.KooDrive.GetDiffList(ctx, batchNo, 1, "")
	if err != nil {
		return 0, kooDriveError("poll discrepancies of batch "+batchNo, err)
	}
	if !page.Ready {
		return 0, temporal.NewApplicationError(fmt.Sprintf("KooDrive is still checking batch %s (poll %d)", batchNo, activity.GetInfo(ctx).Attempt), errTypeNotReady)
	}
	return page.Total, nil
}

// FetchDiscrepancies pages through every discrepancy of the batch, storing each page.
// The cursor of the next page is the heartbeat, so a retried attempt resumes there.
func (a *Reconciliation) FetchDiscrepancies(ctx context.Context, cycle, batchNo string) (contract.FetchResult, error) {
	var progress contract.FetchProgress
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &progress); err != nil {
			progress = contract.FetchProgress{}
		}
	}
	for {
		page, err := a.KooDrive.GetDiffList(ctx, batchNo, koodrive.MaxDiffPageSize, progress.Cursor)
		if err != nil {
			return contract.FetchResult{}, kooDriveError(fmt.Sprintf("fetch discrepancies of batch %s after %d", batchNo, progress.Fetched), err)
		}
		if !page.Ready {
			return contract.FetchResult{}, temporal.NewApplicationError("KooDrive reports batch "+batchNo+" as not checked any more", errTypeNotReady)
		}
		ds := make([]records.Discrepancy, len(page.DiffList))
		for i, d := range page.DiffList {
			ds[i] = records.Discrepancy{BatchNo: batchNo, Cycle: cycle, Seq: progress.Fetched + i, DiffType: d.DiffType,
				CarrierOrderID: d.CarrierOrderID, KdOrderID: d.KdOrderID, CarrierUserID: d.CarrierUserID,
				CarrierOrderTime: d.CarrierOrderTime, KdUserID: d.KdUserID, UserStatus: d.UserStatus, Raw: string(d.Raw)}
		}
		if err := a.Store.SaveDiscrepancies(ctx, ds); err != nil {
			return contract.FetchResult{}, err
		}
		progress.Fetched += len(ds)
		progress.Pages++
		progress.Cursor = page.NextPageCursor
		activity.RecordHeartbeat(ctx, progress)
		if page.NextPageCursor == "" || len(page.DiffList) == 0 {
			counts, err := a.Store.CountDiscrepancies(ctx, batchNo)
			if err != nil {
				return contract.FetchResult{}, err
			}
			return contract.FetchResult{Total: page.Total, Pages: progress.Pages, Counts: counts}, nil
		}
	}
}

// WriteDiscrepancyReport writes the discrepancy report, discrepancies-<cycle>.xlsx, next to
// the statement in the run's folder (runDir), each discrepancy with the package the
// registry has for its carrier order.
func (a *Reconciliation) WriteDiscrepancyReport(ctx context.Context, cycle, batchNo string) (contract.ReportInfo, error) {
	path := filepath.Join(a.runDir(ctx, cycle), "discrepancies-"+cycle+".xlsx")
	r, err := statement.CreateReport(path)
	if err != nil {
		return contract.ReportInfo{}, err
	}
	err = a.Store.EachDiscrepancy(ctx, batchNo, func(d records.Discrepancy) error {
		return r.Add(statement.Discrepancy{DiffType: d.DiffType, CarrierOrderID: d.CarrierOrderID, KdOrderID: d.KdOrderID,
			CarrierUserID: d.CarrierUserID, CarrierOrderTime: d.CarrierOrderTime, KdUserID: d.KdUserID, UserStatus: d.UserStatus,
			PackageID: d.PackageID, Raw: d.Raw})
	})
	if err != nil {
		return contract.ReportInfo{}, err
	}
	counts, err := r.Close()
	if err != nil {
		return contract.ReportInfo{}, err
	}
	return contract.ReportInfo{Path: path, Counts: counts}, nil
}
