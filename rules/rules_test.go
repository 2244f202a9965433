package rules

import (
	"strings"
	"testing"

	"github.com/kooflow/kooflow/contract"
)

// TestSmartHubPeriod: an older period than the newest known is overtaken; the same or a
// newer one, or any period when none is known, is due.
func TestSmartHubPeriod(t *testing.T) {
	cases := []struct {
		period, latest string
		due            bool
	}{
		{"20261031000000", "", true},
		{"20261031000000", "20261031000000", true},
		{"20261130000000", "20261031000000", true},
		{"20260930000000", "20261031000000", false},
		{"20251231000000", "20260101000000", false},
	}
	for _, c := range cases {
		j := SmartHubPeriod(c.period, c.latest)
		if j.Due() != c.due {
			t.Errorf("SmartHubPeriod(%s, %s) = %+v, want due %v", c.period, c.latest, j, c.due)
		}
		if !c.due && (j.Overtaken != contract.StateRenewed || !strings.Contains(j.Reason, "older than this SIM package's latest known period "+c.latest)) {
			t.Errorf("SmartHubPeriod(%s, %s) = %+v", c.period, c.latest, j)
		}
	}
}
