package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/devstack"
	"github.com/kooflow/kooflow/httpserver"
	"github.com/kooflow/kooflow/metrics"
	"github.com/kooflow/kooflow/starter"
)

func newTemporalCommand() *cobra.Command {
	var (
		dataDir       string
		temporalPort  int
		uiPort        int
		db            string
		historyShards int
		metricsAddr   string
		// uiWriteActions lets the UI cancel, terminate and reset workflows.
		uiWriteActions bool
	)
	cmd := &cobra.Command{
		Use:   "temporal",
		Short: "Run only the embedded Temporal server and UI (SQLite, or PostgreSQL with --db), for `kooflow worker` and `kooflow webhook` as separate processes",
		Long: `Runs the same embedded Temporal server as ` + "`kooflow dev`" + ` (kooflow's namespace and search
attributes, the Temporal UI) and nothing else, so the production topology — separate worker
and webhook processes — runs on one machine without Docker.

By default the server keeps its data in SQLite in --data-dir (one history shard). With
--db postgres://user:password@host:port/temporal it runs on PostgreSQL instead: the database
named in the URL holds the default store and <database>_visibility holds visibility; both
are created if missing (the user needs CREATEDB, or an administrator creates them) and their
schemas are set up or updated with the Temporal server's own schema tool, so every start is
safe on a new or an existing database. --history-shards is fixed when the cluster is
created (default 4); a different count for an existing cluster is refused. Prefer
KOOFLOW_TEMPORAL_DB to the flag so the password stays off the command line. Run one
` + "`kooflow temporal`" + ` per database: to grow beyond one machine, run a Temporal cluster.

With --metrics-addr (KOOFLOW_TEMPORAL_METRICS_ADDR; off by default) it serves /metrics (the
process's memory: go_memstats_*, process_resident_memory_bytes) and /healthz there, and
/debug/pprof/ too when KOOFLOW_PPROF=on (for diagnosis: keep the address on loopback).

The server's memory per workflow is bounded: KOOFLOW_TEMPORAL_HISTORY_CACHE workflows in its
history cache (default ` + strconv.Itoa(devstack.DefaultHistoryCacheEntries) + `; the Temporal server's own default is 128,000).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOnOffEnv("KOOFLOW_UI_WRITE_ACTIONS", metrics.PprofEnv); err != nil {
				return err
			}
			memory, err := devstack.MemoryBoundsFromEnv(os.Getenv)
			if err != nil {
				return err
			}
			pprof := os.Getenv(metrics.PprofEnv) == "on"
			if pprof && metricsAddr == "" {
				return fmt.Errorf("%s=on needs --metrics-addr (KOOFLOW_TEMPORAL_METRICS_ADDR) to serve /debug/pprof/ on", metrics.PprofEnv)
			}
			dir, err := filepath.Abs(dataDir)
			if err != nil {
				return err
			}
			if historyShards < 0 || (db == "" && historyShards > 1) {
				return fmt.Errorf("--history-shards %d: SQLite runs one history shard; several need --db postgres://…", historyShards)
			}
			unlock, err := lockDataDir(dir)
			if err != nil {
				return err
			}
			defer unlock()
			stack, err := devstack.Start(cmd.Context(), devstack.Options{
				DataDir: dir, FrontendPort: temporalPort, UIPort: uiPort, SearchAttributes: starter.SearchAttributes(),
				DB: db, HistoryShards: int32(historyShards), UIWriteActions: uiWriteActions, Memory: memory,
			})
			if err != nil {
				return err
			}
			defer stack.Stop()
			if metricsAddr != "" {
				ms, err := serveTemporalMetrics(metricsAddr, pprof)
				if err != nil {
					return err
				}
				defer ms.Shutdown()
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Temporal frontend %s (namespace %s), UI %s\nTemporal persistence: %s\n",
				stack.HostPort(), stack.Namespace(), stack.UIURL(), stack.Persistence())
			slog.Info("embedded Temporal running", "frontend", stack.HostPort(), "ui", stack.UIURL(), "dataDir", dir,
				"persistence", stack.Persistence())
			<-cmd.Context().Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", envOr("KOOFLOW_DATA_DIR", "./kooflow-data"),
		"directory for the SQLite Temporal database, the server's log and its service ports")
	cmd.Flags().IntVar(&temporalPort, "temporal-port", envInt("KOOFLOW_TEMPORAL_PORT", 7233), "Temporal frontend gRPC port")
	cmd.Flags().IntVar(&uiPort, "ui-port", envInt("KOOFLOW_UI_PORT", 8233), "Temporal UI port (-1 disables the UI)")
	registerUIWriteActions(cmd, &uiWriteActions)
	cmd.Flags().StringVar(&db, "db", envOr("KOOFLOW_TEMPORAL_DB", ""),
		"PostgreSQL URL for the Temporal server (postgres://user:password@host:port/database); empty: SQLite in --data-dir")
	cmd.Flags().IntVar(&historyShards, "history-shards", envInt("KOOFLOW_TEMPORAL_HISTORY_SHARDS", 0),
		"history shards of a new PostgreSQL cluster (0: 4, or the existing cluster's count)")
	cmd.Flags().StringVar(&metricsAddr, "metrics-addr", envOr("KOOFLOW_TEMPORAL_METRICS_ADDR", ""),
		"serve /metrics and /healthz (and /debug/pprof/ with KOOFLOW_PPROF=on) on this address, e.g. 127.0.0.1:9091; empty: none")
	return cmd
}

// serveTemporalMetrics serves `kooflow temporal`'s metrics port: the process's memory and
// runtime on /metrics, /healthz, and /debug/pprof/ when pprof is on.
func serveTemporalMetrics(addr string, pprof bool) (*httpserver.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.RuntimeHandler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"status":"ok"}`)) })
	if pprof {
		metrics.MountPprof(mux)
		slog.Warn("profiling endpoint on: keep the metrics port on loopback", "url", "/debug/pprof/", "addr", addr)
	}
	return httpserver.Start("temporal metrics", addr, mux, slog.Default())
}
