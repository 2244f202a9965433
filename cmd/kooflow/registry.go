package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/registry"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
)

// newRegistryCommand is kooflow registry: the subscription registry's import.
func newRegistryCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "registry", Short: "Manage the subscription registry"}
	var sf storeFlags
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Import subscriptions from a CSV or XLSX file (all rows or none)",
		Long: `Reads a CSV or XLSX file whose first row is a header (case-insensitive) with the columns
` + strings.Join(registry.Columns, ", ") + `.
A row is identified by instanceId, or by gIccid+packageCode, or by orderId; carrierUserId and
packageId are required. Existing subscriptions are updated (history "updated", naming the
changed fields), new ones inserted (history "imported"), rows equal to the registry left alone.
The import is numbered and recorded with who ran it and the file; each subscription's history
(kooflow status) names the import that created or changed it.

The file is read twice, streaming: one pass checks every row on its own and lists every bad
one; the other stages the rows and refuses the file if rows repeat a subscription or clash
with the registry (an instanceId whose gIccid or orderId belongs to another subscription),
listing every such row. Only then is it applied, in one transaction. For a CSV file the two
passes run at the same time, and nothing commits unless every row is sound. Into an empty
registry the rows are inserted directly; if two repeat an identity the registry's unique
indexes refuse them, nothing is kept, and a third pass stages and checks the rows to list
every such row. A refused file writes nothing. On a
terminal, a progress line shows rows/s and the time left.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := sf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			var opts registry.Options
			if f, ok := cmd.ErrOrStderr().(*os.File); ok && isTerminal(f) {
				p := newProgressLine(f)
				defer p.done()
				opts.Progress = p.show
			}
			started := time.Now()
			op := &starter.Operator{Store: st, Actor: starter.CLIActor()}
			stats, err := op.ImportRegistry(cmd.Context(), args[0], func(ctx context.Context, st *store.Store, path string, origin store.ImportOrigin) (store.ImportStats, error) {
				// The history names the file long after: by its whole path, not as typed.
				if abs, err := filepath.Abs(path); err == nil {
					origin.Source = abs
				}
				opts.Origin = origin
				return registry.Import(ctx, st, path, opts)
			})
			if opts.Progress != nil {
				opts.Progress(registry.Progress{})
			}
			if err != nil {
				return err
			}
			as := ""
			if stats.ImportID != 0 {
				as = fmt.Sprintf(" as import %d", stats.ImportID)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %s%s: %d inserted, %d updated, %d unchanged (%.1f s)\n",
				args[0], as, stats.Inserted, stats.Updated, stats.Unchanged, time.Since(started).Seconds())
			return nil
		},
	}
	sf.register(imp)
	sf.registerCreate(imp)
	cmd.AddCommand(imp)
	return cmd
}

// isTerminal reports whether f is a terminal (a character device).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressLine redraws one status line of a long import: phase, rows, rows/s, time left.
type progressLine struct {
	w          io.Writer
	phase      string
	phaseStart time.Time
	lastDraw   time.Time
	drawn      bool
}

func newProgressLine(w io.Writer) *progressLine { return &progressLine{w: w} }

// show draws p, at most five times a second; an empty phase clears the line.
func (l *progressLine) show(p registry.Progress) {
	now := time.Now()
	if p.Phase == "" {
		l.done()
		return
	}
	if p.Phase != l.phase {
		l.phase, l.phaseStart = p.Phase, now
	} else if now.Sub(l.lastDraw) < 200*time.Millisecond {
		return
	}
	l.lastDraw = now
	elapsed := now.Sub(l.phaseStart).Seconds()
	line := fmt.Sprintf("%-10s %10d rows", p.Phase, p.Rows)
	if p.Total > 0 {
		line = fmt.Sprintf("%-10s %10d/%d rows", p.Phase, p.Rows, p.Total)
	}
	if elapsed > 0.5 && p.Rows > 0 {
		line += fmt.Sprintf("  %8.0f rows/s", float64(p.Rows)/elapsed)
	}
	if f := p.Fraction; elapsed > 0.5 && f > 0 && f < 1 {
		line += fmt.Sprintf("  ETA %s", time.Duration(elapsed*(1-f)/f*float64(time.Second)).Round(time.Second))
	}
	fmt.Fprintf(l.w, "\r\033[K%s", line)
	l.drawn = true
}

// done ends the progress line so later output starts on a fresh line.
func (l *progressLine) done() {
	if l.drawn {
		fmt.Fprint(l.w, "\r\033[K")
		l.drawn = false
	}
}
