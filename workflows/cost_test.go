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
// notification) and two search-attribute upserts (KooflowState notifying, then reserved),
// each a visibility write. Started as ExpirationWorkflowV2 it records no version marker,
// so no TemporalChangeVersion upsert: one upsert and one marker fewer than under the one
// "current-versions" marker (-v5), and four of each fewer than with a marker per change
// (-v4).
func TestAnExpiryCostsTheServerLittle(t *testing.T) {
	now, oneMarker, markerPerChange := costOf(t, "expiration-retried-activity"), costOf(t, "expiration-retried-activity-v5"),
		costOf(t, "expiration-retried-activity-v4")
	t.Logf("an expiry now: %+v; under one version marker: %+v; a marker per change: %+v", now, oneMarker, markerPerChange)
	if now.WorkflowTasks != 2 || now.ActivityTasks != 1 {
		t.Errorf("an expiry runs %d workflow tasks and %d activity tasks, want 2 and 1", now.WorkflowTasks, now.ActivityTasks)
	}
	if now.Upserts != 2 || now.Events != 18 {
		t.Errorf("an expiry writes %d search-attribute upserts in %d events, want 2 in 18", now.Upserts, now.Events)
	}
	for _, before := range []struct {
		name    string
		c       historyCost
		upserts int
	}{{"one version marker", oneMarker, 1}, {"a marker per change", markerPerChange, 4}} {
		if before.c.Upserts-now.Upserts != before.upserts || before.c.Markers-now.Markers != before.upserts {
			t.Errorf("against %s, an expiry saves %d upserts and %d markers, want %d and %d",
				before.name, before.c.Upserts-now.Upserts, before.c.Markers-now.Markers, before.upserts, before.upserts)
		}
	}
}
