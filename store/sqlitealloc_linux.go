//go:build linux

package store

import (
	"sync"

	"modernc.org/libc"
)

// pinSQLiteAllocatorPages keeps one block of every small size class of modernc's C
// allocator (the malloc behind the pure-Go SQLite) allocated for the life of the process.
//
// That allocator carves blocks of up to 16 KiB out of 64 KiB pages it maps from the
// kernel, and unmaps a page as soon as its last block is freed. SQLite mallocs and frees
// a scratch buffer of a few KiB on every B-tree page split (balance_nonroot), and nothing
// else lives in that size class, so every split cost an mmap and up to three munmaps:
// 47 % of the CPU of a million-row registry import, more than all of SQLite's own work.
// With one block pinned, each of those pages stays mapped and the scratch buffer is
// reused from the allocator's free list. The cost is one 64 KiB mapping per size class,
// of which only the pages touched become resident.
func pinSQLiteAllocatorPages() {
	pinOnce.Do(func() {
		tls := libc.NewTLS()
		defer tls.Close()
		for log := 4; log <= 14; log++ {
			// Never freed: the block's only purpose is to keep its page mapped.
			libc.Xmalloc(tls, libc.Tsize_t(1)<<log)
		}
	})
}

var pinOnce sync.Once
