package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFileName is the file in a data directory that kooflow dev and kooflow temporal
// hold an OS lock (flock) on for their whole life: two embedded Temporal servers on one
// data directory join one cluster on one SQLite file and stall each other.
const lockFileName = "kooflow.lock"

// lockDataDir takes the data directory's lock, or fails naming the process that holds
// it. The lock is the kernel's: it ends when the process ends, however it ends (SIGKILL
// included), so a stale lock file never blocks a restart. release gives it up earlier.
func lockDataDir(dataDir string) (release func(), err error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(dataDir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open data directory lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			msg := fmt.Sprintf("data directory %s is in use by another kooflow dev or kooflow temporal", dataDir)
			if pid := strings.TrimSpace(string(holder)); pid != "" {
				msg += " (pid " + pid + ")"
			}
			if addr, _ := recordedTemporalAddress(dataDir); addr != "" {
				msg += ", Temporal frontend " + addr
			}
			return nil, errors.New(msg + "; stop it first, or give this one another --data-dir")
		}
		return nil, fmt.Errorf("lock data directory %s: %w", dataDir, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
