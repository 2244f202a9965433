package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/koodrive/sandbox"
	"github.com/kooflow/kooflow/statement"
	"github.com/kooflow/kooflow/store"
)

// runFetch pages n discrepancies out of the sandbox into the store with the real
// FetchDiscrepancies activity (pageSize 1000, cursor heartbeated).
func runFetch(args []string) error {
	fs := newFlags("fetch")
	n := fs.Int("n", 100000, "discrepancies")
	_ = fs.Parse(args)
	dir, err := os.MkdirTemp("", "kooflow-bench-fetch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, "kooflow.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	sb := sandbox.New(sandbox.Options{AccessToken: "t", UserID: "u"})
	records := make([]sandbox.KooDriveRecord, *n)
	for i := range records {
		records[i] = sandbox.KooDriveRecord{CarrierOrderID: fmt.Sprintf("CO-%07d", i), CarrierUserID: fmt.Sprintf("user-%07d", i), PackageID: "pkg", KdOrderID: fmt.Sprintf("KD-%07d", i)}
	}
	sb.SeedKooDriveSide(records)
	srv := httptest.NewServer(sb.Handler())
	defer srv.Close()
	kd, err := koodrive.New(koodrive.Config{BaseURL: srv.URL, AccessToken: "t", UserID: "u"})
	if err != nil {
		return err
	}
	// An empty statement: every KooDrive record is a discrepancy of type 1.
	w, err := statement.Create(filepath.Join(dir, "empty.xlsx"))
	if err != nil {
		return err
	}
	sum, err := w.Close()
	if err != nil {
		return err
	}
	data, _ := os.ReadFile(sum.Path)
	cycle := contract.PreviousCycle(time.Now().UTC())
	batch, err := kd.VerifyData(context.Background(), cycle, cycle+".xlsx", bytes.NewReader(data))
	if err != nil {
		return err
	}
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(sdklog.NewStructuredLogger(quiet()))
	env := suite.NewTestActivityEnvironment()
	acts := &activities.Reconciliation{Store: st, KooDrive: kd, Dir: dir, Logger: quiet()}
	env.RegisterActivity(acts.FetchDiscrepancies)
	start := time.Now()
	val, err := env.ExecuteActivity(acts.FetchDiscrepancies, cycle, batch)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	var res contract.FetchResult
	if err := val.Get(&res); err != nil {
		return err
	}
	if res.Total != *n || res.Counts["1"] != *n {
		return fmt.Errorf("fetched %+v, want %d of type 1", res, *n)
	}
	fmt.Printf("\nfetch: %d discrepancies in %d pages into SQLite: %.1f s, %.0f records/s, peak RSS %.0f MB\n",
		*n, res.Pages, elapsed.Seconds(), float64(*n)/elapsed.Seconds(), peakRSSMB())
	return nil
}
