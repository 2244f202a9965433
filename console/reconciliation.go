package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/statement"
	"github.com/kooflow/kooflow/store"
)

// Limits of the reconciliation pages: runs listed, discrepancies shown on a run's page
// (the report has them all), next schedule times shown.
const (
	runsShown          = 50
	discrepanciesShown = 500
	nextRunsShown      = 3
)

// errEnoughShown stops reading discrepancies once a page has enough.
var errEnoughShown = errors.New("enough discrepancies shown")

// diffType is one diffType's count on a run, with its meaning.
type diffType struct {
	Type, Meaning string
	Count         int
}

// diffTypes lists a run's counts per diffType: the documented ones always (0 when none),
// then any other KooDrive sent, each with its meaning in words.
func diffTypes(counts map[string]int) []diffType {
	var types []diffType
	for _, t := range []string{"1", "2", "3"} {
		types = append(types, diffType{Type: t, Meaning: statement.DiffTypeMeanings[t], Count: counts[t]})
	}
	var others []string
	for t := range counts {
		if _, documented := statement.DiffTypeMeanings[t]; !documented {
			others = append(others, t)
		}
	}
	slices.Sort(others)
	for _, t := range others {
		types = append(types, diffType{Type: t, Meaning: "not documented by KooDrive", Count: counts[t]})
	}
	return types
}

// scheduleView is the monthly schedule as the reconciliation page shows it; Failure says
// why it could not be read.
type scheduleView struct {
	Paused   bool
	Note     string
	TimeZone string
	Next     []scheduledRun
	Failure  string
}

// scheduledRun is one of the schedule's next runs and the billing cycle it reconciles.
type scheduledRun struct {
	At    time.Time
	Cycle string
}

// schedule reads the monthly schedule through the operator's door. Temporal being
// unreachable is shown on the page, not an error of the page: the runs are kooflow's.
func (c *Console) schedule(r *http.Request, sess session) scheduleView {
	d, _, err := c.cfg.Operator(c.actor(r, sess)).DescribeSchedule(r.Context())
	if err != nil {
		return scheduleView{Failure: err.Error()}
	}
	v := scheduleView{TimeZone: "UTC"}
	loc := time.UTC
	if spec := d.Schedule.Spec; spec != nil && spec.TimeZoneName != "" {
		v.TimeZone = spec.TimeZoneName
		if l, err := time.LoadLocation(spec.TimeZoneName); err == nil {
			loc = l
		}
	}
	if st := d.Schedule.State; st != nil {
		v.Paused, v.Note = st.Paused, st.Note
	}
	for i, t := range d.Info.NextActionTimes {
		if i == nextRunsShown {
			break
		}
		v.Next = append(v.Next, scheduledRun{At: t, Cycle: contract.PreviousCycle(t.In(loc))})
	}
	return v
}

// reconciliation lists every cycle's reconciliation runs, newest first, with the
// schedule and the forms that start a cycle or pause the schedule.
func (c *Console) reconciliation(w http.ResponseWriter, r *http.Request, sess session) {
	cycle := strings.TrimSpace(r.URL.Query().Get("cycle"))
	if cycle != "" {
		if _, _, err := contract.CycleBounds(cycle); err != nil {
			c.fail(w, r, sess, http.StatusBadRequest, err.Error())
			return
		}
	}
	runs, err := c.cfg.Store.Runs(r.Context(), store.RunFilter{Cycle: cycle, Limit: runsShown})
	if err != nil {
		c.storeFailed(w, r, sess, err)
		return
	}
	c.render(w, r, http.StatusOK, "reconciliation", &sess, map[string]any{
		"Runs": runs, "Cycle": cycle, "Schedule": c.schedule(r, sess), "Msg": r.URL.Query().Get("msg"), "StartedRun": r.URL.Query().Get("run"),
		"LastCycle": contract.PreviousCycle(c.cfg.Now().UTC()), "CanAdmin": sess.Role.may(RoleAdmin),
	})
}

