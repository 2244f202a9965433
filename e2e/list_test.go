package e2e

import (
	"context"
	"time"

	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
)

func listRequest(query string) *workflowservice.ListWorkflowExecutionsRequest {
	return &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default", Query: query}
}

// waitListed lists the executions that match query once Temporal's visibility shows any,
// and fails if it shows none within timeout. Visibility is eventually consistent: the
// server indexes a start or a search-attribute upsert after the workflow task that made
// it completes, and the expiration writes its store row from a local activity inside that
// task — so the store can say "stalled" before a search for KooflowState = "stalled"
// finds the workflow. A test that reads the store and then searches must wait for the
// index, not assume the two are in step.
func (e *env) waitListed(query string, timeout time.Duration) []*workflowpb.WorkflowExecutionInfo {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := e.app.Client.ListWorkflow(context.Background(), listRequest(query))
		if err != nil {
			e.t.Fatalf("list %s: %v", query, err)
		}
		if len(resp.GetExecutions()) > 0 {
			return resp.GetExecutions()
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no execution matches %s within %s", query, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
