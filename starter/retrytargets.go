package starter

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/kooflow/kooflow/store"
)

// ErrNothingStalled is returned by StalledWorkflowIDs when what it was asked for names no
// stalled expiration.
var ErrNothingStalled = errors.New("no stalled expiration")

// maxRetryTargets bounds how many expirations one retry of every stalled one takes on.
const maxRetryTargets = 10000

// StalledWorkflowIDs returns the expirations an operator's retry targets: target itself when
// it is a workflow ID (expire/…; the retry's Update then says whether it is stalled), every
// stalled, terminated or cancelled expiration of the instance (or gIccid/packageCode)
// target names, or every stalled expiration when target is empty (a terminated one is
// restarted only when named: someone ended it on purpose, perhaps). Finding none is an
// error wrapping ErrNothingStalled.
func StalledWorkflowIDs(ctx context.Context, st *store.Store, target string) ([]string, error) {
	if strings.HasPrefix(target, "expire/") {
		return []string{target}, nil
	}
	states := []string{store.StateStalled}
	if target != "" {
		states = append(states, store.StateTerminated, store.StateCancelled)
	}
	var exps []store.Expiration
	for _, state := range states {
		found, err := st.Expirations(ctx, store.ExpirationFilter{State: state, Subject: target, Limit: maxRetryTargets})
		if err != nil {
			return nil, fmt.Errorf("look up %s expirations: %w", state, err)
		}
		exps = append(exps, found...)
	}
	if len(exps) == 0 {
		if target == "" {
			return nil, fmt.Errorf("%w anywhere", ErrNothingStalled)
		}
		return nil, fmt.Errorf("instance %s has %w", target, ErrNothingStalled)
	}
	ids := make([]string, len(exps))
	for i, e := range exps {
		ids[i] = e.WorkflowID
	}
	return ids, nil
}
