package workflows_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/worker"

	"github.com/kooflow/kooflow/payloadcodec"
	kooworker "github.com/kooflow/kooflow/worker"
)

// historiesCodec is the payload codec of the recorded histories: the test-only key in
// testdata/payload-keys, with which the e2e recording encrypts them.
func historiesCodec(t *testing.T) *payloadcodec.Codec {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "payload-keys"))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := payloadcodec.ParseKeyFile(data)
	if err != nil {
		t.Fatal(err)
	}
	return payloadcodec.NewCodec(ring)
}

// TestReplayRecordedHistories replays histories recorded from real runs on the embedded
// server (see e2e.RecordEnv). A change to a workflow that is not deterministic against
// what already ran in production fails here; version such changes with workflow.GetVersion.
// The replayer uses the production converters with the recorded histories' payload key:
// histories recorded before payload encryption (their payloads carry no encryption
// metadata) replay through them unchanged, as running unencrypted workflows do after
// encryption is turned on, and the encrypted ones decode.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata/histories")
	}
	codec := historiesCodec(t)
	encrypted := 0
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if isEncrypted(data) {
				encrypted++
				// Without the key, an encrypted history cannot be replayed: its payloads
				// really are encrypted.
				plain := worker.NewWorkflowReplayer()
				kooworker.RegisterWorkflows(plain)
				if err := plain.ReplayWorkflowHistoryFromJSONFile(nil, file); err == nil {
					t.Fatalf("%s replayed without the payload key", file)
				}
			}
			replayer, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
				DataConverter: payloadcodec.DataConverter(codec), FailureConverter: payloadcodec.FailureConverter(codec),
			})
			if err != nil {
				t.Fatal(err)
			}
			kooworker.RegisterWorkflows(replayer)
			if err := replayer.ReplayWorkflowHistoryFromJSONFile(nil, file); err != nil {
				t.Fatalf("replay %s: %v", file, err)
			}
		})
	}
	if encrypted == 0 {
		t.Error("no recorded history is encrypted: record them with e2e's KOOFLOW_RECORD_HISTORIES")
	}
}

// isEncrypted tells whether a recorded history's payloads carry the codec's encoding,
// binary/encrypted (base64 in the JSON history).
func isEncrypted(history []byte) bool {
	return strings.Contains(string(history), "YmluYXJ5L2VuY3J5cHRlZA==")
}
