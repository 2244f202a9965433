package metrics

import (
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// PprofEnv turns the /debug/pprof/ endpoint on (KOOFLOW_PPROF=on) on a process's metrics
// port. It is off by default: a profile shows the process's memory, goroutines and
// command line, so it is for diagnosis on loopback, never for a public listener.
const PprofEnv = "KOOFLOW_PPROF"

// MountPprof mounts net/http/pprof's handlers under /debug/pprof/ on mux: the index and
// the named profiles (heap, allocs, goroutine, ...) through pprof.Index, and cmdline,
// profile (CPU), symbol and trace. They are mounted here explicitly, so a process serves
// them only where a caller chose to, never through http.DefaultServeMux.
func MountPprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

// RuntimeHandler serves a registry holding only the Go runtime's and the process's
// collectors (go_memstats_*, go_goroutines, process_resident_memory_bytes, ...): the
// /metrics of a process that has no kooflow metrics of its own, `kooflow temporal`.
func RuntimeHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}
