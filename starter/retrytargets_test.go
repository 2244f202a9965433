package starter_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
)

// TestStalledWorkflowIDs: a retry targets a named workflow as it is, the stalled expirations
// of a named instance (not its others, nor another instance's), or every stalled one; a
// target with nothing stalled is ErrNothingStalled naming what was asked.
func TestStalledWorkflowIDs(t *testing.T) {
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	if _, err := st.UpsertSubscriptions(ctx, []store.Subscription{
		{InstanceID: "inst-a", CarrierUserID: "user-a", PackageID: "pkg-a"},
		{InstanceID: "inst-b", CarrierUserID: "user-b", PackageID: "pkg-b"},
		{InstanceID: "inst-c", CarrierUserID: "user-c", PackageID: "pkg-c"},
	}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []store.Expiration{
		{Subject: "inst-a", Period: "p1", State: store.StateStalled},
		{Subject: "inst-a", Period: "p2", State: store.StateStalled},
		{Subject: "inst-a", Period: "p3", State: store.StateReserved},
		{Subject: "inst-b", Period: "p1", State: store.StateStalled},
		{Subject: "inst-c", Period: "p1", State: store.StateNotifying},
	} {
		sub, err := st.SubscriptionByInstance(ctx, e.Subject)
		if err != nil {
			t.Fatal(err)
		}
		e.WorkflowID = "expire/koogallery/" + e.Subject + "/" + e.Period
		e.Source, e.SubscriptionID, e.CarrierUserID, e.PackageID = "koogallery", sub.ID, sub.CarrierUserID, sub.PackageID
		if _, err := st.RecordExpiration(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	sorted := func(ids []string) []string { slices.Sort(ids); return ids }

	ids, err := starter.StalledWorkflowIDs(ctx, st, "inst-a")
	if want := []string{"expire/koogallery/inst-a/p1", "expire/koogallery/inst-a/p2"}; err != nil || !slices.Equal(sorted(ids), want) {
		t.Fatalf("instance inst-a: %v, %v; want %v", ids, err, want)
	}
	ids, err = starter.StalledWorkflowIDs(ctx, st, "")
	if want := []string{"expire/koogallery/inst-a/p1", "expire/koogallery/inst-a/p2", "expire/koogallery/inst-b/p1"}; err != nil || !slices.Equal(sorted(ids), want) {
		t.Fatalf("every stalled: %v, %v; want %v", ids, err, want)
	}
	// A workflow ID is taken as named, stalled or not: the retry's Update judges it.
	ids, err = starter.StalledWorkflowIDs(ctx, st, "expire/koogallery/inst-c/p1")
	if err != nil || !slices.Equal(ids, []string{"expire/koogallery/inst-c/p1"}) {
		t.Fatalf("workflow ID: %v, %v", ids, err)
	}
	_, err = starter.StalledWorkflowIDs(ctx, st, "inst-c")
	if !errors.Is(err, starter.ErrNothingStalled) || err.Error() != "instance inst-c has no stalled expiration" {
		t.Fatalf("instance with nothing stalled: %v", err)
	}
	empty := storetest.OpenSQLite(t)
	if _, err := starter.StalledWorkflowIDs(ctx, empty, ""); !errors.Is(err, starter.ErrNothingStalled) {
		t.Fatalf("nothing stalled anywhere: %v", err)
	}
}
