package deploy_test

import (
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
)

// The alert rules are checked by promtool in .ci/run (check config, check rules, and the
// unit tests of deploy/prometheus/*_test.yml). These tests check what promtool cannot:
// that each alert has a runbook section and unit tests for both outcomes, that the rules
// query metrics kooflow exports, and that compose wires Prometheus, its rules and
// Alertmanager together.

type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// alertRules reads every rule file prometheus.yml loads.
func alertRules(t *testing.T) []alertRule {
	t.Helper()
	var rules []alertRule
	for _, pattern := range prometheusConfig(t).RuleFiles {
		files, err := filepath.Glob(filepath.Join("prometheus", pattern))
		if err != nil || len(files) == 0 {
			t.Fatalf("rule_files %q matches nothing (%v)", pattern, err)
		}
		for _, f := range files {
			var rf struct {
				Groups []struct {
					Rules []alertRule `yaml:"rules"`
				} `yaml:"groups"`
			}
			if err := yaml.Unmarshal([]byte(readFile(t, f)), &rf); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			for _, g := range rf.Groups {
				rules = append(rules, g.Rules...)
			}
		}
	}
	if len(rules) < 12 {
		t.Fatalf("only %d alert rules", len(rules))
	}
	return rules
}

// runbookSections returns RUNBOOK.md's sections by their GitHub anchor.
func runbookSections(t *testing.T) map[string]string {
	t.Helper()
	sections := map[string]string{}
	anchor := ""
	for _, line := range strings.Split(readFile(t, "RUNBOOK.md"), "\n") {
		if strings.HasPrefix(line, "## ") {
			anchor = slug(strings.TrimPrefix(line, "## "))
			continue
		}
		if anchor != "" {
			sections[anchor] += line + "\n"
		}
	}
	return sections
}

// slug is GitHub's heading anchor: lower case, punctuation dropped, spaces as hyphens.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

// TestEveryAlertHasARunbook: each alert links to a section of deploy/RUNBOOK.md that names
// it and gives the kooflow command that fixes it, and carries a known severity.
func TestEveryAlertHasARunbook(t *testing.T) {
	sections := runbookSections(t)
	command := regexp.MustCompile("`kooflow [a-z]")
	for _, r := range alertRules(t) {
		if r.Alert == "" {
			t.Errorf("a rule without an alert name: %q (recording rules belong elsewhere)", r.Expr)
			continue
		}
		if s := r.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
		}
		if r.Annotations["summary"] == "" {
			t.Errorf("%s has no summary", r.Alert)
		}
		file, anchor, ok := strings.Cut(r.Annotations["runbook"], "#")
		if !ok || file != "deploy/RUNBOOK.md" {
			t.Errorf("%s: runbook %q, want deploy/RUNBOOK.md#<section>", r.Alert, r.Annotations["runbook"])
			continue
		}
		section, ok := sections[anchor]
		if !ok {
			t.Errorf("%s: deploy/RUNBOOK.md has no section #%s", r.Alert, anchor)
			continue
		}
		if slug(r.Alert) != anchor && !strings.Contains(section, r.Alert) {
			t.Errorf("%s: runbook section #%s does not mention the alert", r.Alert, anchor)
		}
		if !command.MatchString(section) {
			t.Errorf("%s: runbook section #%s names no kooflow command", r.Alert, anchor)
		}
	}
}

type ruleTestFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels map[string]string `yaml:"exp_labels"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestEveryAlertIsUnitTested: promtool's tests must show every alert both firing and not
// firing (quiet, pending, or resolved), and must test the rule files Prometheus loads.
func TestEveryAlertIsUnitTested(t *testing.T) {
	files, err := filepath.Glob("prometheus/*_test.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool tests in deploy/prometheus: %v", err)
	}
	loaded := map[string]bool{}
	for _, pattern := range prometheusConfig(t).RuleFiles {
		matches, _ := filepath.Glob(filepath.Join("prometheus", pattern))
		for _, m := range matches {
			loaded[m] = true
		}
	}
	firing, quiet := map[string]int{}, map[string]int{}
	for _, f := range files {
		var tf ruleTestFile
		if err := yaml.Unmarshal([]byte(readFile(t, f)), &tf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, rf := range tf.RuleFiles {
			if !loaded[filepath.Join(filepath.Dir(f), rf)] {
				t.Errorf("%s tests %s, which Prometheus does not load", f, rf)
			}
		}
		for _, test := range tf.Tests {
			for _, a := range test.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					firing[a.Alertname]++
				} else {
					quiet[a.Alertname]++
				}
			}
		}
	}
	for _, r := range alertRules(t) {
		if firing[r.Alert] == 0 {
			t.Errorf("%s is never tested firing", r.Alert)
		}
		if quiet[r.Alert] == 0 {
			t.Errorf("%s is never tested not firing", r.Alert)
		}
	}
}

// TestRulesQueryRealMetrics: every kooflow_* series an alert needs is one kooflow exports, and
// every Temporal SDK series is scoped to the kooflow worker's job (the Temporal server's own
// workers export the same names) and that job is one Prometheus scrapes.
func TestRulesQueryRealMetrics(t *testing.T) {
	defined := definedMetrics(t)
	jobs := map[string]bool{}
	for _, j := range prometheusConfig(t).ScrapeConfigs {
		jobs[j.JobName] = true
	}
	kooflowName := regexp.MustCompile(`kooflow_[a-z_]+`)
	temporalSelector := regexp.MustCompile(`temporal_[a-z_]+(\{[^}]*\})?`)
	jobMatcher := regexp.MustCompile(`job="([^"]+)"`)
	for _, r := range alertRules(t) {
		for _, m := range kooflowName.FindAllString(r.Expr, -1) {
			if !defined[metricBase(m)] {
				t.Errorf("%s queries %s, which kooflow does not export", r.Alert, m)
			}
		}
		for _, sel := range temporalSelector.FindAllStringSubmatch(r.Expr, -1) {
			job := jobMatcher.FindStringSubmatch(sel[1])
			if job == nil || job[1] != "kooflow-worker" || !jobs[job[1]] {
				t.Errorf("%s: %s is not scoped to the kooflow-worker job Prometheus scrapes", r.Alert, sel[0])
			}
			if !strings.Contains(sel[1], `task_queue="kooflow"`) {
				t.Errorf("%s: %s is not scoped to the kooflow task queue", r.Alert, sel[0])
			}
		}
	}
}

// TestPrometheusLoadsTheRulesAndAlertmanager: the rule files prometheus.yml names relative to
// itself are mounted there in the container, and alerts go to the Alertmanager service.
func TestPrometheusLoadsTheRulesAndAlertmanager(t *testing.T) {
	p := load(t)
	cfg := prometheusConfig(t)
	prom := p.Services["prometheus"]
	configFile := ""
	for _, arg := range prom.Command {
		if v, ok := strings.CutPrefix(arg, "--config.file="); ok {
			configFile = v
		}
	}
	mounts := map[string]string{} // container path → host path
	for _, v := range prom.Volumes {
		if v.Type == types.VolumeTypeBind {
			mounts[v.Target] = v.Source
		}
	}
	if src := mounts[configFile]; !strings.HasSuffix(src, filepath.Join("deploy", "prometheus", "prometheus.yml")) {
		t.Fatalf("Prometheus reads %s, where %q is mounted", configFile, src)
	}
	if len(cfg.RuleFiles) == 0 {
		t.Fatal("prometheus.yml loads no rule files")
	}
	for _, pattern := range cfg.RuleFiles {
		if path.IsAbs(pattern) {
			t.Errorf("rule_files %q is absolute: promtool check config in a checkout would not find it", pattern)
			continue
		}
		dir := path.Dir(pattern)
		container := path.Join(path.Dir(configFile), dir)
		if src := mounts[container]; !strings.HasSuffix(src, filepath.Join("deploy", "prometheus", dir)) {
			t.Errorf("rule_files %q: %s in the container is %q, not deploy/prometheus/%s", pattern, container, src, dir)
		}
	}

	var targets []string
	for _, am := range cfg.Alerting.Alertmanagers {
		for _, sc := range am.StaticConfigs {
			targets = append(targets, sc.Targets...)
		}
	}
	if len(targets) != 1 {
		t.Fatalf("alertmanagers = %v", targets)
	}
	host, amPort, _ := strings.Cut(targets[0], ":")
	am, ok := p.Services[host]
	if !ok || !strings.HasPrefix(am.Image, "prom/alertmanager:") {
		t.Fatalf("alerts go to %s, which is not the Alertmanager service", targets[0])
	}
	if amPort != "9093" || strings.Contains(strings.Join(am.Command, " "), "--web.listen-address") {
		t.Errorf("alerts go to port %s; Alertmanager listens on %v", amPort, am.Command)
	}
}

