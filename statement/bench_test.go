package statement_test

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// peakHeap samples the live heap while fn runs and returns the highest value seen.
func peakHeap(fn func()) uint64 {
	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	fn()
	close(stop)
	wg.Wait()
	return peak.Load()
}

// BenchmarkStatementPeakHeap reports seconds and peak live heap of whole statements.
func BenchmarkStatementPeakHeap(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("xlsx/rows=%d", n), func(b *testing.B) {
			var peak uint64
			for i := 0; i < b.N; i++ {
				peak = max(peak, peakHeap(func() { writeStatement(b, filepath.Join(b.TempDir(), "s.xlsx"), n) }))
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		})
		b.Run(fmt.Sprintf("csv-floor/rows=%d", n), func(b *testing.B) {
			var peak uint64
			for i := 0; i < b.N; i++ {
				peak = max(peak, peakHeap(func() { writeCSV(b, filepath.Join(b.TempDir(), "s.csv"), n) }))
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		})
	}
}

// writeCSV writes the same rows with encoding/csv: the floor for what any statement
// format costs.
func writeCSV(t testing.TB, path string, n int) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	w := csv.NewWriter(bw)
	w.Write([]string{"carrierOrderId", "carrierUserId", "carrierOrderTime", "packageId", "status", "expireTime"})
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%07d", i)
		w.Write([]string{"CO-" + id, "user-" + id, "2026-01-15T08:00:00Z", "pkg-50GB", "active", "2026-12-31T00:00:00Z"})
	}
	w.Flush()
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
}
