package console

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kooflow/kooflow/registry"
	"github.com/kooflow/kooflow/smarthub"
	"github.com/kooflow/kooflow/store"
)

// MaxUpload bounds a registry file uploaded to the console: a million-row CSV is about
// 150 MB.
const MaxUpload = 512 << 20

// registry shows the subscriptions an identifier names, each with its history, and to
// admins the import form.
func (c *Console) registry(w http.ResponseWriter, r *http.Request, sess session) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	type entry struct {
		store.Match
		History []store.Event
	}
	var entries []entry
	if q != "" {
		matches, err := c.cfg.Store.FindSubscriptions(r.Context(), q, 20)
		if err != nil {
			c.storeFailed(w, r, sess, err)
			return
		}
		for _, m := range matches {
			history, err := c.cfg.Store.Events(r.Context(), m.Subscription.ID)
			if err != nil {
				c.storeFailed(w, r, sess, err)
				return
			}
			entries = append(entries, entry{Match: m, History: history})
		}
	}
	c.render(w, r, http.StatusOK, "registry", &sess, map[string]any{"Q": q, "Entries": entries, "Admin": sess.Role.may(RoleAdmin),
		"Columns": strings.Join(registry.Columns, ", ")})
}

// importRegistry imports an uploaded registry file (CSV or XLSX, all rows or none)
// through starter.Operator, audited under the admin's name. The page is written as the
// import goes, one line per phase, so a long import shows its progress without any
// script; it ends with what changed, or with the table of the rows that were refused.
func (c *Console) importRegistry(w http.ResponseWriter, r *http.Request, sess session) {
	file, header, err := r.FormFile("file")
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			c.fail(w, r, sess, http.StatusRequestEntityTooLarge, fmt.Sprintf("the file is larger than %d MB", MaxUpload>>20))
			return
		}
		c.fail(w, r, sess, http.StatusBadRequest, "choose a registry file (CSV or XLSX) to upload")
		return
	}
	defer file.Close()
	ext := strings.ToLower(filepath.Ext(header.Filename))
	if ext != ".csv" && ext != ".xlsx" {
		c.fail(w, r, sess, http.StatusBadRequest, fmt.Sprintf("%q is neither a .csv nor an .xlsx file", header.Filename))
		return
	}
	tmp, err := os.CreateTemp("", "kooflow-upload-*"+ext)
	if err != nil {
		c.fail(w, r, sess, http.StatusInternalServerError, "could not keep the upload: "+err.Error())
		return
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, file); err != nil {
		tmp.Close()
		c.fail(w, r, sess, http.StatusBadRequest, "the upload did not arrive whole: "+err.Error())
		return
	}
	if err := tmp.Close(); err != nil {
		c.fail(w, r, sess, http.StatusInternalServerError, "could not keep the upload: "+err.Error())
		return
	}

	progress := c.newProgressPage(w, header.Filename, sess)
	op := c.cfg.Operator(c.actor(r, sess))
	name := fmt.Sprintf("%s (uploaded, %d bytes)", header.Filename, header.Size)
	stats, err := op.ImportRegistry(r.Context(), name, func(ctx context.Context, st *store.Store, _ string, origin store.ImportOrigin) (store.ImportStats, error) {
		origin.Source = header.Filename // the operator's file, not the console's copy of it
		stats, err := registry.Import(ctx, st, tmp.Name(), registry.Options{Progress: progress.show, Origin: origin})
		var rows *registry.ImportError
		if errors.As(err, &rows) {
			rows.File = header.Filename // the operator's file, not the console's copy of it
		}
		return stats, err
	})
	var rows *registry.ImportError
	switch {
	case errors.As(err, &rows):
		progress.refused(rows)
	case err != nil:
		progress.failed(err)
	default:
		progress.done(stats)
	}
}

// progressPage writes an import's page as it goes: a line per phase (at most one a
// second within a phase), then the outcome.
// Its header, title and closing markup are the layout's (templates "top" and "bottom",
// and importing.html's content), so the operator keeps the console's navigation.
type progressPage struct {
	w       http.ResponseWriter
	flusher http.Flusher
	page    *template.Template
	view    view
	logger  *slog.Logger
	phase   string
	last    time.Time
}

