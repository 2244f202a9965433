package worker_test

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/payloadcodec"
	kooworker "github.com/kooflow/kooflow/worker"
)

// historiesDir holds the histories recorded from real runs, which the workflows' replay
// test replays; payloadKeys is the test-only key their encrypted payloads are under.
var (
	historiesDir = filepath.Join("..", "workflows", "testdata", "histories")
	payloadKeys  = filepath.Join("..", "workflows", "testdata", "payload-keys")
)

// recordedActivityTypes returns every activity type the recorded histories name, with the
// first history naming it: scheduled activities, and local activities from their markers
// (whose details are decoded with the histories' payload key).
func recordedActivityTypes(t *testing.T) map[string]string {
	t.Helper()
	keys, err := os.ReadFile(payloadKeys)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := payloadcodec.ParseKeyFile(keys)
	if err != nil {
		t.Fatal(err)
	}
	dc := payloadcodec.DataConverter(payloadcodec.NewCodec(ring))
	files, err := filepath.Glob(filepath.Join(historiesDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded histories in %s (%v)", historiesDir, err)
	}
	types := map[string]string{}
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		history, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
		f.Close()
		if err != nil {
			t.Fatalf("read %s: %v", file, err)
		}
		for _, e := range history.Events {
			var name string
			switch e.GetEventType() {
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
				name = e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
			case enumspb.EVENT_TYPE_MARKER_RECORDED:
				attrs := e.GetMarkerRecordedEventAttributes()
				if attrs.GetMarkerName() != "LocalActivity" {
					continue
				}
				var marker struct{ ActivityType string }
				payloads := attrs.GetDetails()["data"].GetPayloads()
				if len(payloads) == 0 {
					t.Fatalf("%s event %d: local activity marker without data", file, e.GetEventId())
				}
				if err := dc.FromPayload(payloads[0], &marker); err != nil {
					t.Fatalf("%s event %d: decode local activity marker: %v", file, e.GetEventId(), err)
				}
				name = marker.ActivityType
			default:
				continue
			}
			if name == "" {
				t.Fatalf("%s event %d names no activity type", file, e.GetEventId())
			}
			if _, seen := types[name]; !seen {
				types[name] = filepath.Base(file)
			}
		}
	}
	return types
}

// isRegistered reports whether the test environment knows an activity by name: the SDK's
// OnActivity refuses (panics on) a name nothing was registered under.
func isRegistered(env *testsuite.TestWorkflowEnvironment, name string) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	env.OnActivity(name, mock.Anything).Return(nil).Maybe()
	return true
}

// TestRegisteredActivitiesCoverRecordedHistories: every activity type a recorded history
// names — regular or local — is registered by the worker under that same name. Renaming
// an activity method would leave running and recorded workflows calling a name no worker
// serves; this fails at once instead of at replay or in production.
func TestRegisteredActivitiesCoverRecordedHistories(t *testing.T) {
	recorded := recordedActivityTypes(t)
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	kooworker.Register(env, kooworker.Dependencies{Expiration: &activities.Expiration{}, Reconciliation: &activities.Reconciliation{}})
	names := make([]string, 0, len(recorded))
	for name := range recorded {
		names = append(names, name)
	}
	sort.Strings(names)
	// Both workflows' activities are in the histories: a history set that lost one
	// workflow's recordings would check too little.
	for _, want := range []string{"NotifyKooDrive", "SetExpirationState", "CheckExpiryStillDue", "FetchDiscrepancies"} {
		if _, ok := recorded[want]; !ok {
			t.Fatalf("the recorded histories never name %s (they name %v)", want, names)
		}
	}
	for _, name := range names {
		if !isRegistered(env, name) {
			t.Errorf("activity %q (recorded in %s) is not registered by worker.Register", name, recorded[name])
		}
	}
	if isRegistered(env, "NoSuchActivity") {
		t.Fatal("an unregistered name passes the check: it proves nothing")
	}
	t.Logf("%d recorded activity types registered: %v", len(names), names)
}
