//go:build !linux

package store

// pinSQLiteAllocatorPages does nothing here: the allocator behaviour it works around is
// that of modernc's C library on Linux (see sqlitealloc_linux.go).
func pinSQLiteAllocatorPages() {}
