package starter

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/smarthub"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
)

// TestSmartHubOrderingGuard: a push for a validThru period older than the newest one known
// for the SIM package is acknowledged and ignored, with a history event; a duplicate of
// the newest finds the expiry already accepted; a genuinely newer period is accepted.
func TestSmartHubOrderingGuard(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := t.Context()
			st := storetest.Open(t, b.DSN(t))
			if _, err := st.UpsertSubscriptions(ctx, []store.Subscription{{InstanceID: "sim-1", GIccid: "8986", PackageCode: "PK", CarrierUserID: "u1", PackageID: "p1"}}); err != nil {
				t.Fatal(err)
			}
			simSub, err := st.SubscriptionBySIM(ctx, "8986", "PK")
			if err != nil {
				t.Fatal(err)
			}
			// The workflow ID names the registry subscription, never the ICCID.
			wantID := func(period string) string { return fmt.Sprintf("expire/smarthub/sub%d/%s", simSub.ID, period) }
			in := &Intake{Store: st}
			oct, sep, nov := time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC), time.Date(2026, 9, 30, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
			push := func(id string, validThru time.Time) (Verdict, store.Acceptance, error) {
				t.Helper()
				ev, _, err := st.RecordSmartHubEvent(ctx, store.SmartHubEvent{EventID: id, ReceivedAt: time.Now(), EventType: "RULE_TRIGGERED",
					TriggerType: smarthub.TriggerPackageExpired, GIccid: "8986", PackageCode: "PK", ValidThru: validThru, Status: store.EventStored, Raw: "{}"})
				if err != nil {
					t.Fatal(err)
				}
				return in.AcceptSmartHubExpiry(ctx, ev, store.Delivery{})
			}
			if v, acc, err := push("ev-oct", oct); err != nil || !v.Accept || acc.Existing || v.WorkflowID != wantID("20261031000000") {
				t.Fatalf("October: %+v, %+v, %v", v, acc, err)
			}
			v, _, err := push("ev-sep", sep)
			if err != nil || v.Accept || !strings.Contains(v.Ignored, "validThru period 20260930000000 is older than this SIM package's latest known period 20261031000000") {
				t.Fatalf("September after October: %+v, %v", v, err)
			}
			ev, err := st.SmartHubEvent(ctx, "ev-sep")
			if err != nil || ev.Status != store.EventStored || ev.WorkflowID != "" || !strings.HasPrefix(ev.Detail, "ignored: validThru period 20260930000000") {
				t.Fatalf("the ignored push: %+v, %v", ev, err)
			}
			sub, err := st.SubscriptionBySIM(ctx, "8986", "PK")
			if err != nil {
				t.Fatal(err)
			}
			if h := storetest.History(t, st, sub.ID); !strings.Contains(h, "ignored") || !strings.Contains(h, "SmartHub event ev-sep: validThru period 20260930000000 is older") {
				t.Fatalf("history has no event for the ignored push:\n%s", h)
			}
			if exps, err := st.Expirations(ctx, store.ExpirationFilter{Subject: "8986/PK"}); err != nil || len(exps) != 1 {
				t.Fatalf("expirations after the stale push: %+v, %v", exps, err)
			}
			if v, acc, err := push("ev-oct-again", oct); err != nil || !v.Accept || !acc.Existing {
				t.Fatalf("a repeat of the newest period: %+v, %+v, %v", v, acc, err)
			}
			if v, acc, err := push("ev-nov", nov); err != nil || !v.Accept || acc.Existing || v.WorkflowID != wantID("20261130000000") {
				t.Fatalf("a newer period: %+v, %+v, %v", v, acc, err)
			}
			if v, _, err := push("ev-oct-late", oct); err != nil || v.Accept {
				t.Fatalf("October after November: %+v, %v", v, err)
			}
		})
	}
}

// TestSmartHubExpiryAcceptedUnderTheOldNamingIsNotStartedAgain: SmartHub workflow IDs
// used to carry the ICCID (expire/smarthub/<gIccid>/<packageCode>/<period>). A push of
// an expiry accepted under that name, delivered again after the upgrade, is recognised
// by its business key and answered as the existing expiry: no second workflow.
func TestSmartHubExpiryAcceptedUnderTheOldNamingIsNotStartedAgain(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := t.Context()
			st := storetest.Open(t, b.DSN(t))
			if _, err := st.UpsertSubscriptions(ctx, []store.Subscription{{GIccid: "8986", PackageCode: "PK", CarrierUserID: "u1", PackageID: "p1"}}); err != nil {
				t.Fatal(err)
			}
			sub, err := st.SubscriptionBySIM(ctx, "8986", "PK")
			if err != nil {
				t.Fatal(err)
			}
			const legacyID = "expire/smarthub/8986/PK/20261031000000"
			if _, err := st.AcceptExpiry(ctx, store.ExpiryIntent{Expiration: store.Expiration{WorkflowID: legacyID, Source: SourceSmartHub,
				Subject: "8986/PK", Period: "20261031000000", SubscriptionID: sub.ID}, Input: []byte("{}")}); err != nil {
				t.Fatal(err)
			}
			ev, _, err := st.RecordSmartHubEvent(ctx, store.SmartHubEvent{EventID: "ev-again", ReceivedAt: time.Now(), EventType: "RULE_TRIGGERED",
				TriggerType: smarthub.TriggerPackageExpired, GIccid: "8986", PackageCode: "PK", ValidThru: time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC),
				Status: store.EventStored, Raw: "{}"})
			if err != nil {
				t.Fatal(err)
			}
			v, acc, err := (&Intake{Store: st}).AcceptSmartHubExpiry(ctx, ev, store.Delivery{})
			if err != nil || !v.Accept || !acc.Existing || acc.WorkflowID != legacyID {
				t.Fatalf("redelivery after the upgrade: %+v, %+v, %v; want the existing %s", v, acc, err, legacyID)
			}
			if pending, err := st.PendingIntents(ctx, "8986/PK", 10); err != nil || len(pending) != 1 || pending[0].WorkflowID != legacyID {
				t.Fatalf("queued starts: %+v, %v; want only the first acceptance's", pending, err)
			}
			if got, err := st.SmartHubEvent(ctx, "ev-again"); err != nil || got.WorkflowID != legacyID {
				t.Fatalf("event: %+v, %v; want it to name %s", got, err, legacyID)
			}
		})
	}
}
