//go:build linux

package store

import (
	"runtime"
	"syscall"
	"testing"

	"modernc.org/libc"
)

// TestSQLiteAllocatorPagesStayMapped checks what pinSQLiteAllocatorPages is for: a block
// the size of SQLite's page-split scratch buffer, allocated and freed over and over as
// every B-tree split does, reuses memory already mapped instead of mapping (and faulting
// in) a fresh page each time. Were the allocator to unmap the page at every free, each
// round would cost at least one page fault.
func TestSQLiteAllocatorPagesStayMapped(t *testing.T) {
	pinSQLiteAllocatorPages()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tls := libc.NewTLS()
	defer tls.Close()
	const rounds = 500
	faults := func() int64 {
		var ru syscall.Rusage
		if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
			t.Fatalf("getrusage: %v", err)
		}
		return ru.Minflt
	}
	for _, size := range []int{3 << 10, 6 << 10, 12 << 10} {
		before := faults()
		for range rounds {
			p := libc.Xmalloc(tls, libc.Tsize_t(size))
			if p == 0 {
				t.Fatalf("malloc(%d) failed", size)
			}
			libc.Xmemset(tls, p, 1, libc.Tsize_t(size))
			libc.Xfree(tls, p)
		}
		if got := faults() - before; got > rounds/10 {
			t.Errorf("%d rounds of malloc(%d) and free: %d page faults, want at most %d (the allocator maps a fresh page each time)", rounds, size, got, rounds/10)
		}
	}
}
