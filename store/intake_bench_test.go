package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
)

// BenchmarkAcceptExpiryParallel measures the intake's fsynced commit of an accepted
// expiry (expiration row, intent, delivery) from many goroutines, as the webhook does.
func BenchmarkAcceptExpiryParallel(b *testing.B) {
	ctx := context.Background()
	s := storetest.Open(b, storetest.SQLiteDSN(b))
	n := b.N + 1000
	var subs []store.Subscription
	for i := range n {
		subs = append(subs, store.Subscription{InstanceID: fmt.Sprintf("i-%07d", i), CarrierUserID: "u", PackageID: "p"})
		if len(subs) == 10000 {
			if _, err := s.UpsertSubscriptions(ctx, subs); err != nil {
				b.Fatal(err)
			}
			subs = subs[:0]
		}
	}
	if _, err := s.UpsertSubscriptions(ctx, subs); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			id := fmt.Sprintf("i-%07d", i)
			if _, err := s.AcceptExpiry(ctx, store.ExpiryIntent{
				Expiration: store.Expiration{WorkflowID: "expire/koogallery/" + id + "/current", Source: "koogallery", Subject: id, Period: "current",
					SubscriptionID: i, CarrierUserID: "u", PackageID: "p"},
				Input:    []byte(`{"Subject":"x"}`),
				Delivery: store.Delivery{Source: "koogallery", Activity: "expireInstance", Subject: id, Detail: "success.", Request: "activity=expireInstance&instanceId=" + id},
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
