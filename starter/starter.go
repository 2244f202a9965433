// Package starter is the one place that starts kooflow's workflows: it owns workflow IDs,
// ID-reuse and conflict policies, search attributes, memos and UI summaries, so that
// every entry point (webhook, operator CLI) starts the same business object the same way.
package starter

import (
	"context"
	"errors"
	"fmt"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/workflows"
)

// Sources of expirations.
const (
	SourceKooGallery = "koogallery"
	SourceSmartHub   = "smarthub"
)

// periodLayout renders an expiry time as the period part of a workflow ID.
const periodLayout = store.PeriodLayout

// Period names the paid period a subscription's expiry ends: its expiry time in UTC, or
// "current" when the registry does not know it (store.PeriodOf). A renewal moves the
// expiry time, so an expiry after a renewal is a new period and a new workflow.
func Period(sub store.Subscription) string { return store.PeriodOf(sub) }

// ExpirationWorkflowID names one expiry: expire/<source>/<ref>/<period>, with a /test
// suffix for KooGallery debugging calls so a rehearsal never blocks the real expiry. The
// ref is the KooGallery instance ID, or for a SmartHub SIM package its registry
// subscription, sub<ID>: a workflow ID is stored in clear in Temporal (histories,
// visibility, every log line), so it must not carry the SIM's ICCID. (SmartHub expiries
// accepted before were named by gIccid/packageCode; the store still recognises them by
// their business key, so a late duplicate never starts a second workflow.)
func ExpirationWorkflowID(in contract.ExpirationInput) string {
	id := "expire/" + in.Source + "/" + in.Ref() + "/" + in.Period
	if in.Test {
		id += "/test"
	}
	return id
}

// ExpirationInput builds the workflow input for sub's current expiry.
func ExpirationInput(source, subject string, sub store.Subscription, test bool) contract.ExpirationInput {
	return contract.ExpirationInput{
		Source: source, Subject: subject, Period: Period(sub), SubscriptionID: sub.ID,
		InstanceID: sub.InstanceID, CarrierUserID: sub.CarrierUserID, PackageID: sub.PackageID, Test: test,
	}
}

// Starter steers running workflows and starts reconciliations through a Temporal
// client. Expirations are not started here directly: Intake accepts them and the Relay
// starts them.
type Starter struct {
	Client client.Client
	// Store looks expirations up for the operator's commands.
	Store *store.Store
}

// startExpirationWorkflow starts the expiration workflow id for in, once per expiry:
// ID-reuse policy reject-duplicate, so a finished one is never re-run by a late retry.
// It reports existing when Temporal already has (or had) the workflow. It returns only
// after Temporal durably accepted the start or reported the workflow ID as taken.
func startExpirationWorkflow(ctx context.Context, c client.Client, id string, in contract.ExpirationInput) (existing bool, err error) {
	return startExpirationWorkflowWith(ctx, c, id, in, enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE)
}

// startExpirationWorkflowWith is startExpirationWorkflow under the ID-reuse policy reuse
// (Restart allows a new run after one that did not complete).
func startExpirationWorkflowWith(ctx context.Context, c client.Client, id string, in contract.ExpirationInput, reuse enumspb.WorkflowIdReusePolicy) (existing bool, err error) {
	// What Temporal shows in clear, or to anyone who can open the UI, names the expiry
	// without personal data (no carrier user, package, ICCID or order): the input,
	// encrypted by the payload codec, has the rest for whoever may decode it.
	summary := fmt.Sprintf("%s expiry of %s, period %s", in.Source, in.Ref(), in.Period)
	if in.Test {
		summary = "TEST " + summary
	}
	_, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                workflows.TaskQueue,
		WorkflowIDReusePolicy:                    reuse,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SearchAttrInstanceID.ValueSet(in.InstanceID),
			workflows.SearchAttrState.ValueSet(store.StateAccepted),
		),
		Memo: map[string]any{
			"source": in.Source, "ref": in.Ref(), "period": in.Period, "subscriptionId": in.SubscriptionID, "test": in.Test,
		},
		StaticSummary: summary,
	}, workflows.ExpirationWorkflowV2Name, in)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case errors.As(err, &already):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("start expiration workflow %s: %w", id, err)
	}
	return false, nil
}

// ErrNotStalled is returned by Retry when the expiration is not waiting for an operator.
var ErrNotStalled = errors.New("expiration is not stalled")

// Retry tells a stalled expiration to try KooDrive for another hour. It sends the
// retry Update, whose validator answers in the same round trip whether the expiration
// is stalled; an expiration that cannot take the Update (started before it existed, or
// already closed) is asked for its status and, if stalled, sent the retry signal.
func (s *Starter) Retry(ctx context.Context, workflowID string) error {
	handle, err := s.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflowID, UpdateName: contract.UpdateRetry, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		var accepted contract.RetryAccepted
		err = handle.Get(ctx, &accepted)
	}
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &appErr) && appErr.Type() == contract.ErrTypeNotStalled:
		var state string
		if appErr.HasDetails() {
			_ = appErr.Details(&state)
		}
		return fmt.Errorf("retry %s: %w (state %s)", workflowID, ErrNotStalled, state)
	case ctx.Err() != nil:
		return fmt.Errorf("retry %s: %w", workflowID, err)
	}
	return s.retryBySignal(ctx, workflowID)
}

// retryBySignal is the retry for expirations without the retry Update: the status
// query, then the retry signal if stalled.
func (s *Starter) retryBySignal(ctx context.Context, workflowID string) error {
	status, err := s.Status(ctx, workflowID)
	if err != nil {
		return err
	}
	if status.State != contract.StateStalled {
		return fmt.Errorf("retry %s: %w (state %s)", workflowID, ErrNotStalled, status.State)
	}
	if err := s.Client.SignalWorkflow(ctx, workflowID, "", contract.SignalRetry, nil); err != nil {
		return fmt.Errorf("signal retry to %s: %w", workflowID, err)
	}
	return nil
}

// Status asks a running or closed expiration workflow for its status.
func (s *Starter) Status(ctx context.Context, workflowID string) (contract.ExpirationStatus, error) {
	var status contract.ExpirationStatus
	v, err := s.Client.QueryWorkflow(ctx, workflowID, "", contract.QueryStatus)
	if err != nil {
		return status, fmt.Errorf("query status of %s: %w", workflowID, err)
	}
	if err := v.Get(&status); err != nil {
		return status, fmt.Errorf("decode status of %s: %w", workflowID, err)
	}
	return status, nil
}

// SearchAttributes lists kooflow's custom search attributes and their types.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	out := map[string]enumspb.IndexedValueType{}
	for _, key := range []temporal.SearchAttributeKeyKeyword{
		workflows.SearchAttrInstanceID, workflows.SearchAttrState, workflows.SearchAttrBillingCycle,
	} {
		out[key.GetName()] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	}
	return out
}

// EnsureSearchAttributes registers any of kooflow's search attributes the namespace
// lacks. It needs operator rights on the cluster.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	existing, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes of namespace %s: %w", namespace, err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range SearchAttributes() {
		if _, ok := existing.GetCustomAttributes()[name]; !ok {
			missing[name] = typ
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		names := make([]string, 0, len(missing))
		for n := range missing {
			names = append(names, n)
		}
		return fmt.Errorf("add search attributes %s to namespace %s: %w", strings.Join(names, ", "), namespace, err)
	}
	return nil
}
