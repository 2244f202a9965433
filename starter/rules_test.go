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
		{"renewed", store.Subscription{InstanceID: "i", ExpireTime: now.Add(61 * time.Minute)}, false, false, "", "renewed"},
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
