package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/xuri/excelize/v2"

	"github.com/kooflow/kooflow/console"
	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/koodrive/sandbox"
	"github.com/kooflow/kooflow/store"
)

// TestBrowserReconcileACycleAndDownloadItsReport: an operator reconciles last month from
// the Reconciliation page, behind its confirmation; the run appears and completes, its
// page lists the discrepancies KooDrive found in words, and its report link downloads
// the workbook the worker wrote, which opens with those discrepancies.
func TestBrowserReconcileACycleAndDownloadItsReport(t *testing.T) {
	e, b := newBrowserEnv(t)
	cycle := contract.PreviousCycle(time.Now().UTC())
	cycleStart, _, _ := contract.CycleBounds(cycle)
	sub := func(id string) store.Subscription {
		return store.Subscription{InstanceID: "inst-" + id, CarrierUserID: "user-" + id, PackageID: "pkg-50GB",
			CarrierOrderID: "CO-" + id, CarrierOrderTime: "2026-01-15T08:00:00Z", ExpireTime: cycleStart.AddDate(0, 2, 0)}
	}
	e.importSubscriptions(sub("both"), sub("carrier-only"))
	e.kd.SeedKooDriveSide([]sandbox.KooDriveRecord{
		{CarrierOrderID: "CO-both", CarrierUserID: "user-both", PackageID: "pkg-50GB", KdOrderID: "KD-both"},
		{CarrierOrderID: "CO-kd-only", CarrierUserID: "user-kd-only", PackageID: "pkg-50GB", KdOrderID: "KD-kd-only"},
	})

	b.signIn(e, "olga", console.RoleOperator)
	if status := b.click(`header nav a[href="/reconciliation"]`); status != http.StatusOK {
		t.Fatalf("Reconciliation answered %d: %s", status, b.text("main"))
	}
	if got := b.value(`input[name="cycle"][pattern]`); got != cycle {
		t.Fatalf("the cycle to reconcile is %q, want last month %s", got, cycle)
	}
	if status := b.click(buttonSaying("Reconcile…")); status != http.StatusOK {
		t.Fatalf("Reconcile… answered %d: %s", status, b.text("main"))
	}
	if h := b.text("h1"); h != "Reconcile "+cycle+"?" {
		t.Fatalf("the confirmation asks %q", h)
	}
	if status := b.click(buttonSaying("Yes, reconcile " + cycle)); status != http.StatusOK {
		t.Fatalf("the reconcile answered %d: %s", status, b.text("main"))
	}
	if notice := b.text("main p.ok"); !strings.Contains(notice, "Started the reconciliation of "+cycle) {
		t.Fatalf("after reconciling the page says %q", notice)
	}
	b.waitText("#runs", "completed", 90*time.Second)
	b.screenshot("reconciliation")

	if status := b.click(linkTo(cycle)); status != http.StatusOK {
		t.Fatalf("the run's page answered %d: %s", status, b.text("main"))
	}
	page := oneLine(b.text("main"))
	for _, want := range []string{"Discrepancies: 2", "no subscription record on the carrier side", "no subscription record on the KooDrive side",
		"KD-kd-only", "CO-carrier-only"} {
		if !strings.Contains(page, want) {
			t.Errorf("the run's page lacks %q: %s", want, page)
		}
	}
	b.screenshot("reconciliation-run")

	// The report, downloaded with the browser's session from the link the page offers.
	ctx, cancel := b.step()
	attrs, err := chromedp.Run(ctx, chromedp.Attributes(chromedp.CSS(`main a[href*="file=report"]`)))
	cancel()
	if err != nil {
		t.Fatalf("the run's page offers no report link: %v", err)
	}
	href := attrs["href"]
	req, _ := http.NewRequest(http.MethodGet, b.console+href, nil)
	req.AddCookie(b.sessionCookie())
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("the report link answered %d (%s)", resp.StatusCode, resp.Header.Get("Content-Disposition"))
	}
	book, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the downloaded report does not open: %v", err)
	}
	defer book.Close()
	rows, err := book.GetRows("Discrepancies")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, row := range rows[1:] {
		got = append(got, fmt.Sprintf("%s %s %s", row[0], row[1], row[2]))
	}
	slices.Sort(got)
	if want := []string{"1 CO-kd-only KD-kd-only", "2 CO-carrier-only"}; len(got) != 2 || got[0] != want[0] || !strings.HasPrefix(got[1], want[1]) {
		t.Fatalf("the report's discrepancies are %q, want %q", got, want)
	}
}
