// Package records holds the rows kooflow keeps about subscriptions, expirations and
// reconciliations, as plain types with no dependencies. The store persists them, the rule
// book (package rules) judges them, and the activities read and write them through small
// ports — so the activities, and the workflows that reference them, never link a
// database driver. Rows never travel through workflow histories: activities map them to
// the workflows' own types (package contract) at the boundary.
package records

import (
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// Subscription statuses in the registry.
const (
	StatusActive   = "active"
	StatusFrozen   = "frozen"
	StatusReleased = "released"
)

// PeriodLayout renders an expiry time as a period name.
const PeriodLayout = "20060102150405"

// Subscription is one carrier subscription: a KooGallery instance and/or a SmartHub SIM
// package, mapped to the carrier user and package KooDrive knows.
type Subscription struct {
	ID               int64
	InstanceID       string
	OrderID          string
	CarrierUserID    string
	PackageID        string
	CarrierOrderID   string
	CarrierOrderTime string
	// ExpireTime is the end of the current paid period, empty when unknown.
	ExpireTime time.Time
	// RenewedUntil is the expiry time of the last renewal KooGallery reported
	// (refreshInstance), zero when none was: what tells a renewal from a registry date
	// that merely disagrees (rules.KooGalleryExpiry).
	RenewedUntil time.Time
	GIccid       string
	PackageCode  string
	Status       string
	// FrozenPeriod is the expiry period the subscription was last frozen for.
	FrozenPeriod string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Expiration is one accepted expiry and where it stands.
type Expiration struct {
	WorkflowID     string
	Source         string
	Subject        string
	Period         string
	SubscriptionID int64
	CarrierUserID  string
	PackageID      string
	Test           bool
	State          string
	Attempts       int
	LastError      string
	NotifiedAt     time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// ReconciliationRun is one run of a billing cycle's reconciliation. A cycle has a run
// for every time its workflow ran (a --force re-run, a reset, the schedule after a
// failure): each is kept, with the files it wrote.
type ReconciliationRun struct {
	// ID is the store's number of the run, in the order runs started.
	ID         int64
	Cycle      string
	WorkflowID string
	// RunID is Temporal's run ID of the workflow; empty for runs recorded by releases
	// that kept one row per cycle.
	RunID           string
	State           string
	StatementPath   string
	StatementRows   int
	StatementSHA256 string
	BatchNo         string
	ReportPath      string
	Counts          map[string]int
	Error           string
	// CreatedAt is when the run started (its first save), UpdatedAt its last save.
	CreatedAt time.Time
	UpdatedAt time.Time
	// FinishedAt is when the run completed or failed; zero while it runs.
	FinishedAt time.Time
}

// Discrepancy is one stored DiffBill.
type Discrepancy struct {
	BatchNo          string
	Cycle            string
	Seq              int
	DiffType         string
	CarrierOrderID   string
	KdOrderID        string
	CarrierUserID    string
	CarrierOrderTime string
	KdUserID         string
	UserStatus       string
	// Raw is the record exactly as KooDrive sent it.
	Raw string
	// PackageID is the package the registry has for CarrierOrderID, read with the
	// discrepancy (KooDrive's DiffBill has no package): not stored with it, and empty
	// when the registry has no subscription with that order.
	PackageID string
}

// StatementCandidate is the part of a subscription the monthly statement needs.
type StatementCandidate struct {
	CarrierOrderID   string
	CarrierUserID    string
	CarrierOrderTime string
	PackageID        string
	Status           string
	ExpireTime       time.Time
	CreatedAt        time.Time
}

// timeLayouts are the formats a registry's times (expireTime, carrierOrderTime) may
// use; all are read as UTC.
var timeLayouts = []string{PeriodLayout, time.RFC3339, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"}

// ParseTime reads a registry time in any of the accepted layouts.
func ParseTime(v string) (time.Time, error) {
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("expireTime %q is not yyyyMMddHHmmss, RFC 3339 or yyyy-MM-dd[ HH:mm:ss]", v)
}
