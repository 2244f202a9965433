package console_test

import (
	"context"
	"html"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/console"
	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/store"
)

var (
	kooDriveSection = regexp.MustCompile(`(?s)<h2>KooDrive</h2>(.*?)</section>`)
	alertsSection   = regexp.MustCompile(`(?s)<section class="alerts">(.*?)</section>`)
	alertItem       = regexp.MustCompile(`<li>([^<]*)</li>`)
	kooDriveRow     = regexp.MustCompile(`(?s)<tr( class="attention")?><td>([^<]*)</td><td>([^<]*)</td></tr>`)
)

// TestOverviewSaysHowKooDriveIsDoing: the overview's KooDrive section says for each
// endpoint, in plain words, what the worker last saw — no calls, answering, failing,
// credentials refused — and puts refused credentials, and calls unanswered for more than
// a few minutes, on the Needs attention list.
func TestOverviewSaysHowKooDriveIsDoing(t *testing.T) {
	const notify = "expiry notifications (notifyPackageExpire)"
	// The console's clock reads 12:17 UTC: "since" times are the clock's, without a date.
	now := time.Now().UTC().Truncate(24 * time.Hour).Add(12*time.Hour + 17*time.Minute)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	busy := store.KooDriveFailure{Outcome: koodrive.OutcomeRetryable, HTTPStatus: 503, Code: "503", Message: "service busy"}
	for _, tc := range []struct {
		name   string
		health []store.KooDriveHealth
		// words is the notifyPackageExpire row; alert the Needs attention entry, "" for none.
		words, alert string
	}{
		{name: "no calls yet", words: "no calls recorded yet"},
		{name: "answering",
			health: []store.KooDriveHealth{{Endpoint: koodrive.NotifyPackageExpirePath, LastOutcome: koodrive.OutcomeSuccess,
				LastCallAt: ago(2 * time.Minute), LastSuccessAt: ago(2 * time.Minute)}},
			words: "answering — last call accepted 2 min ago"},
		{name: "answering, the request refused",
			health: []store.KooDriveHealth{{Endpoint: koodrive.NotifyPackageExpirePath, LastOutcome: koodrive.OutcomeRejected,
				LastCallAt: ago(time.Minute), LastSuccessAt: ago(3*time.Hour + 5*time.Minute),
				LastFailure: store.KooDriveFailure{At: ago(time.Minute), Outcome: koodrive.OutcomeRejected, HTTPStatus: 200, Code: "10020001",
					Message: "carrier is not whitelisted"}}},
			words: "answering — the last call, 1 min ago, was refused by KooDrive (HTTP 200, code 10020001: carrier is not whitelisted); the last accepted 3 h 5 min ago"},
		{name: "failing for two minutes",
			health: []store.KooDriveHealth{{Endpoint: koodrive.NotifyPackageExpirePath, LastOutcome: koodrive.OutcomeRetryable,
				LastCallAt: ago(time.Minute), LastSuccessAt: ago(10 * time.Minute), LastFailure: withAt(busy, ago(time.Minute)),
				Unanswered: 2, UnansweredSince: ago(2 * time.Minute)}},
			words: "failing — 2 calls not answered since 12:15 UTC, the last 1 min ago (retryable error: HTTP 503, code 503: service busy); kooflow keeps retrying, and if this lasts, ask KooDrive whether its service is up"},
		{name: "failing for fourteen minutes, no answer at all",
			health: []store.KooDriveHealth{{Endpoint: koodrive.NotifyPackageExpirePath, LastOutcome: koodrive.OutcomeRetryable,
				LastCallAt: ago(time.Minute), LastSuccessAt: ago(30 * time.Minute),
				LastFailure: store.KooDriveFailure{At: ago(time.Minute), Outcome: koodrive.OutcomeRetryable, Message: "dial tcp 10.0.0.7:443: connect: connection refused"},
				Unanswered:  14, UnansweredSince: ago(14 * time.Minute)}},
			words: "failing — 14 calls not answered since 12:03 UTC, the last 1 min ago (retryable error: no answer: dial tcp 10.0.0.7:443: connect: connection refused); kooflow keeps retrying, and if this lasts, ask KooDrive whether its service is up",
			alert: "KooDrive has not answered " + notify + " for 14 min (14 calls since 12:03 UTC)"},
		{name: "credentials refused",
			health: []store.KooDriveHealth{{Endpoint: koodrive.NotifyPackageExpirePath, LastOutcome: koodrive.OutcomeAuthFailed,
				LastCallAt: ago(time.Minute), LastSuccessAt: ago(20 * time.Minute),
				LastFailure: store.KooDriveFailure{At: ago(time.Minute), Outcome: koodrive.OutcomeAuthFailed, HTTPStatus: 401, Code: "401", Message: "token expired"},
				Unanswered:  3, UnansweredSince: ago(2 * time.Minute)}},
			words: "credentials refused since 12:15 UTC — ask whoever manages KooDrive's app secret / token (KOODRIVE_* settings) to fix them, then retry the stalled expirations. 3 calls not answered, the last 1 min ago (HTTP 401, code 401: token expired)",
			alert: "KooDrive refuses kooflow's credentials for " + notify + " since 12:15 UTC: ask whoever manages KooDrive's app secret / token (KOODRIVE_* settings) to fix them"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.mu.Lock()
			w.now = now
			w.mu.Unlock()
			for _, h := range tc.health {
				if err := w.store.RecordKooDriveCalls(context.Background(), []store.KooDriveCalls{{KooDriveHealth: h}}); err != nil {
					t.Fatal(err)
				}
			}
			resp, body := w.do(t, http.MethodGet, "/", nil, w.signIn(t, "vera", console.RoleViewer))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("overview answered %d: %s", resp.StatusCode, body)
			}
			rows := kooDriveRows(t, body)
			if len(rows) != 4 {
				t.Errorf("the KooDrive section shows %d endpoints, want 4: %v", len(rows), rows)
			}
			if got := rows[notify]; got.words != tc.words || got.attention != (tc.alert != "") {
				t.Errorf("notifyPackageExpire: %q (marked %v)\nwant %q (marked %v)", got.words, got.attention, tc.words, tc.alert != "")
			}
			for _, other := range []string{"service status (service)", "reconciliation statement upload (data/verify)",
				"reconciliation discrepancies (diff/getList)"} {
				if got := rows[other]; got.words != "no calls recorded yet" {
					t.Errorf("%s: %q, want no calls recorded yet", other, got.words)
				}
			}
			kooDriveAlerts := kooDriveAlerts(body)
			var want []string
			if tc.alert != "" {
				want = []string{tc.alert}
			}
			if !slices.Equal(kooDriveAlerts, want) {
				t.Errorf("needs attention, of KooDrive: %q\nwant %q", kooDriveAlerts, want)
			}
		})
	}
}

