// Command kooflow is the single kooflow binary: `dev` runs everything in one process,
// `worker`, `webhook` and `console` run the production processes, and the rest are
// operator tools.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "kooflow:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "kooflow",
		Short: "Durable KooDrive package expirations and carrier reconciliation on Temporal",
		Long: `kooflow receives package expirations from KooGallery (and SmartHub), runs one durable
Temporal workflow per expiry that freezes the subscription and tells KooDrive the user entered
the reservation period, and gives operators the tools to see and steer every expiry.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			slog.SetDefault(newLogger(os.Stderr))
		},
	}
	root.AddCommand(newDevCommand(), newWorkerCommand(), newWebhookCommand(), newConsoleCommand(), newRegistryCommand(),
		newExpireCommand(), newRetryCommand(), newStatusCommand(), newSendCommand(), newTemporalCommand(),
		newReconcileCommand(), newScheduleCommand(), newReplayCommand(), newHealthcheckCommand(), newDeliveriesCommand(), newAuditCommand())
	root.AddCommand(newCodecServerCommand(), newDocsCommand())
	organiseHelp(root)
	return root
}

// newLogger logs JSON when w is not a terminal (files, collectors) and text when it is.
func newLogger(w *os.File) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("KOOFLOW_LOG_LEVEL") == "debug" {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	if fi, err := w.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