// TestAlertmanagerSendsToTheConfiguredReceiver: every route ends at a receiver whose webhook
// URL is the compose secret made from the .env variable (no URL in the file), and resolved
// alerts are sent too.
func TestAlertmanagerSendsToTheConfiguredReceiver(t *testing.T) {
	var cfg struct {
		Route struct {
			Receiver string `yaml:"receiver"`
			Routes   []struct {
				Receiver string `yaml:"receiver"`
			} `yaml:"routes"`
		} `yaml:"route"`
		Receivers []struct {
			Name           string `yaml:"name"`
			WebhookConfigs []struct {
				URL          string `yaml:"url"`
				URLFile      string `yaml:"url_file"`
				SendResolved bool   `yaml:"send_resolved"`
			} `yaml:"webhook_configs"`
		} `yaml:"receivers"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "alertmanager/alertmanager.yml")), &cfg); err != nil {
		t.Fatal(err)
	}
	p := load(t)
	am := p.Services["alertmanager"]
	secretFiles := map[string]string{} // path in the container → variable it comes from
	for _, s := range am.Secrets {
		target := s.Target
		if target == "" {
			target = s.Source
		}
		if !path.IsAbs(target) {
			target = "/run/secrets/" + target
		}
		secretFiles[target] = p.Secrets[s.Source].Environment
	}
	receivers := map[string]bool{}
	for _, r := range cfg.Receivers {
		receivers[r.Name] = true
		if len(r.WebhookConfigs) == 0 {
			t.Errorf("receiver %s sends nowhere", r.Name)
		}
		for _, w := range r.WebhookConfigs {
			if w.URL != "" {
				t.Errorf("receiver %s has its URL in the file; use url_file and the compose secret", r.Name)
			}
			if v := secretFiles[w.URLFile]; v == "" {
				t.Errorf("receiver %s reads %q, which is no secret of the alertmanager service (%v)", r.Name, w.URLFile, secretFiles)
			} else if !strings.Contains(readFile(t, filepath.Join(root, ".env.example")), "\n"+v+"=") {
				t.Errorf("receiver %s's URL comes from %s, which .env.example does not document", r.Name, v)
			}
			if !w.SendResolved {
				t.Errorf("receiver %s is not told when an alert resolves", r.Name)
			}
		}
	}
	routes := []string{cfg.Route.Receiver}
	for _, r := range cfg.Route.Routes {
		routes = append(routes, r.Receiver)
	}
	for _, r := range routes {
		if !receivers[r] {
			t.Errorf("route to %q, which is not a receiver", r)
		}
	}
	configured := false
	for _, v := range am.Volumes {
		if strings.HasSuffix(v.Source, filepath.Join("deploy", "alertmanager", "alertmanager.yml")) &&
			strings.Contains(strings.Join(am.Command, " "), "--config.file="+v.Target) {
			configured = true
		}
	}
	if !configured {
		t.Error("Alertmanager does not read deploy/alertmanager/alertmanager.yml")
	}
}