func withAt(f store.KooDriveFailure, at time.Time) store.KooDriveFailure {
	f.At = at
	return f
}

// shownRow is one endpoint of the overview's KooDrive section.
type shownRow struct {
	words     string
	attention bool
}

// kooDriveRows reads the overview's KooDrive section, by endpoint name.
func kooDriveRows(t *testing.T, body string) map[string]shownRow {
	t.Helper()
	section := kooDriveSection.FindStringSubmatch(body)
	if section == nil {
		t.Fatalf("no KooDrive section on the overview: %s", body)
	}
	rows := map[string]shownRow{}
	for _, m := range kooDriveRow.FindAllStringSubmatch(section[1], -1) {
		rows[html.UnescapeString(m[2])] = shownRow{words: html.UnescapeString(m[3]), attention: m[1] != ""}
	}
	return rows
}

// kooDriveAlerts reads KooDrive's entries of the overview's Needs attention list.
func kooDriveAlerts(body string) []string {
	var alerts []string
	if m := alertsSection.FindStringSubmatch(body); m != nil {
		for _, item := range alertItem.FindAllStringSubmatch(m[1], -1) {
			if alert := html.UnescapeString(item[1]); strings.HasPrefix(alert, "KooDrive ") {
				alerts = append(alerts, alert)
			}
		}
	}
	return alerts
}

// TestOverviewShowsAnEndpointItDoesNotName: a KooDrive endpoint newer than the console's
// list of names is shown by its path after the named ones, and alerts as they do.
func TestOverviewShowsAnEndpointItDoesNotName(t *testing.T) {
	const path = "/koodrive/ose/v1/carrier/users/somethingNew"
	w := newWorld(t)
	refused := store.KooDriveHealth{Endpoint: path, LastOutcome: koodrive.OutcomeAuthFailed, LastCallAt: w.clock(),
		LastFailure: store.KooDriveFailure{At: w.clock(), Outcome: koodrive.OutcomeAuthFailed, HTTPStatus: 401},
		Unanswered:  1, UnansweredSince: w.clock()}
	if err := w.store.RecordKooDriveCalls(context.Background(), []store.KooDriveCalls{{KooDriveHealth: refused}}); err != nil {
		t.Fatal(err)
	}
	_, body := w.do(t, http.MethodGet, "/", nil, w.signIn(t, "vera", console.RoleViewer))
	rows := kooDriveRows(t, body)
	if got := rows[path]; len(rows) != 5 || !got.attention || !strings.HasPrefix(got.words, "credentials refused since ") {
		t.Fatalf("rows %+v", rows)
	}
	if alerts := kooDriveAlerts(body); len(alerts) != 1 || !strings.HasPrefix(alerts[0], "KooDrive refuses kooflow's credentials for "+path) {
		t.Fatalf("needs attention, of KooDrive: %q", alerts)
	}
	if section := kooDriveSection.FindString(body); strings.Index(section, path) < strings.Index(section, "diff/getList") {
		t.Fatalf("the unnamed endpoint is not shown last: %s", section)
	}
}

