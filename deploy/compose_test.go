package deploy_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/kooflow/kooflow/metrics"
)

const root = ".."

// load reads docker-compose.yml the way `docker compose` does, with .env.example as .env.
func load(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithEnvFiles(filepath.Join(root, ".env.example")), cli.WithDotEnv,
		cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	project, err := cli.ProjectFromOptions(context.Background(), opts)
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return project
}

func TestComposeServices(t *testing.T) {
	p := load(t)
	want := []string{"grafana", "kooflow-webhook", "kooflow-worker", "postgresql", "prometheus", "temporal", "temporal-schema", "temporal-setup", "temporal-ui"}
	got := p.ServiceNames()
	sort.Strings(got)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("services = %v, want %v", got, want)
	}
	for _, s := range p.Services {
		if strings.Contains(s.Image, "auto-setup") {
			t.Errorf("%s uses the deprecated auto-setup image", s.Name)
		}
	}
	if p.Services["temporal-schema"].Image == "" || !strings.HasPrefix(p.Services["temporal-schema"].Image, "temporalio/admin-tools:") {
		t.Error("the Temporal schema is not set up with the admin-tools image")
	}
}

var pinned = regexp.MustCompile(`^[a-z0-9./_-]+(:[A-Za-z0-9._-]+|@sha256:[a-f0-9]{64})$`)

func TestImagesArePinned(t *testing.T) {
	for _, s := range load(t).Services {
		if s.Build != nil {
			continue // kooflow itself, built from the Dockerfile
		}
		if !pinned.MatchString(s.Image) || strings.HasSuffix(s.Image, ":latest") || !strings.ContainsAny(strings.SplitN(s.Image, ":", 2)[1], "0123456789") {
			t.Errorf("%s: image %q is not pinned to a version", s.Name, s.Image)
		}
	}
}

func TestKooflowServicesHaveTheirConfiguration(t *testing.T) {
	p := load(t)
	required := map[string][]string{
		"kooflow-worker":  {"TEMPORAL_ADDRESS", "KOOFLOW_DB", "KOODRIVE_BASE_URL", "KOODRIVE_ACCESS_TOKEN", "KOODRIVE_USER_ID", "KOOFLOW_METRICS_ADDR"},
		"kooflow-webhook": {"TEMPORAL_ADDRESS", "KOOFLOW_DB", "KOOGALLERY_KEY", "SMARTHUB_API_KEY", "KOOFLOW_WEBHOOK_ADDR"},
	}
	for name, vars := range required {
		s := p.Services[name]
		for _, v := range vars {
			if val := s.Environment[v]; val == nil || *val == "" {
				t.Errorf("%s: %s is not set", name, v)
			}
		}
		if !strings.HasPrefix(*s.Environment["KOOFLOW_DB"], "postgres://") {
			t.Errorf("%s does not use PostgreSQL for the kooflow store", name)
		}
		if s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 {
			t.Errorf("%s has no health check", name)
		}
		if s.DependsOn["temporal-setup"].Condition != types.ServiceConditionCompletedSuccessfully ||
			s.DependsOn["postgresql"].Condition != types.ServiceConditionHealthy {
			t.Errorf("%s does not wait for PostgreSQL and the namespace setup: %+v", name, s.DependsOn)
		}
		if want := []string{strings.TrimPrefix(name, "kooflow-")}; !reflect.DeepEqual([]string(s.Command), want) {
			t.Errorf("%s runs %v, want %v", name, s.Command, want)
		}
	}
}

