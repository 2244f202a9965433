package store_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
)

// BenchmarkFindSubscriptions measures `kooflow status X`'s lookup on a registry of
// KOOFLOW_BENCH_REGISTRY_ROWS subscriptions (default 1,000,000): half KooGallery instances
// with an order and a carrier order, half SIM packages, two packages a SIM and three a
// carrier user, and one expiration. SQLite always; PostgreSQL with
// KOOFLOW_TEST_POSTGRES_DSN. Building the registry is not timed.
//
//	go test ./store -run '^$' -bench FindSubscriptions -benchtime 2000x
func BenchmarkFindSubscriptions(b *testing.B) {
	rows := 1_000_000
	if v := os.Getenv("KOOFLOW_BENCH_REGISTRY_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			b.Fatalf("KOOFLOW_BENCH_REGISTRY_ROWS=%q: want a number of rows, at least 10", v)
		}
		rows = n
	}
	for _, backend := range storetest.Backends() {
		b.Run(fmt.Sprintf("%s/rows=%d", backend.Name, rows), func(b *testing.B) {
			ctx := context.Background()
			s := storetest.Open(b, backend.DSN(b))
			half := rows / 2
			_, err := s.ImportSubscriptions(ctx, func(yield func(store.ImportRow, error) bool) {
				for i := 0; i < rows; i++ {
					sub := store.Subscription{CarrierUserID: fmt.Sprintf("user-%d", i/3), PackageID: fmt.Sprintf("pkg-%d", i%7)}
					if i < half {
						sub.InstanceID, sub.OrderID, sub.CarrierOrderID = fmt.Sprintf("inst-%d", i), fmt.Sprintf("order-%d", i), fmt.Sprintf("co-%d", i)
					} else {
						sub.GIccid, sub.PackageCode = fmt.Sprintf("8986%012d", i/2), fmt.Sprintf("PK%d", i%2)
					}
					if !yield(store.ImportRow{Line: i + 1, Subscription: sub}, nil) {
						return
					}
				}
			}, store.ImportOptions{Total: rows})
			if err != nil {
				b.Fatal(err)
			}
			mid := half / 2
			inst, err := s.SubscriptionByInstance(ctx, fmt.Sprintf("inst-%d", mid))
			if err != nil {
				b.Fatal(err)
			}
			wf := fmt.Sprintf("expire/koogallery/inst-%d/current", mid)
			if _, err := s.RecordExpiration(ctx, store.Expiration{WorkflowID: wf, Source: "koogallery", Subject: inst.InstanceID, Period: "current",
				SubscriptionID: inst.ID, CarrierUserID: inst.CarrierUserID, PackageID: inst.PackageID}); err != nil {
				b.Fatal(err)
			}
			sim := half + half/2
			sim -= sim % 2
			for _, kind := range []struct {
				name, identifier string
				want             int
			}{
				{"instance", inst.InstanceID, 1},
				{"workflow", wf, 1},
				{"sim", fmt.Sprintf("8986%012d/PK0", sim/2), 1},
				{"iccid", fmt.Sprintf("8986%012d", sim/2), 2},
				{"order", fmt.Sprintf("order-%d", mid), 1},
				{"carrierOrder", fmt.Sprintf("co-%d", mid), 1},
				{"carrierUser", fmt.Sprintf("user-%d", mid/3), 3},
				{"unknown", "no-such-identifier", 0},
			} {
				b.Run(kind.name, func(b *testing.B) {
					for b.Loop() {
						ms, err := s.FindSubscriptions(ctx, kind.identifier, 50)
						if err != nil || len(ms) != kind.want {
							b.Fatalf("%s: %d matches, %v; want %d", kind.identifier, len(ms), err, kind.want)
						}
					}
				})
			}
		})
	}
}
