package registry_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/kooflow/kooflow/registry"
)

func write(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadCSV(t *testing.T) {
	path := write(t, "reg.csv", "\ufeffINSTANCEID,orderId,carrierUserId,packageId,expireTime,gIccid,packageCode\n"+
		"inst-1,CS1,user-1,pkg-1,20261031160000,,\n"+
		",,user-2,pkg-2,2026-11-30,8986001,PK1\n"+
		",,,,,,\n")
	subs, err := registry.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 2 || subs[0].InstanceID != "inst-1" || !subs[0].ExpireTime.Equal(time.Date(2026, 10, 31, 16, 0, 0, 0, time.UTC)) ||
		subs[1].GIccid != "8986001" || subs[1].PackageCode != "PK1" {
		t.Fatalf("subs = %+v", subs)
	}
}

func TestEveryBadRowIsReported(t *testing.T) {
	path := write(t, "reg.csv", "instanceId,carrierUserId,packageId,expireTime,gIccid,packageCode\n"+
		"inst-1,user-1,pkg-1,,,\n"+
		"inst-2,,pkg-2,,,\n"+
		",user-3,pkg-3,,,\n"+
		"inst-4,user-4,pkg-4,tomorrow,,\n"+
		"inst-1,user-1,pkg-1,,,\n"+
		"inst'--,user-6,pkg-6,,,\n"+
		",user-7,pkg-7,,8986,\n")
	_, err := registry.ReadFile(path)
	var ierr *registry.ImportError
	if !errors.As(err, &ierr) {
		t.Fatalf("err = %v", err)
	}
	want := map[int]string{3: "carrierUserId is required", 4: "needs instanceId, or both gIccid and packageCode, or orderId", 5: "expireTime", 6: "same subscription as row 2", 7: "instanceId", 8: "go together"}
	if len(ierr.Rows) != len(want) {
		t.Fatalf("rows = %+v", ierr.Rows)
	}
	for _, r := range ierr.Rows {
		if !strings.Contains(r.Reason, want[r.Row]) {
			t.Errorf("row %d: %q, want it to mention %q", r.Row, r.Reason, want[r.Row])
		}
	}
}

func TestHeaderProblems(t *testing.T) {
	for name, content := range map[string]string{
		"empty":      "",
		"unknown":    "instanceId,carrierUserId,packageId,colour\n",
		"no package": "instanceId,carrierUserId\n",
		"duplicate":  "instanceId,carrierUserId,packageId,PackageId\n",
	} {
		if _, err := registry.ReadFile(write(t, "reg.csv", content)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := registry.ReadFile(write(t, "reg.txt", "x")); err == nil {
		t.Error("a .txt file was accepted")
	}
}

func TestReadXLSX(t *testing.T) {
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
	subs, err := registry.ReadFile(path)
	if err != nil || len(subs) != 2 || subs[1].CarrierUserID != "user-2" {
		t.Fatalf("subs = %+v, %v", subs, err)
	}
}
