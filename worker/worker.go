// Package worker builds kooflow's Temporal worker: which workflows and activities it
// runs, under which names, on which task queue.
package worker

import (
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/workflows"
)

// Dependencies are what the activities need.
type Dependencies struct {
	Expiration *activities.Expiration
}

// New returns a worker on workflows.TaskQueue with every kooflow workflow and activity
// registered. Call Run or Start on it.
func New(c client.Client, deps Dependencies, opts sdkworker.Options) sdkworker.Worker {
	w := sdkworker.New(c, workflows.TaskQueue, opts)
	Register(w, deps)
	return w
}

// Register adds kooflow's workflows and activities to any registry (a worker, or the
// SDK's test and replay environments), under the names the workflows call them by.
func Register(r sdkworker.Registry, deps Dependencies) {
	r.RegisterWorkflowWithOptions(workflows.ExpirationWorkflow, workflow.RegisterOptions{Name: "ExpirationWorkflow"})
	if deps.Expiration != nil {
		e := deps.Expiration
		r.RegisterActivityWithOptions(e.BeginExpiration, activity.RegisterOptions{Name: workflows.ActivityBeginExpiration})
		r.RegisterActivityWithOptions(e.FreezeSubscription, activity.RegisterOptions{Name: workflows.ActivityFreezeSubscription})
		r.RegisterActivityWithOptions(e.NotifyKooDrive, activity.RegisterOptions{Name: workflows.ActivityNotifyKooDrive})
		r.RegisterActivityWithOptions(e.SetExpirationState, activity.RegisterOptions{Name: workflows.ActivitySetExpirationState})
	}
}
