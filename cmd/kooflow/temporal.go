package main

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/devstack"
	"github.com/kooflow/kooflow/starter"
)

func newTemporalCommand() *cobra.Command {
	var (
		dataDir      string
		temporalPort int
		uiPort       int
	)
	cmd := &cobra.Command{
		Use:   "temporal",
		Short: "Run only the embedded Temporal server and UI, for `kooflow worker` and `kooflow webhook` as separate processes",
		Long: `Runs the same embedded Temporal server as ` + "`kooflow dev`" + ` (SQLite in --data-dir, kooflow's
namespace and search attributes, the Temporal UI) and nothing else, so the production topology
— separate worker and webhook processes — can be run on one machine without Docker.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := filepath.Abs(dataDir)
			if err != nil {
				return err
			}
			stack, err := devstack.Start(cmd.Context(), devstack.Options{
				DataDir: dir, FrontendPort: temporalPort, UIPort: uiPort, SearchAttributes: starter.SearchAttributes(),
			})
			if err != nil {
				return err
			}
			defer stack.Stop()
			fmt.Fprintf(cmd.OutOrStdout(), "Temporal frontend %s (namespace %s), UI %s\n", stack.HostPort(), stack.Namespace(), stack.UIURL())
			slog.Info("embedded Temporal running", "frontend", stack.HostPort(), "ui", stack.UIURL(), "dataDir", dir)
			<-cmd.Context().Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", envOr("KOOFLOW_DATA_DIR", "./kooflow-data"), "directory for the Temporal database")
	cmd.Flags().IntVar(&temporalPort, "temporal-port", envInt("KOOFLOW_TEMPORAL_PORT", 7233), "Temporal frontend gRPC port")
	cmd.Flags().IntVar(&uiPort, "ui-port", envInt("KOOFLOW_UI_PORT", 8233), "Temporal UI port (-1 disables the UI)")
	return cmd
}
