package wiring

import (
	"strconv"
	"testing"
	"time"

	"github.com/kooflow/kooflow/settings"
	"github.com/kooflow/kooflow/starter"
)

// TestDefaultsAreTheTables: the production processes' defaults are the values the
// settings table documents (docs/configuration.md is generated from it).
func TestDefaultsAreTheTables(t *testing.T) {
	documented := func(name string) string {
		s, ok := settings.Lookup(name)
		if !ok {
			t.Fatalf("the settings table lacks %s", name)
		}
		return s.Default
	}
	for name, code := range map[string]string{
		"KOOFLOW_WEBHOOK_ADDR": DefaultWebhookAddr, "KOOFLOW_METRICS_ADDR": DefaultMetricsAddr,
		"KOOFLOW_DATA_DIR": DefaultDataDir, "KOOFLOW_CONSOLE_ADDR": DefaultConsoleAddr,
	} {
		if documented(name) != code {
			t.Errorf("%s defaults to %q; the settings table documents %q", name, code, documented(name))
		}
	}
	if d, err := time.ParseDuration(documented("KOOFLOW_WORKER_STOP_TIMEOUT")); err != nil || d != DefaultWorkerStopTimeout {
		t.Errorf("KOOFLOW_WORKER_STOP_TIMEOUT defaults to %s; the settings table documents %q", DefaultWorkerStopTimeout, documented("KOOFLOW_WORKER_STOP_TIMEOUT"))
	}
	if d, err := ParseRetention(documented("KOOFLOW_RECORD_RETENTION")); err != nil || d != DefaultRecordRetention {
		t.Errorf("KOOFLOW_RECORD_RETENTION defaults to %s; the settings table documents %q", DefaultRecordRetention, documented("KOOFLOW_RECORD_RETENTION"))
	}
	if documented(MaxActiveEnv) != strconv.Itoa(starter.DefaultMaxActive) {
		t.Errorf("%s defaults to %d; the settings table documents %q", MaxActiveEnv, starter.DefaultMaxActive, documented(MaxActiveEnv))
	}
}
