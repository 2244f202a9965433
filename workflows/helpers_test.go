package workflows_test

import "go.temporal.io/sdk/client"

// clientStartOptions gives test runs the workflow ID production uses.
func clientStartOptions() client.StartWorkflowOptions {
	return client.StartWorkflowOptions{ID: workflowID}
}