// TestOverviewAsksAboutAFrozenTenant: when the worker's probe found the carrier's tenant
// frozen, the service row says so in KooDrive's words and the overview asks an operator.
func TestOverviewAsksAboutAFrozenTenant(t *testing.T) {
	w := newWorld(t)
	now := w.clock()
	frozen := store.KooDriveHealth{Endpoint: koodrive.ServicePath, LastOutcome: koodrive.OutcomeRejected, LastCallAt: now.Add(-time.Minute),
		LastFailure: store.KooDriveFailure{At: now.Add(-time.Minute), Outcome: koodrive.OutcomeRejected, HTTPStatus: 200, Code: koodrive.ServiceFrozenCode,
			Message: "KooDrive reports the tenant t-9 (Carrier) frozen"}}
	if err := w.store.RecordKooDriveCalls(context.Background(), []store.KooDriveCalls{{KooDriveHealth: frozen}}); err != nil {
		t.Fatal(err)
	}
	_, body := w.do(t, http.MethodGet, "/", nil, w.signIn(t, "vera", console.RoleViewer))
	row := kooDriveRows(t, body)["service status (service)"]
	if !row.attention || !strings.Contains(row.words, "tenant t-9 (Carrier) frozen") {
		t.Errorf("the service row: %+v; want it marked, saying the tenant is frozen", row)
	}
	alerts := kooDriveAlerts(body)
	if len(alerts) != 1 || !strings.Contains(alerts[0], "KooDrive reports the carrier's tenant frozen since") {
		t.Errorf("needs attention: %q; want the frozen tenant", alerts)
	}
}

// TestOverviewTellsAMovingQueueFromAStuckOne: the overview says how many expiries
// Temporal is working on beside the queue, and an old queue is put on the Needs attention
// list in the words that fit: one that moves as Temporal finishes (a month end at the
// admission cap) or one nothing moves (Temporal or the webhook down).
func TestOverviewTellsAMovingQueueFromAStuckOne(t *testing.T) {
	w := newWorld(t) // its two expiries' start intents are queued from now
	viewer := w.signIn(t, "vera", console.RoleViewer)
	w.advance(15 * time.Minute)
	overview := func() (string, []string) {
		t.Helper()
		resp, body := w.do(t, http.MethodGet, "/", nil, viewer)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("overview answered %d: %s", resp.StatusCode, body)
		}
		var alerts []string
		if m := alertsSection.FindStringSubmatch(body); m != nil {
			for _, li := range alertItem.FindAllStringSubmatch(m[1], -1) {
				if strings.Contains(li[1], "waited") {
					alerts = append(alerts, html.UnescapeString(li[1]))
				}
			}
		}
		return html.UnescapeString(body), alerts
	}
	body, alerts := overview()
	if !strings.Contains(body, "Temporal is working on 0 now") {
		t.Errorf("the overview does not say Temporal works on none:\n%s", body)
	}
	if len(alerts) != 1 || !strings.Contains(alerts[0], "waited 15m0s for Temporal, which is working on none: is Temporal or the webhook down?") {
		t.Errorf("a stuck queue: %q", alerts)
	}

	ctx := context.Background()
	claimed, err := w.store.ClaimIntents(ctx, store.ClaimOptions{Owner: "test", Limit: 1, Lease: time.Minute})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim = %v, %v", claimed, err)
	}
	if err := w.store.SetExpirationState(ctx, claimed[0].WorkflowID, store.StateAccepted, ""); err != nil {
		t.Fatal(err)
	}
	if err := w.store.CompleteIntents(ctx, store.OutcomeStarted, claimed[0].ID); err != nil {
		t.Fatal(err)
	}
	body, alerts = overview()
	if !strings.Contains(body, "Temporal is working on 1 now") {
		t.Errorf("the overview does not say Temporal works on one:\n%s", body)
	}
	if len(alerts) != 1 || !strings.Contains(alerts[0], "which is working on 1: a queue that moves as those finish") {
		t.Errorf("a moving queue: %q", alerts)
	}
}
