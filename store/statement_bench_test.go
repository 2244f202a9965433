package store_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
)

// BenchmarkStatementCandidates measures the statement's read of the registry (one
// EachStatementCandidate pass, every row scanned, nothing written) for billing cycle
// 2026-10 on a registry of KOOFLOW_BENCH_REGISTRY_ROWS subscriptions (default 1,000,000)
// with a month's status history: 2 % frozen during the cycle, 1 % frozen after it, 0.5 %
// released after it and 0.5 % frozen during it and unfrozen after. SQLite always;
// PostgreSQL with KOOFLOW_TEST_POSTGRES_DSN. Building the registry is not timed.
//
//	go test ./store -run '^$' -bench StatementCandidates -benchtime 5x
func BenchmarkStatementCandidates(b *testing.B) {
	rows := 1_000_000
	if v := os.Getenv("KOOFLOW_BENCH_REGISTRY_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 200 {
			b.Fatalf("KOOFLOW_BENCH_REGISTRY_ROWS=%q: want a number of rows, at least 200", v)
		}
		rows = n
	}
	const cycle = "2026-10"
	start, end, err := contract.CycleBounds(cycle)
	if err != nil {
		b.Fatal(err)
	}
	for _, backend := range storetest.Backends() {
		b.Run(fmt.Sprintf("%s/rows=%d", backend.Name, rows), func(b *testing.B) {
			ctx := context.Background()
			s := storetest.Open(b, backend.DSN(b))
			_, err := s.ImportSubscriptions(ctx, func(yield func(store.ImportRow, error) bool) {
				for i := 0; i < rows; i++ {
					sub := store.Subscription{InstanceID: fmt.Sprintf("inst-%d", i), CarrierUserID: fmt.Sprintf("user-%d", i/3),
						PackageID: fmt.Sprintf("pkg-%d", i%7), CarrierOrderID: fmt.Sprintf("co-%d", i), CarrierOrderTime: "2026-01-15T08:00:00Z",
						ExpireTime: time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC)}
					if !yield(store.ImportRow{Line: i + 1, Subscription: sub}, nil) {
						return
					}
				}
			}, store.ImportOptions{Total: rows})
			if err != nil {
				b.Fatal(err)
			}
			conn, err := s.ConnForTest(ctx)
			if err != nil {
				b.Fatal(err)
			}
			during, after := "2026-10-15T00:00:00.000Z", "2026-11-20T00:00:00.000Z"
			for _, q := range []string{
				// frozen during the cycle, still frozen
				`INSERT INTO subscription_events (subscription_id, at, event, detail) SELECT id, '` + during + `', 'frozen', 'bench' FROM subscriptions WHERE id % 50 = 0`,
				`UPDATE subscriptions SET status = 'frozen', updated_at = '` + during + `' WHERE id % 50 = 0`,
				// frozen after the cycle
				`INSERT INTO subscription_events (subscription_id, at, event, detail) SELECT id, '` + after + `', 'frozen', 'bench' FROM subscriptions WHERE id % 100 = 1`,
				`UPDATE subscriptions SET status = 'frozen', updated_at = '` + after + `' WHERE id % 100 = 1`,
				// released after the cycle
				`INSERT INTO subscription_events (subscription_id, at, event, detail) SELECT id, '` + after + `', 'released', 'bench' FROM subscriptions WHERE id % 200 = 3`,
				`UPDATE subscriptions SET status = 'released', updated_at = '` + after + `' WHERE id % 200 = 3`,
				// frozen during the cycle, unfrozen after it
				`INSERT INTO subscription_events (subscription_id, at, event, detail) SELECT id, '` + during + `', 'frozen', 'bench' FROM subscriptions WHERE id % 200 = 5`,
				`INSERT INTO subscription_events (subscription_id, at, event, detail) SELECT id, '` + after + `', 'unfrozen', 'bench' FROM subscriptions WHERE id % 200 = 5`,
				`UPDATE subscriptions SET updated_at = '` + after + `' WHERE id % 200 = 5`,
				`ANALYZE`,
			} {
				if _, err := conn.ExecContext(ctx, q); err != nil {
					b.Fatalf("%s: %v", q, err)
				}
			}
			conn.Close()
			b.ResetTimer()
			for b.Loop() {
				n := 0
				err := eachStatementCandidate(ctx, s, start, end, func(store.StatementCandidate) error {
					n++
					return nil
				})
				if err != nil || n != rows {
					b.Fatalf("%d candidates, %v; want %d", n, err, rows)
				}
			}
			b.ReportMetric(float64(rows), "rows/op")
		})
	}
}

// eachStatementCandidate is the read the statement makes for the cycle [start, end).
func eachStatementCandidate(ctx context.Context, s *store.Store, start, end time.Time, fn func(store.StatementCandidate) error) error {
	return s.EachStatementCandidate(ctx, start, end, fn)
}
