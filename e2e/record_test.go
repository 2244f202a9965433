package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/api/temporalproto"

	"github.com/kooflow/kooflow/payloadcodec"
)

// RecordEnv names a directory to write the histories of finished test workflows to, for
// the replay tests in package workflows: KOOFLOW_RECORD_HISTORIES=workflows/testdata/histories.
const RecordEnv = "KOOFLOW_RECORD_HISTORIES"

// historiesCodec is the payload codec of the recorded histories: the test-only key in
// workflows/testdata/payload-keys, which the replay tests decode them with.
func historiesCodec(t testing.TB) *payloadcodec.Codec {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "workflows", "testdata", "payload-keys"))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := payloadcodec.ParseKeyFile(data)
	if err != nil {
		t.Fatal(err)
	}
	return payloadcodec.NewCodec(ring)
}

// recordHistory saves workflowID's full history as name.json when RecordEnv is set.
func (e *env) recordHistory(workflowID, name string) {
	dir := os.Getenv(RecordEnv)
	if dir == "" {
		return
	}
	e.t.Helper()
	hist := e.rawHistory(e.app.Client, workflowID)
	data, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(hist)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.t.Logf("recorded %d events of %s", len(hist.Events), workflowID)
}
