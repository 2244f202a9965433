// Package e2e holds kooflow's end-to-end tests: the real Temporal server embedded in the
// test process, the real store, real HTTP through the webhook; only KooDrive is the
// sandbox. It is the one test package that links the Temporal server, so it builds once.
package e2e