// reconciliationRun shows one run: its state, counts per diffType, files and the
// discrepancies themselves (the first discrepanciesShown; the report has every one).
func (c *Console) reconciliationRun(w http.ResponseWriter, r *http.Request, sess session) {
	run, ok := c.runOf(w, r, sess)
	if !ok {
		return
	}
	var rows []store.Discrepancy
	more := false
	if run.BatchNo != "" {
		err := c.cfg.Store.EachDiscrepancy(r.Context(), run.BatchNo, func(d store.Discrepancy) error {
			if len(rows) == discrepanciesShown {
				more = true
				return errEnoughShown
			}
			rows = append(rows, d)
			return nil
		})
		if err != nil && !errors.Is(err, errEnoughShown) {
			c.storeFailed(w, r, sess, err)
			return
		}
	}
	total := 0
	for _, n := range run.Counts {
		total += n
	}
	c.render(w, r, http.StatusOK, "reconciliationrun", &sess, map[string]any{
		"Run": run, "Types": diffTypes(run.Counts), "Total": total, "Rows": rows, "More": more, "Shown": discrepanciesShown,
		"Meanings": statement.DiffTypeMeanings, "Workflow": c.temporalURL(run.WorkflowID),
	})
}

// runOf reads the run named by the id parameter, answering for the caller when there
// is none.
func (c *Console) runOf(w http.ResponseWriter, r *http.Request, sess session) (store.ReconciliationRun, bool) {
	raw := r.URL.Query().Get("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id < 1 {
		c.fail(w, r, sess, http.StatusBadRequest, fmt.Sprintf("run %q is not a run number (take one from the reconciliation page)", raw))
		return store.ReconciliationRun{}, false
	}
	run, err := c.cfg.Store.RunByID(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		c.fail(w, r, sess, http.StatusNotFound, fmt.Sprintf("no reconciliation run %d", id))
		return run, false
	case err != nil:
		c.storeFailed(w, r, sess, err)
		return run, false
	}
	return run, true
}

// xlsxType is the media type of the statement and the report.
const xlsxType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

// reconciliationFile downloads a run's statement or discrepancy report. The path is the
// one the worker recorded for the run, never one from the request; the console must run
// where the worker's data directory is (kooflow dev, or the statements volume mounted).
func (c *Console) reconciliationFile(w http.ResponseWriter, r *http.Request, sess session) {
	run, ok := c.runOf(w, r, sess)
	if !ok {
		return
	}
	kind := r.URL.Query().Get("file")
	var path string
	switch kind {
	case "statement":
		path = run.StatementPath
	case "report":
		path = run.ReportPath
	default:
		c.fail(w, r, sess, http.StatusBadRequest, fmt.Sprintf("file %q is not statement or report", kind))
		return
	}
	if path == "" {
		c.fail(w, r, sess, http.StatusNotFound, fmt.Sprintf("run %d of %s has no %s yet (it is %s)", run.ID, run.Cycle, kind, run.State))
		return
	}
	f, err := os.Open(path)
	if err != nil {
		c.fail(w, r, sess, http.StatusNotFound, fmt.Sprintf("The %s of run %d is not readable here: %v. The worker wrote it at that path; "+
			"the console must run where the worker's data directory is (in compose, the kooflow-statements volume).", kind, run.ID, err))
		return
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		c.fail(w, r, sess, http.StatusNotFound, fmt.Sprintf("the %s of run %d: %v", kind, run.ID, err))
		return
	}
	w.Header().Set("Content-Type", xlsxType)
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", run.Cycle+"-"+kind+"-"+filepath.Base(path)))
	http.ServeContent(w, r, "", info.ModTime(), f)
}

