package main

import (
	"context"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
)

// stackFlags locate both halves of a running kooflow for operator commands that need the
// store and Temporal: --data-dir/--db and --temporal-address/--namespace, with Temporal's
// recorded port read from the same data directory.
type stackFlags struct {
	store    storeFlags
	temporal temporalFlags
}

// register adds the store's and Temporal's flags to cmd.
func (f *stackFlags) register(cmd *cobra.Command) {
	f.store.register(cmd)
	f.temporal.register(cmd, &f.store.dataDir)
}

// open opens the store; Temporal is dialled on the stack's first call to dial, so a
// command answers what the store alone can (a mistyped target, nothing stalled) without
// waiting for Temporal. Close the stack when done.
func (f *stackFlags) open(ctx context.Context) (*stack, error) {
	st, err := f.store.open(ctx)
	if err != nil {
		return nil, err
	}
	return &stack{Store: st, temporal: &f.temporal}, nil
}

// stack is an operator command's open store and, once dialled, its Temporal client.
type stack struct {
	Store    *store.Store
	temporal *temporalFlags
	client   client.Client
}

// dial returns the Temporal client, connecting on the first call.
func (s *stack) dial(ctx context.Context) (client.Client, error) {
	if s.client == nil {
		c, err := s.temporal.dial(ctx)
		if err != nil {
			return nil, err
		}
		s.client = c
	}
	return s.client, nil
}

// operator is the audited door for this command's actions, as the CLI's actor (the
// operating-system user on this host).
func (s *stack) operator() *starter.Operator {
	return &starter.Operator{Store: s.Store, Actor: starter.CLIActor(), Dial: s.dial}
}

// Close closes the Temporal client, if dialled, and the store.
func (s *stack) Close() error {
	if s.client != nil {
		s.client.Close()
	}
	return s.Store.Close()
}
