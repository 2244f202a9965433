package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
)

// liveCheckTimeout bounds how long status waits for Temporal before it shows kooflow's
// record unconfirmed.
const liveCheckTimeout = 3 * time.Second

// liveCheck is what status learned from Temporal about the expirations it shows.
type liveCheck struct {
	// Asked is false when status had nothing to ask (no expiration it shows can still
	// run) and true once Temporal was asked.
	Asked bool
	// Unconfirmed, when set, says why Temporal could not be asked: the open states shown
	// are kooflow's record, not checked.
	Unconfirmed string
	// Drift lists the expirations found ended in Temporal outside kooflow, now recorded.
	Drift []starter.Drift
}

// checkAgainstTemporal compares the open expirations rep shows with Temporal, so status
// never shows an expiration as running that Temporal ended. For one subject each open
// expiration's workflow is described (starter.CheckExpiration records drift, and rep's
// rows are read again); for a list, Temporal's health is asked. A Temporal that does not
// answer within liveCheckTimeout is reported, not an error: the store's record is still
// what kooflow knows.
func checkAgainstTemporal(ctx context.Context, tf *temporalFlags, st *store.Store, rep *statusReport) liveCheck {
	var open []string
	for _, e := range rep.Expirations {
		if slices.Contains(store.OpenStates, e.State) && e.State != store.StateAccepted {
			open = append(open, e.WorkflowID)
		}
	}
	if len(open) == 0 {
		return liveCheck{}
	}
	ctx, cancel := context.WithTimeout(ctx, liveCheckTimeout)
	defer cancel()
	check := liveCheck{Asked: true}
	c, err := tf.dial(ctx)
	if err != nil {
		check.Unconfirmed = fmt.Sprintf("Temporal could not be asked (%v)", err)
		return check
	}
	defer c.Close()
	if rep.Subject == "" {
		if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			check.Unconfirmed = fmt.Sprintf("Temporal did not answer (%v)", err)
		}
		return check
	}
	for _, id := range open {
		d, err := starter.CheckExpiration(ctx, c, st, id)
		if err != nil {
			check.Unconfirmed = fmt.Sprintf("Temporal did not answer about %s (%v)", id, err)
			return check
		}
		if d != nil {
			check.Drift = append(check.Drift, *d)
		}
	}
	if len(check.Drift) > 0 {
		for i, e := range rep.Expirations {
			if fresh, err := st.Expiration(ctx, e.WorkflowID); err == nil {
				rep.Expirations[i] = fresh
			}
		}
	}
	return check
}

// notes are the lines status prints above its tables about the check.
func (l liveCheck) notes() []string {
	var lines []string
	for _, d := range l.Drift {
		lines = append(lines, fmt.Sprintf("%s was ended in Temporal outside kooflow (%s): now recorded as %s; `kooflow retry %s` runs it again",
			d.WorkflowID, d.Status, d.State, d.WorkflowID))
	}
	if l.Unconfirmed != "" {
		lines = append(lines, "WARNING: "+l.Unconfirmed+": the states below are kooflow's record, not confirmed live by Temporal")
	}
	return lines
}
