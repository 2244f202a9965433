package registry_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/kooflow/kooflow/registry"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
)

func write(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func forEachBackend(t *testing.T, fn func(t *testing.T, st *store.Store)) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { fn(t, storetest.Open(t, b.DSN(t))) })
	}
}

func TestImportCSV(t *testing.T) {
	path := write(t, "reg.csv", "\ufeffINSTANCEID,orderId,carrierUserId,packageId,expireTime,gIccid,packageCode\n"+
		"inst-1,CS1,user-1,pkg-1,20261031160000,,\n"+
		",,user-2,pkg-2,2026-11-30,8986001,PK1\n"+
		",,,,,,\n")
	if n, err := registry.Validate(path); err != nil || n != 2 {
		t.Fatalf("Validate = %d, %v", n, err)
	}
	st := storetest.OpenSQLite(t)
	stats, err := registry.Import(context.Background(), st, path, registry.Options{})
	if err != nil || stats != (store.ImportStats{ImportID: 1, Inserted: 2}) {
		t.Fatalf("Import = %+v, %v", stats, err)
	}
	sub, err := st.SubscriptionByInstance(context.Background(), "inst-1")
	if err != nil || sub.OrderID != "CS1" || !sub.ExpireTime.Equal(time.Date(2026, 10, 31, 16, 0, 0, 0, time.UTC)) {
		t.Fatalf("inst-1 = %+v, %v", sub, err)
	}
	sim, err := st.SubscriptionBySIM(context.Background(), "8986001", "PK1")
	if err != nil || sim.CarrierUserID != "user-2" || !sim.ExpireTime.Equal(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("SIM = %+v, %v", sim, err)
	}
}

func TestEveryBadRowIsReported(t *testing.T) {
	path := write(t, "reg.csv", "instanceId,carrierUserId,packageId,expireTime,gIccid,packageCode\n"+
		"inst-1,user-1,pkg-1,,,\n"+
		"inst-2,,pkg-2,,,\n"+
		",user-3,pkg-3,,,\n"+
		"inst-4,user-4,pkg-4,tomorrow,,\n"+
		"inst-5,user-5,pkg-5,,,\n"+
		"inst'--,user-6,pkg-6,,,\n"+
		",user-7,pkg-7,,8986,\n")
	_, err := registry.Validate(path)
	var ierr *registry.ImportError
	if !errors.As(err, &ierr) {
		t.Fatalf("err = %v", err)
	}
	want := map[int]string{3: "carrierUserId is required", 4: "needs instanceId, or both gIccid and packageCode, or orderId", 5: "expireTime", 7: "instanceId", 8: "go together"}
	if len(ierr.Rows) != len(want) || ierr.Total != len(want) {
		t.Fatalf("rows = %+v", ierr.Rows)
	}
	for _, r := range ierr.Rows {
		if !strings.Contains(r.Reason, want[r.Row]) {
			t.Errorf("row %d: %q, want it to mention %q", r.Row, r.Reason, want[r.Row])
		}
	}
	// Import refuses the same file before touching the store.
	st := storetest.OpenSQLite(t)
	if _, err := registry.Import(context.Background(), st, path, registry.Options{}); !errors.As(err, &ierr) {
		t.Fatalf("Import: %v", err)
	}
	if _, err := st.SubscriptionByInstance(context.Background(), "inst-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused file was partly applied: %v", err)
	}
}

func TestRepeatedAndConflictingRowsAreReportedByRow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		first := write(t, "first.csv", "instanceId,carrierUserId,packageId,gIccid,packageCode\ninst-1,user-1,pkg-1,8986001,PK1\n")
		if _, err := registry.Import(ctx, st, first, registry.Options{}); err != nil {
			t.Fatal(err)
		}
		path := write(t, "reg.csv", "instanceId,carrierUserId,packageId,gIccid,packageCode\n"+
			"inst-2,user-2,pkg-2,,\n"+
			"inst-2,user-2,pkg-2,,\n"+
			"inst-3,user-3,pkg-3,8986001,PK1\n")
		_, err := registry.Import(ctx, st, path, registry.Options{})
		var ierr *registry.ImportError
		if !errors.As(err, &ierr) || ierr.File != path {
			t.Fatalf("err = %v", err)
		}
		want := map[int]string{3: "instanceId inst-2 is already on row 2", 4: "identity conflict: instanceId inst-3 is new to the registry, but gIccid 8986001 packageCode PK1 belongs to subscription"}
		if len(ierr.Rows) != len(want) {
			t.Fatalf("rows = %+v", ierr.Rows)
		}
		for _, r := range ierr.Rows {
			if !strings.Contains(r.Reason, want[r.Row]) {
				t.Errorf("row %d: %q, want it to mention %q", r.Row, r.Reason, want[r.Row])
			}
		}
		if _, err := st.SubscriptionByInstance(ctx, "inst-2"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a refused file was partly applied: %v", err)
		}
	})
}

