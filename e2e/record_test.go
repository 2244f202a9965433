package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	historypb "go.temporal.io/api/history/v1"
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
	iter := e.app.Client.GetWorkflowHistory(context.Background(), workflowID, "", false, 0)
	hist := &historypb.History{}
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			e.t.Fatalf("read history of %s: %v", workflowID, err)
		}
		hist.Events = append(hist.Events, ev)
	}
	data, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(hist)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.t.Logf("recorded %d events of %s", len(hist.Events), workflowID)
}
