package console

import (
	"fmt"
	"time"

	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/store"
)

// kooDriveEndpoints are the KooDrive endpoints kooflow calls, in the overview's order,
// each named for operators by what kooflow uses it for.
var kooDriveEndpoints = []struct{ path, name string }{
	{koodrive.NotifyPackageExpirePath, "expiry notifications (notifyPackageExpire)"},
	{koodrive.ServicePath, "service status (service)"},
	{koodrive.DataVerifyPath, "reconciliation statement upload (data/verify)"},
	{koodrive.DiffGetListPath, "reconciliation discrepancies (diff/getList)"},
}

// kooDriveFailingAlertAfter is how long KooDrive may leave an endpoint's calls
// unanswered before the overview asks for an operator: shorter outages are the
// retries' business.
const kooDriveFailingAlertAfter = 5 * time.Minute

// kooDriveCredentialsHelp is what an operator does when KooDrive refuses kooflow's
// credentials.
const kooDriveCredentialsHelp = "ask whoever manages KooDrive's app secret / token (KOODRIVE_* settings) to fix them"

// kooDriveRow is one endpoint on the overview: its name, what the worker last saw of it
// in plain words, and whether that needs an operator.
type kooDriveRow struct {
	Name      string
	Words     string
	Attention bool
}

// kooDriveHealth says, per endpoint, what the worker last saw of KooDrive at now, and
// lists what needs an operator: refused credentials, and calls left unanswered for longer
// than kooDriveFailingAlertAfter.
func kooDriveHealth(health []store.KooDriveHealth, now time.Time) (rows []kooDriveRow, alerts []string) {
	byPath := map[string]store.KooDriveHealth{}
	for _, h := range health {
		byPath[h.Endpoint] = h
	}
	add := func(name string, h store.KooDriveHealth) {
		row := kooDriveRow{Name: name, Words: kooDriveWords(h, now)}
		since := unansweredSince(h)
		switch {
		case h.LastOutcome == koodrive.OutcomeAuthFailed:
			row.Attention = true
			alerts = append(alerts, fmt.Sprintf("KooDrive refuses kooflow's credentials for %s since %s: %s", name,
				clockWords(since, now), kooDriveCredentialsHelp))
		case h.LastOutcome == koodrive.OutcomeRejected && h.LastFailure.Code == koodrive.ServiceFrozenCode:
			row.Attention = true
			alerts = append(alerts, fmt.Sprintf("KooDrive reports the carrier's tenant frozen since %s: expiry notifications and reconciliations fail until the carrier's KooDrive subscription is unfrozen",
				clockWords(h.LastFailure.At, now)))
		case h.Unanswered > 0 && now.Sub(since) > kooDriveFailingAlertAfter:
			row.Attention = true
			alerts = append(alerts, fmt.Sprintf("KooDrive has not answered %s for %s (%s since %s)", name,
				durationWords(now.Sub(since)), callsWords(h.Unanswered), clockWords(since, now)))
		}
		rows = append(rows, row)
	}
	for _, e := range kooDriveEndpoints {
		h, seen := byPath[e.path]
		if !seen {
			rows = append(rows, kooDriveRow{Name: e.name, Words: "no calls recorded yet"})
			continue
		}
		add(e.name, h)
		delete(byPath, e.path)
	}
	for _, h := range health { // an endpoint this console does not know yet, by path
		if _, other := byPath[h.Endpoint]; other {
			add(h.Endpoint, h)
		}
	}
	return rows, alerts
}

// kooDriveWords says in plain words what the worker last saw of one endpoint.
func kooDriveWords(h store.KooDriveHealth, now time.Time) string {
	switch h.LastOutcome {
	case koodrive.OutcomeSuccess:
		return "answering — last call accepted " + agoWords(h.LastCallAt, now)
	case koodrive.OutcomeRejected:
		accepted := "none accepted yet"
		if !h.LastSuccessAt.IsZero() {
			accepted = "the last accepted " + agoWords(h.LastSuccessAt, now)
		}
		return fmt.Sprintf("answering — the last call, %s, was refused by KooDrive (%s); %s", agoWords(h.LastCallAt, now),
			failureWords(h.LastFailure), accepted)
	case koodrive.OutcomeAuthFailed:
		return fmt.Sprintf("credentials refused since %s — %s, then retry the stalled expirations. %s not answered, the last %s (%s)",
			clockWords(unansweredSince(h), now), kooDriveCredentialsHelp, callsWords(h.Unanswered), agoWords(h.LastCallAt, now),
			failureWords(h.LastFailure))
	default:
		return fmt.Sprintf("failing — %s not answered since %s, the last %s (retryable error: %s); kooflow keeps retrying, and if this lasts, ask KooDrive whether its service is up",
			callsWords(h.Unanswered), clockWords(unansweredSince(h), now), agoWords(h.LastCallAt, now), failureWords(h.LastFailure))
	}
}

// unansweredSince is when KooDrive stopped answering an endpoint, or when it was last
// called should the row not say (rows merged from several workers may not).
func unansweredSince(h store.KooDriveHealth) time.Time {
	if h.UnansweredSince.IsZero() {
		return h.LastCallAt
	}
	return h.UnansweredSince
}

// failureWords says what a failed call got: "HTTP 503, code 503: service busy", or
// "no answer: " and why.
func failureWords(f store.KooDriveFailure) string {
	answer := "no answer"
	if f.HTTPStatus != 0 {
		answer = fmt.Sprintf("HTTP %d", f.HTTPStatus)
	}
	if f.Code != "" {
		answer += ", code " + f.Code
	}
	if f.Message != "" {
		answer += ": " + cut(200, f.Message)
	}
	return answer
}

// callsWords counts calls: "1 call", "14 calls".
func callsWords(n int64) string {
	if n == 1 {
		return "1 call"
	}
	return fmt.Sprintf("%d calls", n)
}

// clockWords is a recent time as a clock reads it, "12:03 UTC", with the date when it
// is not today's (UTC).
func clockWords(t, now time.Time) string {
	t, now = t.UTC(), now.UTC()
	if t.Format(time.DateOnly) == now.Format(time.DateOnly) {
		return t.Format("15:04 UTC")
	}
	return t.Format("2006-01-02 15:04 UTC")
}

// agoWords says how long before now t was: "2 min ago".
func agoWords(t, now time.Time) string {
	d := now.Sub(t)
	if d < time.Minute {
		return "less than a minute ago" // also a worker clock a little ahead of the console's
	}
	return durationWords(d) + " ago"
}

// durationWords rounds d down for people: "14 min", "3 h 5 min", "4 days".
func durationWords(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "less than a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h %d min", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	}
}
