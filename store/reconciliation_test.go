package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/kooflow/kooflow/store"
)

func TestReconciliationRecords(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := s.Run(ctx, "2026-10"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing run: %v", err)
		}
		run := store.ReconciliationRun{Cycle: "2026-10", State: store.RunBuilding}
		if err := s.SaveRun(ctx, run); err != nil {
			t.Fatal(err)
		}
		run.State, run.BatchNo, run.Counts = store.RunCompleted, "B1", map[string]int{"1": 2}
		if err := s.SaveRun(ctx, run); err != nil {
			t.Fatal(err)
		}
		got, err := s.Run(ctx, "2026-10")
		if err != nil || got.State != store.RunCompleted || got.BatchNo != "B1" || got.Counts["1"] != 2 {
			t.Fatalf("run = %+v, %v", got, err)
		}

		if _, err := s.BatchFor(ctx, "2026-10", "abc"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("batch before upload: %v", err)
		}
		for i := 0; i < 2; i++ {
			if err := s.RecordBatch(ctx, "2026-10", "abc", "B1"); err != nil {
				t.Fatal(err)
			}
		}
		if b, err := s.BatchFor(ctx, "2026-10", "abc"); err != nil || b != "B1" {
			t.Fatalf("batch = %q, %v", b, err)
		}

		page := []store.Discrepancy{
			{BatchNo: "B1", Cycle: "2026-10", Seq: 0, DiffType: "1", CarrierOrderID: "CO-1", Raw: `{"carrierOrderId":"CO-1","diffType":"1","x":1}`},
			{BatchNo: "B1", Cycle: "2026-10", Seq: 1, DiffType: "3", CarrierOrderID: "CO-2", Raw: `{"carrierOrderId":"CO-2","diffType":"3"}`},
		}
		for i := 0; i < 2; i++ { // fetching a page again stores nothing twice
			if err := s.SaveDiscrepancies(ctx, page); err != nil {
				t.Fatal(err)
			}
		}
		counts, err := s.CountDiscrepancies(ctx, "B1")
		if err != nil || counts["1"] != 1 || counts["3"] != 1 {
			t.Fatalf("counts = %v, %v", counts, err)
		}
		var order []string
		err = s.EachDiscrepancy(ctx, "B1", func(d store.Discrepancy) error {
			order = append(order, d.CarrierOrderID+":"+d.Raw)
			return nil
		})
		if err != nil || len(order) != 2 || order[0] != "CO-1:"+page[0].Raw {
			t.Fatalf("discrepancies = %v, %v", order, err)
		}
	})
}