func (c *Console) newProgressPage(w http.ResponseWriter, file string, sess session) *progressPage {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	p := &progressPage{w: w, page: c.pages["importing"], view: c.view(&sess, map[string]any{"File": file}), logger: c.cfg.Logger}
	p.flusher, _ = w.(http.Flusher)
	p.template("top")
	p.template("content")
	p.flush()
	return p
}

// template writes one of the page's templates; the status is sent already, so a failure
// can only be logged.
func (p *progressPage) template(name string) {
	if err := p.page.ExecuteTemplate(p.w, name, p.view); err != nil {
		p.logger.Error("console import page failed", "template", name, "error", err)
	}
}

func (p *progressPage) flush() {
	if p.flusher != nil {
		p.flusher.Flush()
	}
}

// show writes a progress line when the phase changes, or a second after the last one.
func (p *progressPage) show(pr registry.Progress) {
	if pr.Phase == "" || (pr.Phase == p.phase && time.Since(p.last) < time.Second) {
		return
	}
	p.phase, p.last = pr.Phase, time.Now()
	line := fmt.Sprintf("%s: %d rows", pr.Phase, pr.Rows)
	switch {
	case pr.Total > 0:
		line = fmt.Sprintf("%s: %d of %d rows", pr.Phase, pr.Rows, pr.Total)
	case pr.Fraction >= 0 && pr.Fraction <= 1: // rows still being read: how far into the file
		line = fmt.Sprintf("%s: %d rows, %.0f%% of the file", pr.Phase, pr.Rows, 100*pr.Fraction)
	}
	fmt.Fprintf(p.w, "<li>%s</li>\n", escape(line))
	p.flush()
}

func (p *progressPage) done(s store.ImportStats) {
	as := ""
	if s.ImportID != 0 {
		as = fmt.Sprintf(" as import %d (each subscription it created or changed names it in its history)", s.ImportID)
	}
	fmt.Fprintf(p.w, "</ol><p class=\"ok\">Imported%s: %d inserted, %d updated, %d unchanged.</p>", as, s.Inserted, s.Updated, s.Unchanged)
	p.end()
}

func (p *progressPage) refused(e *registry.ImportError) {
	fmt.Fprintf(p.w, "</ol><p class=\"error\">Refused: %d invalid row(s). Nothing was imported; fix the rows and upload the file again.</p>"+
		"<table><thead><tr><th>row</th><th>what is wrong</th></tr></thead><tbody>\n", max(e.Total, len(e.Rows)))
	for _, row := range e.Rows {
		fmt.Fprintf(p.w, "<tr class=\"attention\"><td>%d</td><td>%s</td></tr>\n", row.Row, escape(row.Reason))
	}
	more := ""
	if e.Total > len(e.Rows) {
		more = fmt.Sprintf("<p>… and %d more.</p>", e.Total-len(e.Rows))
	}
	fmt.Fprintf(p.w, "</tbody></table>%s", more)
	p.end()
}

func (p *progressPage) failed(err error) {
	fmt.Fprintf(p.w, "</ol><p class=\"error\">The import failed, nothing was imported: %s</p>", escape(err.Error()))
	p.end()
}

func (p *progressPage) end() {
	fmt.Fprint(p.w, "<p><a href=\"/registry\">Back to the registry</a></p>")
	p.template("bottom")
}

// escape is HTML escaping for the progress page, written without templates as it streams.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}

// replay processes a stored SmartHub push again (an unmatched one after the registry was
// fixed) through starter.Operator, audited.
func (c *Console) replay(w http.ResponseWriter, r *http.Request, sess session) {
	id := r.PostFormValue("event")
	op := c.cfg.Operator(c.actor(r, sess))
	_, acc, err := op.Replay(r.Context(), id, func(ev store.SmartHubEvent) bool { return ev.TriggerType == smarthub.TriggerPackageExpired })
	if err != nil {
		c.fail(w, r, sess, http.StatusConflict, "The push was not replayed: "+err.Error())
		return
	}
	http.Redirect(w, r, "/expiration?"+url.Values{"id": {acc.WorkflowID}, "msg": {"replayed"}}.Encode(), http.StatusSeeOther)
}
