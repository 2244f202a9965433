package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kooflow/kooflow/payloadcodec"
)

// clearOperatorEnv unsets what would let an operator command find its keys or Temporal
// other than through --data-dir.
func clearOperatorEnv(t *testing.T) {
	t.Helper()
	for _, v := range []string{payloadcodec.EnvKeys, payloadcodec.EnvKeysFile, payloadcodec.EnvEncryption, "KOOFLOW_DATA_DIR", "KOOFLOW_DB", "TEMPORAL_ADDRESS"} {
		t.Setenv(v, "")
	}
}

// adviceToMakeAKey are words of an error that would have an operator create a payload
// key — which could not read a single payload the processes encrypted.
var adviceToMakeAKey = []string{"openssl", "rand", "generate", "create"}

// TestOperatorCommandInAWrongDirectoryIsToldSo: an operator command that dials Temporal,
// run where there is no kooflow data (the default ./kooflow-data of an empty directory)
// and without payload keys in the environment, fails naming the directory it tried and
// what to point at or set — never that a key is missing, never to make one — and creates
// nothing. The same holds for a command that found its store through --db.
func TestOperatorCommandInAWrongDirectoryIsToldSo(t *testing.T) {
	clearOperatorEnv(t)
	db := filepath.Join(dataDir(t), "kooflow.db")
	dir := t.TempDir()
	t.Chdir(dir)
	for _, args := range [][]string{
		{"schedule", "describe"},
		{"schedule", "apply", "--db", "sqlite:" + db},
	} {
		out, err := run(t, args...)
		if err == nil {
			t.Fatalf("%v in an empty directory: %q, no error", args, out)
		}
		msg := err.Error()
		for _, want := range []string{"--data-dir ./kooflow-data (" + filepath.Join(dir, "kooflow-data") + ") holds no kooflow data (no kooflow.db, temporal-ports.json or payload-keys)",
			"kooflow dev's data directory", payloadcodec.EnvKeys, payloadcodec.EnvKeysFile, "TEMPORAL_ADDRESS"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%v: the error does not say %q: %v", args, want, err)
			}
		}
		for _, advice := range append(adviceToMakeAKey, "no payload key") {
			if strings.Contains(strings.ToLower(msg), advice) {
				t.Errorf("%v: the error says %q: %v", args, advice, err)
			}
		}
	}
	if _, err := os.Stat("kooflow-data"); !os.IsNotExist(err) {
		t.Fatalf("a command created the data directory: %v", err)
	}

	// Keys in the environment are what an installation without kooflow dev uses: the
	// command goes on to dial Temporal.
	entry, err := payloadcodec.NewKeyEntry("ops-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(payloadcodec.EnvKeys, entry)
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:3") // nothing listens
	if _, err := run(t, "schedule", "describe"); err == nil || !strings.Contains(err.Error(), "connect to Temporal at 127.0.0.1:3 ") {
		t.Fatalf("schedule describe with keys in the environment: %v", err)
	}
}

// TestOperatorCommandInADevDataDirWithoutItsKey: in kooflow dev's data directory (its
// database and Temporal ports) whose payload key file is missing, the command says the key
// is missing, naming the directory and what it found there, without advising to make one
// and without making one; with the key file back, it dials Temporal.
func TestOperatorCommandInADevDataDirWithoutItsKey(t *testing.T) {
	clearOperatorEnv(t)
	dir := dataDir(t)
	if err := os.WriteFile(filepath.Join(dir, "temporal-ports.json"), []byte(`{"grpc":{"frontend":3}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := run(t, "schedule", "describe", "--data-dir", dir)
	if err == nil {
		t.Fatal("schedule describe without a payload key: no error")
	}
	msg := err.Error()
	for _, want := range []string{"no payload key: --data-dir " + dir + " is kooflow dev's data directory (it has kooflow.db, temporal-ports.json) but holds no payload-keys",
		payloadcodec.EnvKeys, payloadcodec.EnvKeysFile, "the keys the worker and webhook encrypt with"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	for _, advice := range adviceToMakeAKey {
		if strings.Contains(strings.ToLower(msg), advice) {
			t.Errorf("the error says %q: %v", advice, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, payloadcodec.DevKeyFile)); !os.IsNotExist(err) {
		t.Fatalf("the command made a payload key file: %v", err)
	}
	if _, err := payloadcodec.EnsureDevKey(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "schedule", "describe", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "connect to Temporal at 127.0.0.1:3 ") {
		t.Fatalf("schedule describe with kooflow dev's key: %v", err)
	}
}