// readCycle reads the cycle to reconcile: a billing month that is over.
func (c *Console) readCycle(raw string) (string, error) {
	cycle := strings.TrimSpace(raw)
	if cycle == "" {
		return "", errors.New("say which billing cycle to reconcile (yyyy-MM)")
	}
	return cycle, contract.CheckPastCycle(cycle, c.cfg.Now().UTC())
}

// confirmReconcile asks before a cycle is reconciled (again, with force).
func (c *Console) confirmReconcile(w http.ResponseWriter, r *http.Request, sess session) {
	cycle, err := c.readCycle(r.URL.Query().Get("cycle"))
	if err != nil {
		c.fail(w, r, sess, http.StatusBadRequest, err.Error())
		return
	}
	runs, err := c.cfg.Store.Runs(r.Context(), store.RunFilter{Cycle: cycle, Limit: 1})
	if err != nil {
		c.storeFailed(w, r, sess, err)
		return
	}
	c.render(w, r, http.StatusOK, "reconcileconfirm", &sess, map[string]any{
		"Cycle": cycle, "Force": r.URL.Query().Get("force") == "on", "Runs": runs,
	})
}

// reconcile starts the cycle's reconciliation through starter.Operator.Reconcile, as
// `kooflow reconcile` does: a completed cycle only with force, a running one never twice.
func (c *Console) reconcile(w http.ResponseWriter, r *http.Request, sess session) {
	cycle, err := c.readCycle(r.PostFormValue("cycle"))
	if err != nil {
		c.fail(w, r, sess, http.StatusBadRequest, err.Error())
		return
	}
	force := r.PostFormValue("force") == "on"
	run, err := c.cfg.Operator(c.actor(r, sess)).Reconcile(r.Context(), contract.ReconciliationInput{Cycle: cycle}, force)
	var running *starter.ReconciliationRunningError
	switch {
	case errors.As(err, &running):
		c.fail(w, r, sess, http.StatusConflict, fmt.Sprintf("%s is already running (run %s, started %s): not started twice.",
			running.WorkflowID, running.RunID, running.Started.UTC().Format(time.RFC3339)))
		return
	case err != nil:
		c.fail(w, r, sess, http.StatusConflict, "The reconciliation was not started: "+err.Error())
		return
	}
	http.Redirect(w, r, "/reconciliation?"+url.Values{"cycle": {cycle}, "msg": {"started"}, "run": {run.GetRunID()}}.Encode(), http.StatusSeeOther)
}

// confirmSchedule asks before the monthly schedule is paused or unpaused; the note is
// required, for whoever finds it paused.
func (c *Console) confirmSchedule(pause bool) handlerWithSession {
	return func(w http.ResponseWriter, r *http.Request, sess session) {
		note := strings.TrimSpace(r.URL.Query().Get("note"))
		if note == "" {
			c.fail(w, r, sess, http.StatusBadRequest, "Say why in the note: whoever finds the schedule "+pausedWord(pause)+" must learn why.")
			return
		}
		c.render(w, r, http.StatusOK, "scheduleconfirm", &sess, map[string]any{"Pause": pause, "Note": note, "Schedule": starter.ScheduleID})
	}
}

// setSchedule pauses or unpauses the monthly schedule through
// starter.Operator.SetSchedulePaused, as `kooflow schedule pause|unpause --note` does.
func (c *Console) setSchedule(pause bool) handlerWithSession {
	return func(w http.ResponseWriter, r *http.Request, sess session) {
		note := strings.TrimSpace(r.PostFormValue("note"))
		if err := c.cfg.Operator(c.actor(r, sess)).SetSchedulePaused(r.Context(), pause, note); err != nil {
			c.fail(w, r, sess, http.StatusConflict, "The schedule was not "+pausedWord(pause)+": "+err.Error())
			return
		}
		http.Redirect(w, r, "/reconciliation?"+url.Values{"msg": {pausedWord(pause)}}.Encode(), http.StatusSeeOther)
	}
}

func pausedWord(pause bool) string {
	if pause {
		return "paused"
	}
	return "unpaused"
}
