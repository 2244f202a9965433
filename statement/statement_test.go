package statement_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/kooflow/kooflow/statement"
)

func writeStatement(t testing.TB, path string, n int) statement.Summary {
	w, err := statement.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%07d", i)
		if err := w.Add(statement.Row{"CO-" + id, "user-" + id, "2026-01-15T08:00:00Z", "pkg-50GB", "active", "2026-12-31T00:00:00Z"}); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func TestStatementRoundTrip(t *testing.T) {
	dir := t.TempDir()
	sum := writeStatement(t, filepath.Join(dir, "2026-10.xlsx"), 3)
	if sum.Rows != 3 || len(sum.SHA256) != 64 {
		t.Fatalf("summary = %+v", sum)
	}
	rows, err := statement.ReadRows(sum.Path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || rows[0][0] != "carrierOrderId" || rows[3][0] != "CO-0000002" || rows[3][5] != "2026-12-31T00:00:00Z" {
		t.Fatalf("rows = %v", rows)
	}
	again := writeStatement(t, filepath.Join(dir, "again.xlsx"), 3)
	if again.SHA256 != sum.SHA256 {
		t.Fatal("the same content hashed differently")
	}
	if other := writeStatement(t, filepath.Join(dir, "other.xlsx"), 4); other.SHA256 == sum.SHA256 {
		t.Fatal("different content hashed the same")
	}
}

func TestReportHasSummary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "report.xlsx")
	r, err := statement.CreateReport(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []statement.Discrepancy{{DiffType: "1"}, {DiffType: "2"}, {DiffType: "2"}, {DiffType: "9"}} {
		if err := r.Add(d); err != nil {
			t.Fatal(err)
		}
	}
	counts, err := r.Close()
	if err != nil || counts["2"] != 2 || counts["9"] != 1 {
		t.Fatalf("counts = %v, %v", counts, err)
	}
	book, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer book.Close()
	summary, _ := book.GetRows("Summary")
	if len(summary) != 6 || summary[2][1] != "2" || summary[4][2] != "not documented by KooDrive" || summary[5][1] != "4" {
		t.Fatalf("summary = %v", summary)
	}
}

// BenchmarkStatement measures the stream writer per subscription row; run with
// -benchmem. TestStatementMemory reports peak heap for whole statements.
func BenchmarkStatement(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				writeStatement(b, filepath.Join(b.TempDir(), "s.xlsx"), n)
			}
			b.ReportMetric(float64(n), "rows/op")
		})
	}
}
