package deploy_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/kooflow/kooflow/metrics"
	"github.com/kooflow/kooflow/store"
	"github.com/kooflow/kooflow/store/storetest"
)

type dashboardPanel struct {
	ID          int    `json:"id"`
	Type        string `json:"type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Datasource  *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr       string `json:"expr"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
	FieldConfig struct {
		Defaults struct {
			Unit       string `json:"unit"`
			Thresholds *struct {
				Mode  string `json:"mode"`
				Steps []struct {
					Color string   `json:"color"`
					Value *float64 `json:"value"`
				} `json:"steps"`
			} `json:"thresholds"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

type dashboard struct {
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query string `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []dashboardPanel `json:"panels"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal([]byte(readFile(t, "grafana/dashboards/kooflow.json")), &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	return d
}

// definedMetrics lists the metric families a kooflow process exports: a real registry with
// the store collectors on a real store holding a completed reconciliation (so the gauges
// present only then are listed too).
func definedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	st := storetest.OpenSQLite(t)
	if err := st.SaveRun(t.Context(), store.ReconciliationRun{Cycle: "2026-09", State: store.RunCompleted}); err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	m.RegisterStore(st)
	m.RegisterIntake(st)
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range families {
		out[f.GetName()] = true
	}
	return out
}

// metricBase strips a histogram's series suffix.
func metricBase(name string) string {
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		name = strings.TrimSuffix(name, suffix)
	}
	return name
}

// TestDashboardUsesRealMetrics checks that every kooflow_*, process_* and go_* series the
// Grafana dashboard queries is one a kooflow process exports, so a renamed metric cannot
// leave a panel empty.
func TestDashboardUsesRealMetrics(t *testing.T) {
	d := loadDashboard(t)
	defined := definedMetrics(t)
	name := regexp.MustCompile(`\b(?:kooflow|process|go)_[a-z_]+`)
	var exprs, temporal int
	for _, p := range d.Panels {
		for _, target := range p.Targets {
			exprs++
			if strings.Contains(target.Expr, "temporal_") {
				temporal++
			}
			for _, m := range name.FindAllString(target.Expr, -1) {
				if !defined[metricBase(m)] {
					t.Errorf("panel %q queries %s, which kooflow does not define", p.Title, m)
				}
			}
		}
	}
	if exprs < 15 || temporal < 3 {
		t.Fatalf("dashboard has %d queries, %d on Temporal SDK metrics", exprs, temporal)
	}
	if prov := readFile(t, "grafana/provisioning/dashboards/kooflow.yml"); !strings.Contains(prov, "/var/lib/grafana/dashboards") {
		t.Fatal("the dashboard provider does not point at the mounted dashboards")
	}
}

// TestDashboardPanelsAreDocumentedAndTemplated: every panel says what it shows and in which
// unit, and queries the data source chosen in the ${datasource} variable (so the dashboard
// works with any Prometheus data source name).
func TestDashboardPanelsAreDocumentedAndTemplated(t *testing.T) {
	d := loadDashboard(t)
	variable := false
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
			variable = true
		}
	}
	if !variable {
		t.Error("the dashboard has no ${datasource} variable of Prometheus data sources")
	}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if strings.TrimSpace(p.Description) == "" {
			t.Errorf("panel %q has no description", p.Title)
		}
		if p.FieldConfig.Defaults.Unit == "" {
			t.Errorf("panel %q has no unit", p.Title)
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the ${datasource} variable: %+v", p.Title, p.Datasource)
		}
		for _, target := range p.Targets {
			if target.Datasource != nil && target.Datasource.UID != "${datasource}" {
				t.Errorf("a query of panel %q names data source %q", p.Title, target.Datasource.UID)
			}
		}
	}
}

// TestDashboardStatPanelsHaveThresholdsAndUnits: a stat panel without thresholds colours by
// Grafana's default (green, red from 80), so "Stalled now" stayed green until 80 stalls.
func TestDashboardStatPanelsHaveThresholdsAndUnits(t *testing.T) {
	stats := 0
	for _, p := range loadDashboard(t).Panels {
		if p.Type != "stat" {
			continue
		}
		stats++
		if p.FieldConfig.Defaults.Unit == "" {
			t.Errorf("stat %q has no unit", p.Title)
		}
		th := p.FieldConfig.Defaults.Thresholds
		if th == nil || len(th.Steps) == 0 {
			t.Errorf("stat %q has no thresholds", p.Title)
			continue
		}
		if th.Mode != "absolute" {
			t.Errorf("stat %q: thresholds mode %q", p.Title, th.Mode)
		}
		if th.Steps[0].Value != nil {
			t.Errorf("stat %q: the first threshold step must be the base (no value)", p.Title)
		}
		if len(th.Steps) == 2 && th.Steps[0].Color == "green" && th.Steps[1].Color == "red" && th.Steps[1].Value != nil && *th.Steps[1].Value == 80 {
			t.Errorf("stat %q keeps Grafana's default thresholds (red from 80)", p.Title)
		}
	}
	if stats < 5 {
		t.Fatalf("only %d stat panels", stats)
	}
	stalled := findPanel(t, "Stalled now")
	if steps := stalled.FieldConfig.Defaults.Thresholds.Steps; len(steps) < 2 || steps[1].Value == nil || *steps[1].Value != 1 {
		t.Errorf("\"Stalled now\" must turn red at the first stall: %+v", steps)
	}
}

func findPanel(t *testing.T, title string) dashboardPanel {
	t.Helper()
	for _, p := range loadDashboard(t).Panels {
		if p.Title == title {
			return p
		}
	}
	t.Fatalf("no panel %q", title)
	return dashboardPanel{}
}

// TestDashboardQueriesReadRightAfterARestart: a time-since panel must not subtract a gauge
// that reads 0 (it showed "57 years" after a restart), and the Temporal SDK panels must be
// scoped to kooflow's worker, not summed with the Temporal server's internal workers.
func TestDashboardQueriesReadRightAfterARestart(t *testing.T) {
	d := loadDashboard(t)
	jobs := map[string]bool{}
	for _, j := range prometheusConfig(t).ScrapeConfigs {
		jobs[j.JobName] = true
	}
	timeSince := regexp.MustCompile(`time\(\)\s*-\s*(max|min)?\s*\(?\s*([a-z_]+_timestamp_seconds)(\{[^}]*\})?\s*(>\s*0)?`)
	temporalSelector := regexp.MustCompile(`temporal_[a-z_]+(\{[^}]*\})?`)
	sinces := 0
	for _, p := range d.Panels {
		for _, target := range p.Targets {
			for _, m := range timeSince.FindAllStringSubmatch(target.Expr, -1) {
				sinces++
				if m[4] == "" {
					t.Errorf("panel %q: %q counts from 0 when %s is 0; filter it with > 0", p.Title, target.Expr, m[2])
				}
			}
			for _, sel := range temporalSelector.FindAllStringSubmatch(target.Expr, -1) {
				if !strings.Contains(sel[1], `job="kooflow-worker"`) || !jobs["kooflow-worker"] {
					t.Errorf("panel %q: %s is not scoped to the kooflow-worker job", p.Title, sel[0])
				}
			}
		}
	}
	if sinces == 0 {
		t.Error("no \"since the last reconciliation\" panel")
	}
	auth := false
	for _, p := range d.Panels {
		for _, target := range p.Targets {
			auth = auth || strings.Contains(target.Expr, `outcome="auth_failed"`)
		}
	}
	if !auth {
		t.Error("no panel shows KooDrive auth failures")
	}
}