func TestHeaderProblems(t *testing.T) {
	for name, content := range map[string]string{
		"empty":      "",
		"unknown":    "instanceId,carrierUserId,packageId,colour\n",
		"no package": "instanceId,carrierUserId\n",
		"duplicate":  "instanceId,carrierUserId,packageId,PackageId\n",
	} {
		if _, err := registry.Validate(write(t, "reg.csv", content)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := registry.Validate(write(t, "reg.txt", "x")); err == nil {
		t.Error("a .txt file was accepted")
	}
}

func TestImportXLSX(t *testing.T) {
	f := excelize.NewFile()
	rows := [][]any{{"instanceId", "carrierUserId", "packageId"}, {"inst-1", "user-1", "pkg-1"}, {"inst-2", "user-2", "pkg-2"}}
	for i, row := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow("Sheet1", cell, &row); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "reg.xlsx")
	if err := f.SaveAs(path); err != nil {
		t.Fatal(err)
	}
	st := storetest.OpenSQLite(t)
	stats, err := registry.Import(context.Background(), st, path, registry.Options{})
	if err != nil || stats.Inserted != 2 {
		t.Fatalf("Import = %+v, %v", stats, err)
	}
	if sub, err := st.SubscriptionByInstance(context.Background(), "inst-2"); err != nil || sub.CarrierUserID != "user-2" {
		t.Fatalf("inst-2 = %+v, %v", sub, err)
	}
}

func TestFileChangedBetweenPassesAppliesNothing(t *testing.T) {
	path := write(t, "reg.csv", "instanceId,carrierUserId,packageId\ninst-1,user-1,pkg-1\ninst-2,user-2,pkg-2\n")
	if _, err := registry.Validate(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("instanceId,carrierUserId,packageId\ninst-1,user-1,pkg-1\ninst-2,,pkg-2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st := storetest.OpenSQLite(t)
	_, err := st.ImportSubscriptions(context.Background(), registry.Rows(path), store.ImportOptions{})
	if err == nil || !strings.Contains(err.Error(), "row 3 is not valid: carrierUserId is required") {
		t.Fatalf("err = %v", err)
	}
	if _, err := st.SubscriptionByInstance(context.Background(), "inst-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rows before the changed one were applied: %v", err)
	}
}

// writeGenerated writes n registry rows: two in three KooGallery instances (with order
// IDs), one in three SmartHub SIMs. packageOf names each row's package, so a second file
// can change some rows.
func writeGenerated(t *testing.T, path string, n int, packageOf func(i int) string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "instanceId,orderId,carrierUserId,packageId,carrierOrderId,carrierOrderTime,expireTime,gIccid,packageCode")
	for i := range n {
		id := fmt.Sprintf("%07d", i)
		if i%3 == 2 {
			fmt.Fprintf(w, ",,user-%s,%s,,,2026-10-31,8986%s,PK%d\n", id, packageOf(i), id, i%7)
			continue
		}
		fmt.Fprintf(w, "inst-%s,CS-%s,user-%s,%s,CO-%s,2026-09-15T08:00:00Z,20261031160000,,\n", id, id, id, packageOf(i), id)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestImport200kRows imports 200,000 generated rows, checks the counts and a sample, then
// imports a second file changing one row in ten.
func TestImport200kRows(t *testing.T) {
	const n = 200_000
	forEachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		dir := t.TempDir()
		first, second := filepath.Join(dir, "first.csv"), filepath.Join(dir, "second.csv")
		writeGenerated(t, first, n, func(int) string { return "pkg-50GB" })
		writeGenerated(t, second, n, func(i int) string {
			if i%10 == 0 {
				return "pkg-200GB"
			}
			return "pkg-50GB"
		})
		var phases []string
		origin := store.ImportOrigin{Actor: "alice", Via: "cli", Source: "first.csv"}
		stats, err := registry.Import(ctx, st, first, registry.Options{Origin: origin, Progress: func(p registry.Progress) {
			if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
				phases = append(phases, p.Phase)
			}
		}})
		if err != nil || stats != (store.ImportStats{ImportID: 1, Inserted: n}) {
			t.Fatalf("first import = %+v, %v", stats, err)
		}
		// The validation runs beside the load and says nothing; into an empty registry the
		// rows go straight in (and on PostgreSQL the indexes are built after them).
		if got := strings.Join(phases, ","); got != "applying" && got != "applying,indexing" {
			t.Errorf("phases = %s", got)
		}
		// Into an empty registry the rows go straight in; into one with rows they are
		// staged and checked first.
		phases = nil
		stats, err = registry.Import(ctx, st, second, registry.Options{Progress: func(p registry.Progress) {
			if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
				phases = append(phases, p.Phase)
			}
		}})
		if err != nil || stats != (store.ImportStats{ImportID: 2, Updated: n / 10, Unchanged: n - n/10}) {
			t.Fatalf("second import = %+v, %v", stats, err)
		}
		if got := strings.Join(phases, ","); got != "staging,checking,applying" {
			t.Errorf("phases of the second import = %s", got)
		}
		for i := 0; i < n; i += 9973 {
			id := fmt.Sprintf("%07d", i)
			wantPackage := "pkg-50GB"
			wantEvents := "imported (import 1 of first.csv by alice via cli)"
			if i%10 == 0 {
				wantPackage, wantEvents = "pkg-200GB", wantEvents+"|updated (changed packageId; import 2)"
			}
			var sub store.Subscription
			if i%3 == 2 {
				sub, err = st.SubscriptionBySIM(ctx, "8986"+id, fmt.Sprintf("PK%d", i%7))
			} else {
				sub, err = st.SubscriptionByInstance(ctx, "inst-"+id)
			}
			if err != nil {
				t.Fatalf("row %d: %v", i, err)
			}
			if sub.CarrierUserID != "user-"+id || sub.PackageID != wantPackage || sub.Status != store.StatusActive {
				t.Errorf("row %d = %+v", i, sub)
			}
			if i%3 != 2 && (sub.OrderID != "CS-"+id || sub.CarrierOrderID != "CO-"+id || !sub.ExpireTime.Equal(time.Date(2026, 10, 31, 16, 0, 0, 0, time.UTC))) {
				t.Errorf("row %d = %+v", i, sub)
			}
			if got := storetest.History(t, st, sub.ID); got != wantEvents {
				t.Errorf("row %d: events %s, want %s", i, got, wantEvents)
			}
		}
	})
}

func TestOneBadRowAtTheEndRefusesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reg.csv")
	writeGenerated(t, path, 5000, func(int) string { return "pkg" })
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "inst-last,,user-last,,,,,,")
	f.Close()
	st := storetest.OpenSQLite(t)
	_, err = registry.Import(context.Background(), st, path, registry.Options{})
	var ierr *registry.ImportError
	if !errors.As(err, &ierr) || len(ierr.Rows) != 1 || ierr.Rows[0].Row != 5002 || !strings.Contains(ierr.Rows[0].Reason, "packageId is required") {
		t.Fatalf("err = %v", err)
	}
	if _, err := st.SubscriptionByInstance(context.Background(), "inst-0000000"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused file was partly applied: %v", err)
	}
}

// TestABadRowFoundWhileTheRowsLoadRefusesTheFile: the validation runs beside the load, so
// a bad row late in a big file is found while rows are already going in — into an empty
// registry and into one with rows. The file is refused with the bad rows named, and
// nothing is written.
func TestABadRowFoundWhileTheRowsLoadRefusesTheFile(t *testing.T) {
	const n = 50_000
	forEachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		dir := t.TempDir()
		bad := filepath.Join(dir, "bad.csv")
		writeGenerated(t, bad, n, func(int) string { return "pkg-50GB" })
		f, err := os.OpenFile(bad, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(f, "inst-late,CS-late,,pkg-50GB,,,,,")
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		refused := func(when string) {
			t.Helper()
			_, err := registry.Import(ctx, st, bad, registry.Options{})
			var ierr *registry.ImportError
			if !errors.As(err, &ierr) || ierr.Total != 1 || ierr.Rows[0].Row != n+2 || !strings.Contains(ierr.Rows[0].Reason, "carrierUserId is required") {
				t.Fatalf("%s: err = %v, want row %d refused", when, err, n+2)
			}
		}
		refused("into an empty registry")
		if _, err := st.SubscriptionByInstance(ctx, "inst-0000000"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a refused first load left rows: %v", err)
		}
		if _, err := st.UpsertSubscriptions(ctx, []store.Subscription{{InstanceID: "other", CarrierUserID: "u", PackageID: "p"}}); err != nil {
			t.Fatal(err)
		}
		refused("into a registry with rows")
		if _, err := st.SubscriptionByInstance(ctx, "inst-0000000"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a refused import left rows: %v", err)
		}
	})
}
