package store

import (
	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/records"
)

// The store persists the rows of package records and the state names of package
// contract (the workflows own them). These names let the store's callers — the CLI,
// the webhook, the tests — speak of what the store returns without importing either.

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = records.ErrNotFound

// Rows the store reads and writes.
type (
	Subscription       = records.Subscription
	Expiration         = records.Expiration
	ReconciliationRun  = records.ReconciliationRun
	Discrepancy        = records.Discrepancy
	StatementCandidate = records.StatementCandidate
)

// Subscription statuses in the registry, and the layout of period names.
const (
	StatusActive   = records.StatusActive
	StatusFrozen   = records.StatusFrozen
	StatusReleased = records.StatusReleased
	PeriodLayout   = records.PeriodLayout
)

// Expiration states (see package contract).
const (
	StateAccepted   = contract.StateAccepted
	StateFreezing   = contract.StateFreezing
	StateNotifying  = contract.StateNotifying
	StateStalled    = contract.StateStalled
	StateReserved   = contract.StateReserved
	StateRenewed    = contract.StateRenewed
	StateReleased   = contract.StateReleased
	StateConflict   = contract.StateConflict
	StateSuperseded = contract.StateSuperseded
	StateCancelled  = contract.StateCancelled
	StateTerminated = contract.StateTerminated
)

// Reconciliation run states (see package contract).
const (
	RunBuilding  = contract.RunBuilding
	RunUploaded  = contract.RunUploaded
	RunPolling   = contract.RunPolling
	RunFetching  = contract.RunFetching
	RunCompleted = contract.RunCompleted
	RunFailed    = contract.RunFailed
)
