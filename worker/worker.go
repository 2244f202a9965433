// Package worker builds kooflow's Temporal worker: which workflows and activities it
// runs, under which names, on which task queue.
package worker

import (
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/workflows"
)

// Dependencies are what the activities need.
type Dependencies struct {
	Expiration     *activities.Expiration
	Reconciliation *activities.Reconciliation
}

// New returns a worker on workflows.TaskQueue with every kooflow workflow and activity
// registered. Call Run or Start on it.
func New(c client.Client, deps Dependencies, opts sdkworker.Options) sdkworker.Worker {
	w := sdkworker.New(c, workflows.TaskQueue, opts)
	Register(w, deps)
	return w
}

// Register adds kooflow's workflows and activities to a worker or the SDK's test
// environment, under the names the workflows call them by.
func Register(r sdkworker.Registry, deps Dependencies) {
	RegisterWorkflows(r)
	RegisterActivities(r, deps)
}

// WorkflowRegistry is anything workflows can be registered on: a worker, the test
// environment, or a replayer.
type WorkflowRegistry interface {
	RegisterWorkflowWithOptions(w any, options workflow.RegisterOptions)
}

// RegisterWorkflows registers every kooflow workflow under its stable names. Renaming
// one breaks the workflows already running under the old name: the expiration workflow
// runs under its first name for the executions started under it, and under
// workflows.ExpirationWorkflowV2Name for new ones.
func RegisterWorkflows(r WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(workflows.ExpirationWorkflow, workflow.RegisterOptions{Name: workflows.ExpirationWorkflowName})
	r.RegisterWorkflowWithOptions(workflows.ExpirationWorkflow, workflow.RegisterOptions{Name: workflows.ExpirationWorkflowV2Name})
	r.RegisterWorkflowWithOptions(workflows.ReconciliationWorkflow, workflow.RegisterOptions{Name: "ReconciliationWorkflow"})
	r.RegisterWorkflowWithOptions(workflows.MonthlyReconciliationWorkflow, workflow.RegisterOptions{Name: "MonthlyReconciliationWorkflow"})
}

// RegisterActivities registers the activity structs whose dependencies are present:
// every exported method becomes an activity under its method name, which is the name
// the workflows' typed references resolve to and the name in recorded histories.
func RegisterActivities(r sdkworker.ActivityRegistry, deps Dependencies) {
	if deps.Expiration != nil {
		r.RegisterActivity(deps.Expiration)
	}
	if deps.Reconciliation != nil {
		r.RegisterActivity(deps.Reconciliation)
	}
}
