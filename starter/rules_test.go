package starter

import (
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/store"
)

func TestKooGalleryExpiryRules(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		sub    store.Subscription
		test   bool
		accept bool
		id     string
		reason string
	}{
		{"unknown expiry time", store.Subscription{InstanceID: "i"}, false, true, "expire/koogallery/i/current", ""},
		{"expired now", store.Subscription{InstanceID: "i", ExpireTime: now}, false, true, "expire/koogallery/i/20261101120000", ""},
		{"reported a little early", store.Subscription{InstanceID: "i", ExpireTime: now.Add(59 * time.Minute)}, false, true, "expire/koogallery/i/20261101125900", ""},
		{"renewed by KooGallery", store.Subscription{InstanceID: "i", ExpireTime: now.Add(61 * time.Minute), RenewedUntil: now.Add(61 * time.Minute)}, false, false, "", "KooGallery renewed this instance until 2026-11-01T13:01:00Z"},
		{"renewed, then the registry moved further", store.Subscription{InstanceID: "i", ExpireTime: now.AddDate(4, 0, 0), RenewedUntil: now.Add(2 * time.Hour)}, false, false, "", "KooGallery renewed"},
		{"released", store.Subscription{InstanceID: "i", Status: store.StatusReleased}, false, false, "", "released"},
		{"test rehearsal", store.Subscription{InstanceID: "i"}, true, true, "expire/koogallery/i/current/test", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := KooGalleryExpiry(c.sub, c.test, now)
			if v.Accept != c.accept || v.WorkflowID != c.id || !strings.Contains(v.Ignored, c.reason) {
				t.Fatalf("verdict = %+v", v)
			}
			if v.Accept && (v.Input.Subject != "i" || v.Input.Test != c.test) {
				t.Fatalf("input = %+v", v.Input)
			}
		})
	}
}

// TestKooGalleryExpiryConflict: a registry date in the future that no renewal from
// KooGallery explains holds the expiry for an operator, naming both dates; the
// operator's decision runs it under the same workflow ID.
func TestKooGalleryExpiryConflict(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	until := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, sub := range []store.Subscription{
		{InstanceID: "i", ExpireTime: until},
		// A renewal KooGallery reported, long past: the registry's later date is not it.
		{InstanceID: "i", ExpireTime: until, RenewedUntil: now.AddDate(0, -1, 0)},
	} {
		v := KooGalleryExpiry(sub, false, now)
		if v.Accept || !v.Held() || v.Ignored != "" || v.Rule != "registry-date-conflict" || v.WorkflowID != "expire/koogallery/i/20300101000000" {
			t.Fatalf("verdict = %+v", v)
		}
		for _, date := range []string{"2026-11-01T12:00:00Z", "2030-01-01T00:00:00Z", "kooflow expire --instance i"} {
			if !strings.Contains(v.Conflict, date) {
				t.Errorf("conflict reason %q does not name %q", v.Conflict, date)
			}
		}
		run := v.RunByOperator()
		if !run.Accept || run.WorkflowID != v.WorkflowID || run.Input != v.Input {
			t.Fatalf("run by operator = %+v", run)
		}
	}
	if due := KooGalleryExpiry(store.Subscription{InstanceID: "i", ExpireTime: now}, false, now).RunByOperator(); !due.Accept || due.Held() {
		t.Fatalf("a due expiry run by an operator = %+v", due)
	}
}

func TestSmartHubExpiryRules(t *testing.T) {
	validThru := time.Date(2026, 10, 31, 16, 0, 0, 0, time.FixedZone("+8", 8*3600))
	sub := store.Subscription{ID: 42, GIccid: "8986", PackageCode: "PK"}
	v := SmartHubExpiry(sub, validThru, "")
	if !v.Accept || v.WorkflowID != "expire/smarthub/sub42/20261031080000" || v.Input.Subject != "8986/PK" {
		t.Fatalf("verdict = %+v", v)
	}
	sub.Status = store.StatusReleased
	if v := SmartHubExpiry(sub, validThru, ""); v.Accept || !strings.Contains(v.Ignored, "released") {
		t.Fatalf("released: %+v", v)
	}
}
