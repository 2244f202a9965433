package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/statement"
	"github.com/kooflow/kooflow/store"
)

// documentedDiffTypes are the diffType values KooDrive documents, each a column of
// `reconcile list` and a key of its JSON counts.
var documentedDiffTypes = []string{"1", "2", "3"}

// newReconcileListCommand is kooflow reconcile list: every run of every cycle's
// reconciliation, newest first, with its files.
func newReconcileListCommand() *cobra.Command {
	var (
		sf     storeFlags
		f      store.RunFilter
		output string
	)
	cmd := &cobra.Command{
		Use:   "list [--cycle yyyy-MM] [--limit N] [-o json]",
		Short: "List every cycle's reconciliation runs, newest first: state, times, batch, rows, discrepancies per diffType, files",
		Long: `Every run of every billing cycle's reconciliation kooflow recorded, newest first (by when it
started): the cycle, its state, when it started and finished, KooDrive's batch number, the
statement's rows, the discrepancies per diffType (1: only KooDrive has the subscription,
2: only the carrier's statement has it, 3: the benefits differ; counted once the run has
fetched them) and the paths of its statement and discrepancy report. A cycle reconciled
again (--force) has a run, and files, of its own for each time. Runs recorded by releases
before this one keep the paths they had.`,
		Example: `  kooflow reconcile list
  kooflow reconcile list --cycle 2026-10 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkChoice("-o", output, recordFormats); err != nil {
				return err
			}
			if f.Limit < 1 {
				return fmt.Errorf("--limit %d: give at least 1", f.Limit)
			}
			st, err := sf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			runs, err := st.Runs(cmd.Context(), f)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), runsJSON(runs))
			}
			printRuns(cmd.OutOrStdout(), runs)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&f.Cycle, "cycle", "", "only this billing cycle's runs (yyyy-MM)")
	cmd.Flags().IntVar(&f.Limit, "limit", 50, "at most this many runs, newest first")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

// reconcileRunJSON is one reconciliation run for scripts and the console.
type reconcileRunJSON struct {
	Cycle      string `json:"cycle"`
	WorkflowID string `json:"workflowId"`
	// RunID is Temporal's run ID; empty for runs recorded by earlier releases.
	RunID      string     `json:"runId"`
	State      string     `json:"state"`
	StartedAt  time.Time  `json:"startedAt"`
	FinishedAt *time.Time `json:"finishedAt"`
	UpdatedAt  time.Time  `json:"updatedAt"`
	BatchNo    string     `json:"batchNo"`
	// StatementRows and StatementSHA256 describe the statement; 0 and "" before it is built.
	StatementRows   int    `json:"statementRows"`
	StatementSHA256 string `json:"statementSha256"`
	StatementPath   string `json:"statementPath"`
	ReportPath      string `json:"reportPath"`
	// Discrepancies counts per diffType ("1", "2" and "3" always, others as KooDrive
	// sent them); null until the run has fetched them.
	Discrepancies      map[string]int `json:"discrepancies"`
	DiscrepanciesTotal *int           `json:"discrepanciesTotal"`
	Error              string         `json:"error"`
}

func runsJSON(runs []store.ReconciliationRun) []reconcileRunJSON {
	out := make([]reconcileRunJSON, 0, len(runs))
	for _, r := range runs {
		j := reconcileRunJSON{Cycle: r.Cycle, WorkflowID: r.WorkflowID, RunID: r.RunID, State: r.State, StartedAt: r.CreatedAt,
			UpdatedAt: r.UpdatedAt, BatchNo: r.BatchNo, StatementRows: r.StatementRows, StatementSHA256: r.StatementSHA256,
			StatementPath: r.StatementPath, ReportPath: r.ReportPath, Error: r.Error}
		if !r.FinishedAt.IsZero() {
			finished := r.FinishedAt
			j.FinishedAt = &finished
		}
		if r.Counts != nil {
			j.Discrepancies = map[string]int{}
			total := 0
			for _, t := range documentedDiffTypes {
				j.Discrepancies[t] = 0
			}
			for t, n := range r.Counts {
				j.Discrepancies[t] = n
				total += n
			}
			j.DiscrepanciesTotal = &total
		}
		out = append(out, j)
	}
	return out
}

// printRuns writes reconciliation runs as a table: a column per documented diffType, and
// one for the others when a run has any.
func printRuns(out io.Writer, runs []store.ReconciliationRun) {
	if len(runs) == 0 {
		fmt.Fprintln(out, "no reconciliation runs (start one with `kooflow reconcile --cycle yyyy-MM`)")
		return
	}
	var undocumented []string
	for _, r := range runs {
		for t := range r.Counts {
			if _, documented := statement.DiffTypeMeanings[t]; !documented {
				undocumented = append(undocumented, t)
			}
		}
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	header := "CYCLE\tSTATE\tSTARTED\tFINISHED\tBATCH\tROWS\tTYPE 1\tTYPE 2\tTYPE 3"
	if len(undocumented) > 0 {
		header += "\tOTHER"
	}
	fmt.Fprintln(tw, header+"\tSTATEMENT\tREPORT")
	for _, r := range runs {
		finished, rows := "-", "-"
		if !r.FinishedAt.IsZero() {
			finished = formatWhen(r.FinishedAt)
		}
		if r.StatementPath != "" {
			rows = strconv.Itoa(r.StatementRows)
		}
		cells := []string{r.Cycle, r.State, formatWhen(r.CreatedAt), finished, dash(r.BatchNo), rows}
		for _, t := range documentedDiffTypes {
			cells = append(cells, count(r.Counts, func(diffType string) bool { return diffType == t }))
		}
		if len(undocumented) > 0 {
			cells = append(cells, count(r.Counts, func(diffType string) bool { _, documented := statement.DiffTypeMeanings[diffType]; return !documented }))
		}
		cells = append(cells, dash(r.StatementPath), dash(r.ReportPath))
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
	if len(undocumented) > 0 {
		slices.Sort(undocumented)
		fmt.Fprintf(out, "OTHER counts diffType values KooDrive does not document (%s); `kooflow reconcile show --cycle yyyy-MM` lists them\n",
			strings.Join(slices.Compact(undocumented), ", "))
	}
}

// count shows how many of a run's discrepancies have a diffType that is, or - before the
// run fetched them.
func count(counts map[string]int, is func(diffType string) bool) string {
	if counts == nil {
		return "-"
	}
	n := 0
	for t, c := range counts {
		if is(t) {
			n += c
		}
	}
	return strconv.Itoa(n)
}
