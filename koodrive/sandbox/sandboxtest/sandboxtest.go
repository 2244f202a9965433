// Package sandboxtest starts the KooDrive sandbox for tests: served over real HTTP on
// httptest, with a koodrive client configured for it. Tests that also need kooflow's
// store open one with package store/storetest.
package sandboxtest

import (
	"net/http/httptest"
	"testing"

	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/koodrive/sandbox"
)

// Credentials the sandbox accepts and the client sends, unless a test asks for others.
const (
	// AccessToken is the token the sandbox has issued to the client.
	AccessToken = "tok"
	// UserID is the KooDrive user the client names in X-User-Id.
	UserID = "kd"
)

// KooDrive is a running sandbox and a client that talks to it.
type KooDrive struct {
	// Sandbox is the simulator: faults are injected and calls inspected through it.
	Sandbox *sandbox.Sandbox
	// Client is a koodrive client for Sandbox, authenticated with AccessToken.
	Client *koodrive.Client
	// URL is the sandbox's base URL.
	URL string
}

// Start serves a sandbox accepting AccessToken for UserID and returns it with a client;
// both are closed when the test ends.
func Start(t testing.TB) *KooDrive {
	t.Helper()
	return StartWith(t, sandbox.Options{AccessToken: AccessToken, UserID: UserID}, koodrive.Config{AccessToken: AccessToken})
}

// StartWith serves a sandbox with opts and returns it with a client built from cfg, whose
// BaseURL is set to the sandbox and whose UserID defaults to opts.UserID.
func StartWith(t testing.TB, opts sandbox.Options, cfg koodrive.Config) *KooDrive {
	t.Helper()
	sb := sandbox.New(opts)
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	cfg.BaseURL = srv.URL
	if cfg.UserID == "" {
		cfg.UserID = opts.UserID
	}
	client, err := koodrive.New(cfg)
	if err != nil {
		t.Fatalf("KooDrive client for the sandbox: %v", err)
	}
	return &KooDrive{Sandbox: sb, Client: client, URL: srv.URL}
}
