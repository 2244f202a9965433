package devstack

import (
	"fmt"
	"strconv"

	"go.temporal.io/server/common/dynamicconfig"
)

// The bounds on what the embedded server keeps in memory, in one place. Each is a
// dynamic-config key of the server, set at start (they need a restart to change), and a
// setting of `kooflow temporal` and `kooflow dev`. The defaults are measured with
// `go run ./bench soak` (BENCHMARKS.md, "Memory over a steady trickle").
//
// What grows without them: the history service keeps every workflow it touched in its
// host-level history cache — the workflow's mutable state (execution info, activities,
// timers, search attributes, its last events), 60–80 KB of Go heap for an expiration —
// until 128,000 entries or an hour after the last use. At a trickle of 10 expiries a
// second that is 36,000 workflows an hour, none of which is read again once it has
// closed: the server's RSS climbs by ~60 KB per expiration and never levels off within
// the hour, and at 128,000 entries it would hold gigabytes. A workflow that is not in the
// cache is loaded from the database on its next task, so a smaller cache costs a read
// for a workflow idle longer than the cache's turnover, nothing else.
const (
	// DefaultHistoryCacheEntries bounds the host-level history (mutable state) cache:
	// history.hostLevelCacheMaxSize, the server's default 128,000. 2,000 workflows are
	// minutes of kooflow's steady traffic and more than are ever in flight at once in the
	// soak and burst benchmarks; at ~70 KB each the cache holds ~140 MB at the most.
	DefaultHistoryCacheEntries = 2000
	// HistoryCacheEntriesEnv sets the bound (a whole number of workflows, at least 1).
	HistoryCacheEntriesEnv = "KOOFLOW_TEMPORAL_HISTORY_CACHE"
)

// MemoryBounds caps the server's per-workflow memory. The zero value means the
// defaults above.
type MemoryBounds struct {
	// HistoryCacheEntries is the host-level history cache's size in workflows
	// (history.hostLevelCacheMaxSize); 0 means DefaultHistoryCacheEntries.
	HistoryCacheEntries int
}

// MemoryBoundsFromEnv reads the bounds from the environment (getenv is os.Getenv in the
// commands): KOOFLOW_TEMPORAL_HISTORY_CACHE. Unset settings keep their defaults.
func MemoryBoundsFromEnv(getenv func(string) string) (MemoryBounds, error) {
	var b MemoryBounds
	if v := getenv(HistoryCacheEntriesEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return b, fmt.Errorf("%s=%q: want a whole number of workflows, at least 1", HistoryCacheEntriesEnv, v)
		}
		b.HistoryCacheEntries = n
	}
	return b, nil
}

// apply sets the bounds, defaults filled in, in the server's dynamic config.
func (b MemoryBounds) apply(dc dynamicconfig.StaticClient) {
	entries := b.HistoryCacheEntries
	if entries == 0 {
		entries = DefaultHistoryCacheEntries
	}
	dc[dynamicconfig.HistoryCacheHostLevelMaxSize.Key()] = entries
}
