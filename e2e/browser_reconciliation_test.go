package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
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

// TestBrowserRegistryUploadWithABadRowChangesNothing: an admin uploads a registry file
// with one bad row from the Registry page; the page names the row and why, nothing of the
// file is imported, the subscription already there is unchanged, and the audit log shows
// the refused import under the admin's name.
func TestBrowserRegistryUploadWithABadRowChangesNothing(t *testing.T) {
	e, b := newBrowserEnv(t)
	e.importSubscriptions(store.Subscription{InstanceID: "inst-kept", CarrierUserID: "user-kept", PackageID: "pkg-50GB"})
	file := filepath.Join(t.TempDir(), "registry-december.csv")
	csv := "instanceId,carrierUserId,packageId\ninst-kept,user-kept,pkg-200GB\ninst-new,user-new,pkg-50GB\ninst-bad,,pkg-50GB\n"
	if err := os.WriteFile(file, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}

	b.signIn(e, "ada", console.RoleAdmin)
	if status := b.click(`header nav a[href="/registry"]`); status != http.StatusOK {
		t.Fatalf("Registry answered %d", status)
	}
	b.typeInto(`form.filters input[name="q"]`, "user-kept")
	if status := b.click(buttonSaying("Find")); status != http.StatusOK {
		t.Fatalf("the search answered %d", status)
	}
	if found := b.text("main section.summary"); !strings.Contains(found, "inst-kept") || !strings.Contains(found, "pkg-50GB") {
		t.Fatalf("the registry search shows %q", found)
	}
	b.screenshot("registry")

	ctx, cancel := b.step()
	err := chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS(`input[type="file"][name="file"]`), []string{file}))
	cancel()
	if err != nil {
		t.Fatalf("choose the file: %v", err)
	}
	if status := b.click(buttonSaying("Import")); status != http.StatusOK {
		t.Fatalf("the upload answered %d", status)
	}
	if refused := oneLine(b.text("main")); !strings.Contains(refused, "Refused: 1 invalid row(s). Nothing was imported") ||
		!strings.Contains(refused, "4 carrierUserId is required") {
		t.Fatalf("the refused upload reads %q", refused)
	}
	b.screenshot("registry-refused")
	if _, err := e.app.Store.SubscriptionByInstance(context.Background(), "inst-new"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused file imported inst-new: %v", err)
	}
	if kept, err := e.app.Store.SubscriptionByInstance(context.Background(), "inst-kept"); err != nil || kept.PackageID != "pkg-50GB" {
		t.Fatalf("the refused file changed inst-kept: %+v %v", kept, err)
	}

	if status := b.click(`header nav a[href="/audit"]`); status != http.StatusOK {
		t.Fatalf("Audit log answered %d", status)
	}
	if row := oneLine(b.text("main table tbody tr")); !strings.Contains(row, "ada console") || !strings.Contains(row, "registry import registry-december.csv") ||
		!strings.Contains(row, "failed") || !strings.Contains(row, "registry-december.csv: 1 invalid row(s), nothing imported: row 4: carrierUserId is required") {
		t.Fatalf("the audit log's newest entry is %q", row)
	}
	b.screenshot("audit")
	e.expire("inst-kept", nil)
	e.expire("inst-unknown", nil)
	if status := b.click(`header nav a[href="/deliveries"]`); status != http.StatusOK {
		t.Fatalf("Deliveries answered %d", status)
	}
	if rows := oneLine(b.text("main table tbody")); !strings.Contains(rows, "inst-kept") || !strings.Contains(rows, "accepted") ||
		!strings.Contains(rows, "inst-unknown") || !strings.Contains(rows, "refused") {
		t.Fatalf("the delivery log reads %q, want inst-kept accepted and inst-unknown refused", rows)
	}
	b.screenshot("deliveries")
}