func TestEveryVariableIsInEnvExample(t *testing.T) {
	compose, _ := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	example, _ := os.ReadFile(filepath.Join(root, ".env.example"))
	defined := map[string]bool{}
	for _, line := range strings.Split(string(example), "\n") {
		if name, _, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			defined[name] = true
		}
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Z_]+)(:-[^}]*)?\}`).FindAllStringSubmatch(string(compose), -1) {
		if m[2] == "" && !defined[m[1]] {
			t.Errorf("${%s} has no default and is missing from .env.example", m[1])
		}
	}
}

func TestPublishedPortsDoNotCollide(t *testing.T) {
	seen := map[string]string{}
	for _, s := range load(t).Services {
		for _, port := range s.Ports {
			if port.Published == "" {
				continue
			}
			if other, dup := seen[port.Published]; dup {
				t.Errorf("host port %s is published by %s and %s", port.Published, other, s.Name)
			}
			seen[port.Published] = s.Name
		}
	}
	if len(seen) < 4 {
		t.Fatalf("only %d published ports: %v", len(seen), seen)
	}
}

func TestPrometheusTargetsAreServices(t *testing.T) {
	p := load(t)
	raw, err := os.ReadFile("prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	jobs := map[string]bool{}
	for _, job := range cfg.ScrapeConfigs {
		jobs[job.JobName] = true
		for _, sc := range job.StaticConfigs {
			for _, target := range sc.Targets {
				host, port, _ := strings.Cut(target, ":")
				svc, ok := p.Services[host]
				if !ok {
					t.Errorf("job %s scrapes %s, which is not a service", job.JobName, target)
					continue
				}
				if svc.Name == "kooflow-worker" && *svc.Environment["KOOFLOW_METRICS_ADDR"] != ":"+port {
					t.Errorf("job %s scrapes port %s, the worker serves metrics on %s", job.JobName, port, *svc.Environment["KOOFLOW_METRICS_ADDR"])
				}
				if svc.Name == "temporal" && !strings.HasSuffix(*svc.Environment["PROMETHEUS_ENDPOINT"], ":"+port) {
					t.Errorf("job %s scrapes port %s, Temporal exports on %s", job.JobName, port, *svc.Environment["PROMETHEUS_ENDPOINT"])
				}
			}
		}
	}
	for _, want := range []string{"kooflow-worker", "kooflow-webhook", "temporal"} {
		if !jobs[want] {
			t.Errorf("Prometheus does not scrape %s", want)
		}
	}
}

// TestDashboardUsesRealMetrics checks that every kooflow_* series the Grafana dashboard
// queries is one kooflow defines, so a renamed metric cannot leave a panel empty.
func TestDashboardUsesRealMetrics(t *testing.T) {
	raw, err := os.ReadFile("grafana/dashboards/kooflow.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	defined := definedMetrics()
	name := regexp.MustCompile(`kooflow_[a-z_]+`)
	var exprs, temporal int
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			exprs++
			if strings.Contains(target.Expr, "temporal_") {
				temporal++
			}
			for _, m := range name.FindAllString(target.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_count"), "_sum")
				if !defined[base] {
					t.Errorf("panel %q queries %s, which kooflow does not define", p.Title, m)
				}
			}
		}
	}
	if exprs < 15 || temporal < 3 {
		t.Fatalf("dashboard has %d queries, %d on Temporal SDK metrics", exprs, temporal)
	}
	prov, _ := os.ReadFile("grafana/provisioning/dashboards/kooflow.yml")
	if !strings.Contains(string(prov), "/var/lib/grafana/dashboards") {
		t.Fatal("the dashboard provider does not point at the mounted dashboards")
	}
}

// definedMetrics lists the names of kooflow's metrics, from the collectors themselves.
func definedMetrics() map[string]bool {
	m := metrics.New()
	out := map[string]bool{"kooflow_expirations": true, "kooflow_store_up": true}
	v := reflect.ValueOf(m).Elem()
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	for i := 0; i < v.NumField(); i++ {
		c, ok := v.Field(i).Interface().(prometheus.Collector)
		if !ok || v.Field(i).Type() == reflect.TypeOf(m.Registry) {
			continue
		}
		ch := make(chan *prometheus.Desc, 10)
		c.Describe(ch)
		close(ch)
		for d := range ch {
			if match := fq.FindStringSubmatch(d.String()); match != nil {
				out[match[1]] = true
			}
		}
	}
	return out
}
