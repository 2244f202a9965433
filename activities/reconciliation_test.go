package activities_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/statement"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
)

// buildStatement runs the real BuildStatement activity and returns its rows, read back
// from the workbook.
func buildStatement(t *testing.T, st *store.Store, cycle string) (contract.StatementInfo, [][]string) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	a := &activities.Reconciliation{Store: st, Dir: t.TempDir()}
	env.RegisterActivity(a)
	v, err := env.ExecuteActivity(a.BuildStatement, cycle)
	if err != nil {
		t.Fatal(err)
	}
	var info contract.StatementInfo
	if err := v.Get(&info); err != nil {
		t.Fatal(err)
	}
	rows, err := statement.ReadRows(info.Path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != strings.Join(statement.Columns, ",") {
		t.Fatalf("header = %v", rows)
	}
	return info, rows[1:]
}

// TestStatementSelectsSubscriptionsActiveInTheCycle builds the statement of next month,
// so that a subscription released now was released before the cycle began.
func TestStatementSelectsSubscriptionsActiveInTheCycle(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := storetest.Open(t, b.DSN(t))
			start := time.Date(time.Now().Year(), time.Now().Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 1, 0)
			cycle := start.Format("2006-01")
			inCycle, afterCycle := start.Add(10*24*time.Hour), start.AddDate(0, 2, 0)
			_, err := st.UpsertSubscriptions(ctx, []store.Subscription{
				{InstanceID: "active", CarrierUserID: "u1", PackageID: "p", CarrierOrderID: "CO-1", CarrierOrderTime: "2026-01-15T08:00:00Z", ExpireTime: inCycle},
				{InstanceID: "expired-before", CarrierUserID: "u2", PackageID: "p", CarrierOrderID: "CO-2", CarrierOrderTime: "2026-01-15", ExpireTime: start.Add(-time.Second)},
				{InstanceID: "no-expiry", CarrierUserID: "u3", PackageID: "p", CarrierOrderID: "CO-3", CarrierOrderTime: "20260115080000"},
				{InstanceID: "released-before", CarrierUserID: "u4", PackageID: "p", CarrierOrderID: "CO-4", ExpireTime: afterCycle},
				{InstanceID: "ordered-after", CarrierUserID: "u5", PackageID: "p", CarrierOrderID: "CO-5", CarrierOrderTime: afterCycle.Format(time.RFC3339)},
				{InstanceID: "no-order-time", CarrierUserID: "u6", PackageID: "p", CarrierOrderID: "CO-6", ExpireTime: start},
				{InstanceID: "frozen", CarrierUserID: "u7", PackageID: "p", CarrierOrderID: "CO-7", CarrierOrderTime: "2026-01-15T08:00:00Z", ExpireTime: inCycle},
			})
			if err != nil {
				t.Fatal(err)
			}
			for instance, change := range map[string]func(store.Subscription) error{
				"released-before": func(s store.Subscription) error {
					_, err := st.SetStatus(ctx, s.ID, store.StatusReleased, "test")
					return err
				},
				"frozen": func(s store.Subscription) error { _, err := st.Freeze(ctx, s.ID, store.PeriodOf(s), false); return err },
			} {
				sub, err := st.SubscriptionByInstance(ctx, instance)
				if err != nil {
					t.Fatal(err)
				}
				if err := change(sub); err != nil {
					t.Fatal(err)
				}
			}
			info, rows := buildStatement(t, st, cycle)
			var got []string
			for _, r := range rows {
				got = append(got, strings.Join(r, ","))
			}
			want := []string{
				"CO-1,u1,2026-01-15T08:00:00Z,p,active," + inCycle.Format(time.RFC3339),
				"CO-3,u3,20260115080000,p,active",
				"CO-6,u6,,p,active," + start.Format(time.RFC3339),
				"CO-7,u7,2026-01-15T08:00:00Z,p,frozen," + inCycle.Format(time.RFC3339),
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") || info.Rows != len(want) {
				t.Fatalf("statement (%d rows):\n%s\nwant:\n%s", info.Rows, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestStatementStreamsManyBatchesInRegistryOrder covers rows spanning several reader
// batches: none lost, none repeated, in registry order, the same content hash on a
// rebuild.
func TestStatementStreamsManyBatchesInRegistryOrder(t *testing.T) {
	const n = 5000
	st := storetest.OpenSQLite(t)
	subs := make([]store.Subscription, n)
	for i := range subs {
		subs[i] = store.Subscription{InstanceID: fmt.Sprintf("i%05d", i), CarrierUserID: "u", PackageID: "p", CarrierOrderID: fmt.Sprintf("CO-%05d", i), CarrierOrderTime: "2026-01-15"}
	}
	if _, err := st.UpsertSubscriptions(context.Background(), subs); err != nil {
		t.Fatal(err)
	}
	info, rows := buildStatement(t, st, "2026-10")
	if info.Rows != n || len(rows) != n {
		t.Fatalf("rows = %d (%d read back), want %d", info.Rows, len(rows), n)
	}
	for i, r := range rows {
		if r[0] != fmt.Sprintf("CO-%05d", i) {
			t.Fatalf("row %d = %v", i, r)
		}
	}
	again, _ := buildStatement(t, st, "2026-10")
	if again.SHA256 != info.SHA256 {
		t.Fatalf("rebuild hash %s, first %s", again.SHA256, info.SHA256)
	}
}
