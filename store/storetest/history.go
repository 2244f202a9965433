package storetest

import (
	"context"
	"strings"
	"testing"

	"github.com/kooflow/kooflow/store"
)

// History returns a subscription's history as "event (detail)|event|…", oldest first.
func History(t testing.TB, st *store.Store, subscriptionID int64) string {
	t.Helper()
	events, err := st.Events(context.Background(), subscriptionID)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(events))
	for _, e := range events {
		name := e.Event
		if e.Detail != "" {
			name += " (" + e.Detail + ")"
		}
		names = append(names, name)
	}
	return strings.Join(names, "|")
}
