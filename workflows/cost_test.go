package workflows_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// historyCost counts what one recorded execution cost the server: its history events, the
// workflow tasks and activity tasks it ran, and its search-attribute upserts (each a
// visibility write) and markers.
type historyCost struct {
	Events, WorkflowTasks, ActivityTasks, Upserts, Markers int
}

func costOf(t *testing.T, name string) historyCost {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "histories", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Events []struct {
			EventType string `json:"eventType"`
		} `json:"events"`
	}
	if err := json.Unmarshal(data, &h); err != nil {
		t.Fatal(err)
	}
	c := historyCost{Events: len(h.Events)}
	for _, e := range h.Events {
		switch strings.TrimPrefix(e.EventType, "EVENT_TYPE_") {
		case "WORKFLOW_TASK_COMPLETED":
			c.WorkflowTasks++
		case "ACTIVITY_TASK_SCHEDULED":
			c.ActivityTasks++
		case "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES":
			c.Upserts++
		case "MARKER_RECORDED":
			c.Markers++
		}
	}
	return c
}

// TestAnExpiryCostsTheServerLittle pins, from the recorded history of an expiry that went
// straight to reserved, what it costs Temporal's server: two workflow tasks (the
// bookkeeping runs as local activities inside them), one activity task (KooDrive's
// notification) and three search-attribute upserts — one version marker for every change
// ("current-versions") instead of one marker and one TemporalChangeVersion upsert per
// change, as the execution recorded before it (-v4) shows.
func TestAnExpiryCostsTheServerLittle(t *testing.T) {
	now, before := costOf(t, "expiration-retried-activity"), costOf(t, "expiration-retried-activity-v4")
	t.Logf("an expiry now: %+v; before current-versions: %+v", now, before)
	if now.WorkflowTasks != 2 || now.ActivityTasks != 1 {
		t.Errorf("an expiry runs %d workflow tasks and %d activity tasks, want 2 and 1", now.WorkflowTasks, now.ActivityTasks)
	}
	if now.Upserts != 3 || now.Events != 20 {
		t.Errorf("an expiry writes %d search-attribute upserts in %d events, want 3 in 20", now.Upserts, now.Events)
	}
	if before.Upserts-now.Upserts != 3 || before.Markers-now.Markers != 3 {
		t.Errorf("current-versions saves %d upserts and %d markers, want 3 and 3", before.Upserts-now.Upserts, before.Markers-now.Markers)
	}
}
