package deploy_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/jackc/pgx/v5"
	"go.temporal.io/server/common/dynamicconfig"
	"gopkg.in/yaml.v3"

	"github.com/kooflow/kooflow/koodrive"
	"github.com/kooflow/kooflow/wiring"
)

const root = ".."

// load reads docker-compose.yml the way `docker compose` does, with .env.example as .env.
func load(t *testing.T) *types.Project {
	t.Helper()
	return loadWithEnv(t, filepath.Join(root, ".env.example"))
}

// loadWithEnv reads docker-compose.yml with envFile as its .env.
func loadWithEnv(t *testing.T, envFile string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithEnvFiles(envFile), cli.WithDotEnv,
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

func readFile(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestComposeServices(t *testing.T) {
	p := load(t)
	want := []string{"alertmanager", "grafana", "kooflow-codec", "kooflow-console", "kooflow-webhook", "kooflow-worker", "postgresql", "prometheus", "temporal", "temporal-schema", "temporal-setup", "temporal-ui"}
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

// goModVersion returns the version go.mod requires of module.
func goModVersion(t *testing.T, module string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(module) + `\s+v(\S+)`).FindStringSubmatch(readFile(t, filepath.Join(root, "go.mod")))
	if m == nil {
		t.Fatalf("go.mod does not require %s", module)
	}
	return m[1]
}

// TestTemporalVersionIsTheTestedOne: the Temporal server compose runs must be the one every
// test and benchmark embeds (go.mod), and the UI the embedded UI server's version; the tags
// are written once in docker-compose.yml (x-temporal-images).
func TestTemporalVersionIsTheTestedOne(t *testing.T) {
	server := goModVersion(t, "go.temporal.io/server")
	ui := goModVersion(t, "github.com/temporalio/ui-server/v2")
	want := map[string]string{
		"temporal":        "temporalio/server:" + server,
		"temporal-schema": "temporalio/admin-tools:" + server,
		"temporal-setup":  "temporalio/admin-tools:" + server,
		"temporal-ui":     "temporalio/ui:" + ui,
	}
	p := load(t)
	for name, image := range want {
		if got := p.Services[name].Image; got != image {
			t.Errorf("%s runs %s; the tests embed %s", name, got, image)
		}
	}
	raw := readFile(t, filepath.Join(root, "docker-compose.yml"))
	for _, repo := range []string{"temporalio/server:", "temporalio/admin-tools:", "temporalio/ui:"} {
		if n := strings.Count(raw, repo); n != 1 {
			t.Errorf("docker-compose.yml names %s %d times; write each tag once (x-temporal-images)", repo, n)
		}
	}
}

func TestKooflowServicesHaveTheirConfiguration(t *testing.T) {
	p := load(t)
	required := map[string][]string{
		"kooflow-worker":  {"TEMPORAL_ADDRESS", "KOOFLOW_DB", "PGUSER", "PGPASSWORD", "KOODRIVE_BASE_URL", "KOODRIVE_USER_ID", "KOODRIVE_AUTH", "KOODRIVE_APP_SECRET_FILE", "KOOFLOW_METRICS_ADDR"},
		"kooflow-webhook": {"TEMPORAL_ADDRESS", "KOOFLOW_DB", "PGUSER", "PGPASSWORD", "KOOGALLERY_KEY", "SMARTHUB_API_KEY", "KOOFLOW_WEBHOOK_ADDR", "KOOFLOW_METRICS_ADDR"},
		"kooflow-console": {"TEMPORAL_ADDRESS", "KOOFLOW_DB", "PGUSER", "PGPASSWORD", "KOOFLOW_CONSOLE_ADDR", "KOOFLOW_CONSOLE_URL",
			"KOOFLOW_CONSOLE_SESSION_KEY_FILE", "KOOFLOW_CONSOLE_OIDC_CLIENT_SECRET_FILE", "KOOFLOW_CONSOLE_OIDC_ROLE_CLAIM", "KOOFLOW_TEMPORAL_UI_URL"},
	}
	for name, vars := range required {
		s := p.Services[name]
		for _, v := range vars {
			if val := s.Environment[v]; val == nil || *val == "" {
				t.Errorf("%s: %s is not set", name, v)
			}
		}
		// The processes listen on 127.0.0.1 unless told otherwise; in a container, Prometheus
		// and the published intake port reach them only on every interface.
		for _, v := range []string{"KOOFLOW_WEBHOOK_ADDR", "KOOFLOW_METRICS_ADDR", "KOOFLOW_CONSOLE_ADDR"} {
			if val := s.Environment[v]; val != nil && *val != "" {
				if host, _, err := net.SplitHostPort(*val); err != nil || (host != "" && host != "0.0.0.0") {
					t.Errorf("%s: %s=%q, want every interface (e.g. \":9090\") inside the container", name, v, *val)
				}
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

// TestWorkerSignsWithTheAppSecretFile: the worker calls KooDrive with the app signature,
// whose credentials do not expire (a static access token dies after 20 idle minutes): it
// gets KOODRIVE_AUTH=app, the app ID from .env and the app secret as a secret file readable
// by the image's non-root user alone, with no access token or secret value in its
// environment (where `docker inspect` shows it); kooflow signs with that file's secret, and
// refuses to start with .env.example's empty placeholders, which name what to fill in.
func TestWorkerSignsWithTheAppSecretFile(t *testing.T) {
	const secret = "s3cret-app-secret"
	example := readFile(t, filepath.Join(root, ".env.example"))
	defined := map[string]bool{}
	for _, line := range strings.Split(example, "\n") {
		if name, _, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			defined[name] = true
		}
	}
	for _, name := range []string{"KOODRIVE_BASE_URL", "KOODRIVE_USER_ID", "KOODRIVE_APP_ID", "KOODRIVE_APP_SECRET"} {
		if !defined[name] {
			t.Errorf(".env.example does not name %s, which the operator must fill in", name)
		}
	}
	if defined["KOODRIVE_ACCESS_TOKEN"] {
		t.Error(".env.example sets KOODRIVE_ACCESS_TOKEN, the credential that expires; it is only a documented fallback")
	}

	user, _ := dockerfileFinalStage(t)
	uid, gid, _ := strings.Cut(user, ":")
	p := withEnv(t, map[string]*string{"KOODRIVE_APP_ID": ptr("app-1"), "KOODRIVE_APP_SECRET": ptr(secret)})
	worker := p.Services["kooflow-worker"]
	if got := worker.Environment["KOODRIVE_AUTH"]; got == nil || *got != "app" {
		t.Errorf("kooflow-worker: KOODRIVE_AUTH = %v, want app", got)
	}
	if got := worker.Environment["KOODRIVE_APP_ID"]; got == nil || *got != "app-1" {
		t.Errorf("kooflow-worker: KOODRIVE_APP_ID = %v, want the value of .env", got)
	}
	for _, v := range []string{"KOODRIVE_ACCESS_TOKEN", "KOODRIVE_APP_SECRET"} {
		if _, set := worker.Environment[v]; set {
			t.Errorf("kooflow-worker sets %s in its environment; the secret comes from a secret file", v)
		}
	}
	for name, v := range worker.Environment {
		if v != nil && strings.Contains(*v, secret) {
			t.Errorf("kooflow-worker: %s carries the app secret", name)
		}
	}
	file := worker.Environment["KOODRIVE_APP_SECRET_FILE"]
	if file == nil {
		t.Fatal("kooflow-worker: KOODRIVE_APP_SECRET_FILE is not set")
	}
	source := ""
	for _, s := range worker.Secrets {
		if path, _, _ := secretFile(p, "kooflow-worker", s.Source); path == *file {
			source = s.Source
		}
	}
	if source == "" {
		t.Fatalf("kooflow-worker: KOODRIVE_APP_SECRET_FILE=%s is not where a secret is mounted", *file)
	}
	switch from := p.Secrets[source]; {
	case from.Environment != "":
		if !defined[from.Environment] {
			t.Errorf("secret %s comes from %s, which .env.example does not name", source, from.Environment)
		}
		if _, cfg, _ := secretFile(p, "kooflow-worker", source); cfg.Mode == nil || os.FileMode(*cfg.Mode)&0o077 != 0 || cfg.UID != uid || cfg.GID != gid {
			t.Errorf("the app secret is mounted with uid %q gid %q mode %v; want %s:%s and no access for others", cfg.UID, cfg.GID, cfg.Mode, uid, gid)
		}
	case from.File == "":
		t.Fatalf("secret %s comes from neither .env nor a file", source)
	}

	kd, err := koodrive.ConfigFromEnv(materialise(t, p, "kooflow-worker", source))
	if err != nil {
		t.Fatalf("kooflow refuses the compose KooDrive settings: %v", err)
	}
	sign := func(s koodrive.Signer) string {
		req := httptest.NewRequest(http.MethodGet, "https://kd/koodrive/ose/v1/carrier/service/status", nil)
		req.Header.Set("X-Date", "20260101T000000Z")
		req.Header.Set("X-User-Id", kd.UserID)
		if err := s.Sign(req, nil); err != nil {
			t.Fatal(err)
		}
		return req.Header.Get("Authorization")
	}
	if got, want := sign(kd.Auth), sign(koodrive.NewAppSignature("app-1", secret)); got != want {
		t.Errorf("the worker signs %q, want %q (app-1 with the secret of .env)", got, want)
	}

	p = load(t)
	if _, err := koodrive.ConfigFromEnv(materialise(t, p, "kooflow-worker", source)); err == nil {
		t.Error("the worker starts with .env.example's KooDrive app placeholders")
	} else if !strings.Contains(err.Error(), "KOODRIVE_APP_ID") {
		t.Errorf("with .env.example's placeholders the worker's error %q does not name KOODRIVE_APP_ID", err)
	}

	// The fallback is documented where the operator would switch.
	compose := readFile(t, filepath.Join(root, "docker-compose.yml"))
	for _, want := range []string{"# KOODRIVE_AUTH: token", "# KOODRIVE_ACCESS_TOKEN_FILE: /run/secrets/"} {
		if !strings.Contains(compose, want) {
			t.Errorf("docker-compose.yml does not document the token fallback (%q)", want)
		}
	}
	if !strings.Contains(example, "KOODRIVE_ACCESS_TOKEN_FILE") {
		t.Error(".env.example does not say how to fall back to a token file")
	}
}

// TestDatabasePasswordNeedsNoEscaping: a password with URL delimiters (@ : / # ?), spaces,
// quotes and $ must reach kooflow, Temporal and its schema tool unchanged, written in .env
// as .env.example says (single quotes). kooflow's KOOFLOW_DB holds no credentials: pgx
// reads PGUSER and PGPASSWORD, which is checked here with pgx itself.
func TestDatabasePasswordNeedsNoEscaping(t *testing.T) {
	const password = `p@ss: w/rd#?&$HOME"x`
	example := readFile(t, filepath.Join(root, ".env.example"))
	if !strings.Contains(example, "single quotes") {
		t.Error(".env.example does not say how to quote a password with special characters")
	}
	var env []string
	for _, line := range strings.Split(example, "\n") {
		if strings.HasPrefix(line, "POSTGRES_PASSWORD=") {
			line = "POSTGRES_PASSWORD='" + password + "'"
		}
		env = append(env, line)
	}
	envFile := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(envFile, []byte(strings.Join(env, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	p := loadWithEnv(t, envFile)

	for service, variable := range map[string]string{
		"postgresql": "POSTGRES_PASSWORD", "temporal": "POSTGRES_PWD", "temporal-schema": "SQL_PASSWORD",
		"kooflow-worker": "PGPASSWORD", "kooflow-webhook": "PGPASSWORD", "kooflow-console": "PGPASSWORD",
	} {
		if got := p.Services[service].Environment[variable]; got == nil || *got != password {
			t.Errorf("%s: %s = %v, want the password unchanged", service, variable, got)
		}
	}
	for _, name := range []string{"kooflow-worker", "kooflow-webhook", "kooflow-console"} {
		s := p.Services[name]
		dsn := *s.Environment["KOOFLOW_DB"]
		if u, err := url.Parse(dsn); err != nil || u.User != nil {
			t.Errorf("%s: KOOFLOW_DB %q carries credentials (or does not parse: %v); use PGUSER/PGPASSWORD", name, dsn, err)
		}
		t.Setenv("PGUSER", *s.Environment["PGUSER"])
		t.Setenv("PGPASSWORD", *s.Environment["PGPASSWORD"])
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			t.Fatalf("%s: pgx cannot parse KOOFLOW_DB %q: %v", name, dsn, err)
		}
		if cfg.Password != password || cfg.User != "kooflow" || cfg.Host != "postgresql" || cfg.Database != "kooflow" {
			t.Errorf("%s: pgx connects as %q@%s/%s with password %q", name, cfg.User, cfg.Host, cfg.Database, cfg.Password)
		}
	}

	// Nothing puts a password on a command line, where `ps` shows it.
	passwordVar := regexp.MustCompile(`(?i)(--pw\b|--password\b|\$\{?(POSTGRES_PASSWORD|POSTGRES_PWD|SQL_PASSWORD|PGPASSWORD)\b)`)
	for _, s := range p.Services {
		lines := append(append([]string{}, s.Entrypoint...), s.Command...)
		if s.HealthCheck != nil {
			lines = append(lines, s.HealthCheck.Test...)
		}
		for _, l := range lines {
			if passwordVar.MatchString(l) || strings.Contains(l, password) {
				t.Errorf("%s puts the database password on a command line: %q", s.Name, l)
			}
		}
	}
	for _, script := range []string{"temporal/setup-schema.sh", "temporal/setup-namespace.sh"} {
		for i, line := range strings.Split(readFile(t, script), "\n") {
			code := strings.TrimSpace(line)
			if strings.HasPrefix(code, "#") || strings.HasPrefix(code, ": ") { // comments; `:` only checks the variable is set
				continue
			}
			if passwordVar.MatchString(code) {
				t.Errorf("%s:%d passes the password on a command line: %s", script, i+1, code)
			}
		}
	}
}

func TestEveryVariableIsInEnvExample(t *testing.T) {
	compose := readFile(t, filepath.Join(root, "docker-compose.yml"))
	example := readFile(t, filepath.Join(root, ".env.example"))
	defined := map[string]bool{}
	for _, line := range strings.Split(example, "\n") {
		if name, _, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			defined[name] = true
		}
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Z_]+)(:-[^}]*)?\}`).FindAllStringSubmatch(compose, -1) {
		if m[2] == "" && !defined[m[1]] {
			t.Errorf("${%s} has no default and is missing from .env.example", m[1])
		}
	}
	for name, secret := range load(t).Secrets {
		if secret.Environment != "" && !defined[secret.Environment] {
			t.Errorf("secret %s comes from %s, which is missing from .env.example", name, secret.Environment)
		}
	}
}

// TestSecretsFileIsIgnored: .env holds every secret of the stack; it must never be committed
// nor sent to the Docker build context (and so into an image layer).
func TestSecretsFileIsIgnored(t *testing.T) {
	for _, file := range []string{".gitignore", ".dockerignore"} {
		found := false
		for _, line := range strings.Split(readFile(t, filepath.Join(root, file)), "\n") {
			if l := strings.TrimSpace(line); l == ".env" || l == "/.env" {
				found = true
			}
		}
		if !found {
			t.Errorf("%s does not exclude .env", file)
		}
	}
}

// TestWorkerHealthAndStop: compose tells a worker that waits for Temporal ("starting")
// from a dead one by its /readyz on the metrics port; the webhook keeps its intake /readyz
// (ready while the store answers, Temporal or not); and Docker waits longer than the
// worker's drain of activities in flight before it kills it.
func TestWorkerHealthAndStop(t *testing.T) {
	p := load(t)
	worker := p.Services["kooflow-worker"]
	wantCheck := []string{"CMD", "/usr/local/bin/kooflow", "healthcheck", "--url",
		"http://127.0.0.1:" + port(t, *worker.Environment["KOOFLOW_METRICS_ADDR"]) + "/readyz"}
	if worker.HealthCheck == nil || !reflect.DeepEqual([]string(worker.HealthCheck.Test), wantCheck) {
		t.Errorf("kooflow-worker health check %v, want %v", worker.HealthCheck, wantCheck)
	}
	webhook := p.Services["kooflow-webhook"]
	wantCheck = []string{"CMD", "/usr/local/bin/kooflow", "healthcheck", "--url",
		"http://127.0.0.1:" + port(t, *webhook.Environment["KOOFLOW_WEBHOOK_ADDR"]) + "/readyz"}
	if webhook.HealthCheck == nil || !reflect.DeepEqual([]string(webhook.HealthCheck.Test), wantCheck) {
		t.Errorf("kooflow-webhook health check %v, want %v", webhook.HealthCheck, wantCheck)
	}

	drain := wiring.DefaultWorkerStopTimeout
	if v := worker.Environment["KOOFLOW_WORKER_STOP_TIMEOUT"]; v != nil && *v != "" {
		d, err := time.ParseDuration(*v)
		if err != nil {
			t.Fatalf("KOOFLOW_WORKER_STOP_TIMEOUT %q: %v", *v, err)
		}
		drain = d
	}
	if worker.StopGracePeriod == nil || time.Duration(*worker.StopGracePeriod) < drain+10*time.Second {
		t.Errorf("kooflow-worker stop_grace_period %v; want at least its stop timeout %s plus 10 s", worker.StopGracePeriod, drain)
	}
}

// port returns the port of a listen address such as ":9090".
func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	return p
}

func TestPublishedPortsDoNotCollide(t *testing.T) {
	seen := map[string]string{}
	for _, s := range load(t).Services {
		for _, p := range s.Ports {
			if p.Published == "" {
				continue
			}
			if other, dup := seen[p.Published]; dup {
				t.Errorf("host port %s is published by %s and %s", p.Published, other, s.Name)
			}
			seen[p.Published] = s.Name
		}
	}
	if len(seen) < 4 {
		t.Fatalf("only %d published ports: %v", len(seen), seen)
	}
}

// TestOnlyTheIntakeIsPublishedOnAllInterfaces: the webhook's intake port must be reachable
// by KooGallery and SmartHub; nothing else has TLS, and the Temporal frontend, its UI,
// Prometheus and Alertmanager have no authentication at all, so they are published on the
// loopback interface only. The webhook's /metrics is on its own, unpublished listener.
func TestOnlyTheIntakeIsPublishedOnAllInterfaces(t *testing.T) {
	p := load(t)
	webhook := p.Services["kooflow-webhook"]
	intake := port(t, *webhook.Environment["KOOFLOW_WEBHOOK_ADDR"])
	metricsPort := port(t, *webhook.Environment["KOOFLOW_METRICS_ADDR"])
	if intake == metricsPort {
		t.Errorf("the webhook serves /metrics on its intake port %s", intake)
	}
	publicIntake := false
	for _, s := range p.Services {
		for _, pc := range s.Ports {
			if pc.Published == "" {
				continue
			}
			target := strings.TrimSpace(strings.Split(strings.TrimPrefix(pc.HostIP, "["), "]")[0])
			loopback := net.ParseIP(target) != nil && net.ParseIP(target).IsLoopback()
			isIntake := s.Name == "kooflow-webhook" && pc.Target == atoi(t, intake)
			switch {
			case isIntake:
				publicIntake = true
			case !loopback:
				t.Errorf("%s publishes container port %d on all interfaces (host IP %q); publish it on 127.0.0.1", s.Name, pc.Target, pc.HostIP)
			}
			if s.Name == "kooflow-webhook" && pc.Target == atoi(t, metricsPort) {
				t.Errorf("the webhook's metrics port %s is published", metricsPort)
			}
		}
	}
	if !publicIntake {
		t.Error("the webhook's intake port is not published")
	}
}

func atoi(t *testing.T, s string) uint32 {
	t.Helper()
	var n uint32
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("port %q is not a number", s)
		}
		n = n*10 + uint32(c-'0')
	}
	return n
}

// TestOneShotJobsRetry: the schema and namespace jobs must survive a transient failure (the
// frontend's port opens before the server serves; PostgreSQL may refuse a first
// connection), or every kooflow service fails with "dependency failed": compose restarts
// them on failure, and their scripts retry every step that talks to a server.
func TestOneShotJobsRetry(t *testing.T) {
	p := load(t)
	oneShot := map[string]bool{}
	for _, s := range p.Services {
		for dep, d := range s.DependsOn {
			if d.Condition == types.ServiceConditionCompletedSuccessfully {
				oneShot[dep] = true
			}
		}
	}
	if len(oneShot) < 2 {
		t.Fatalf("one-shot jobs: %v", oneShot)
	}
	onFailure := regexp.MustCompile(`^on-failure(:[1-9][0-9]*)?$`)
	for name := range oneShot {
		s := p.Services[name]
		if !onFailure.MatchString(s.Restart) {
			t.Errorf("%s: restart %q; a one-shot job must restart on failure", name, s.Restart)
		}
		mounted := map[string]string{} // container path → host file
		script := ""
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				mounted[v.Target] = v.Source
				if strings.HasSuffix(v.Source, ".sh") && strings.Contains(strings.Join(s.Entrypoint, " "), v.Target) {
					script = readFile(t, v.Source)
				}
			}
		}
		if script == "" {
			t.Errorf("%s: no mounted script in its entrypoint %v", name, s.Entrypoint)
			continue
		}
		// Files the script sources, as mounted in the container.
		sourced := ""
		for _, m := range regexp.MustCompile(`(?m)^\. (\S+)$`).FindAllStringSubmatch(script, -1) {
			if host, ok := mounted[m[1]]; ok {
				sourced += readFile(t, host)
			} else {
				t.Errorf("%s: the script sources %s, which is not mounted", name, m[1])
			}
		}
		checkRetried(t, name, script, sourced)
	}
}

// checkRetried fails unless every command of script that talks to a server (temporal,
// temporal-sql-tool) runs through the retry function (defined in the script or in a file
// it sources), directly or inside a function that is only ever called through retry.
func checkRetried(t *testing.T, job, script, sourced string) {
	t.Helper()
	retryLoop := regexp.MustCompile(`(?ms)^retry\(\) \{.*until "\$@"; do.*sleep`)
	if !retryLoop.MatchString(script) && !retryLoop.MatchString(sourced) {
		t.Errorf("%s: no retry function (a loop running its arguments until they succeed)", job)
		return
	}
	// A command in command position: at the start, or after if/then/do/!/;/|/&&/||.
	server := regexp.MustCompile(`(^|\b(if|then|do|while|until)\s+|[|&;!(]\s*)(temporal|temporal-sql-tool)\s`)
	funcStart := regexp.MustCompile(`^([a-z_]+)\(\) \{$`)
	bodies := map[string][]string{}
	var top []string
	current := ""
	sc := bufio.NewScanner(strings.NewReader(script))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		switch {
		case current == "" && funcStart.MatchString(line):
			current = funcStart.FindStringSubmatch(line)[1]
		case current != "" && line == "}":
			current = ""
		case current != "":
			bodies[current] = append(bodies[current], line)
		default:
			top = append(top, line)
		}
	}
	talks := map[string]bool{}
	for fn, body := range bodies {
		for _, l := range body {
			if fn != "retry" && server.MatchString(l) {
				talks[fn] = true
			}
		}
	}
	retried := 0
	for _, l := range top {
		fields := strings.Fields(l)
		viaRetry := len(fields) > 1 && fields[0] == "retry"
		if viaRetry {
			retried++
			continue
		}
		if server.MatchString(l) {
			t.Errorf("%s: %q talks to a server without retrying", job, l)
		}
		for fn := range talks {
			if regexp.MustCompile(`(^|[\s;&|])` + fn + `(\s|$)`).MatchString(l) {
				t.Errorf("%s: %q calls %s, which talks to a server, without retrying", job, l, fn)
			}
		}
	}
	if retried == 0 {
		t.Errorf("%s: nothing runs through retry", job)
	}
	if strings.Contains(script, "|| true") {
		t.Errorf("%s: `|| true` hides a failure that should be retried or reported", job)
	}
}

// TestPostgresHealthCheckUsesTCP: while the image initialises a new data directory it runs a
// temporary server on the Unix socket only; pg_isready over the socket then says "ready" and
// the schema job starts against a server about to restart. Over TCP it waits for the real one.
func TestPostgresHealthCheckUsesTCP(t *testing.T) {
	hc := load(t).Services["postgresql"].HealthCheck
	if hc == nil {
		t.Fatal("postgresql has no health check")
	}
	test := strings.Join(hc.Test, " ")
	m := regexp.MustCompile(`pg_isready\b.*\s(-h|--host)[ =]?(\S+)`).FindStringSubmatch(test)
	if m == nil {
		t.Fatalf("the health check %q runs pg_isready without -h", test)
	}
	if host := strings.Trim(m[2], `"'`); strings.HasPrefix(host, "/") {
		t.Errorf("pg_isready -h %s is a socket directory; check over TCP", host)
	}
}

// dockerfileFinalStage returns the final stage's user and the destinations it copies with
// an owner (--chown), from the Dockerfile.
func dockerfileFinalStage(t *testing.T) (user string, owned map[string]string) {
	t.Helper()
	var stage []string
	for _, line := range strings.Split(readFile(t, filepath.Join(root, "Dockerfile")), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(strings.ToUpper(line), "FROM ") {
			stage = nil
		}
		stage = append(stage, line)
	}
	owned = map[string]string{}
	chown := regexp.MustCompile(`--chown=(\S+)`)
	for _, line := range stage {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "USER":
			user = fields[1]
		case "COPY", "ADD":
			if m := chown.FindStringSubmatch(line); m != nil {
				owned[path.Clean(fields[len(fields)-1])] = m[1]
			}
		}
	}
	return user, owned
}

// TestVolumesOfTheNonRootImageExistInIt: Docker initialises a new named volume from the
// image's directory at the mount point, owner included; when the image lacks the directory
// the mount point is created owned by root and the non-root kooflow cannot write (the
// monthly statement failed so).
func TestVolumesOfTheNonRootImageExistInIt(t *testing.T) {
	user, owned := dockerfileFinalStage(t)
	if user == "" || user == "root" || strings.HasPrefix(user, "0:") || user == "0" {
		t.Fatalf("the image runs as %q, not a non-root user", user)
	}
	mounts := 0
	for _, s := range load(t).Services {
		if s.Build == nil {
			continue
		}
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeVolume {
				continue
			}
			mounts++
			if owner, ok := owned[path.Clean(v.Target)]; !ok {
				t.Errorf("%s mounts volume %s on %s, which the image does not create", s.Name, v.Source, v.Target)
			} else if owner != user {
				t.Errorf("%s: the image creates %s owned by %s, but runs as %s", s.Name, v.Target, owner, user)
			}
		}
	}
	if mounts == 0 {
		t.Fatal("no kooflow service mounts a named volume")
	}
}

// TestTemporalDynamicConfig: every key is one the pinned server knows, with a valid value,
// the file is the one the server is told to read, and it sets nothing the server documents
// as test-only.
func TestTemporalDynamicConfig(t *testing.T) {
	raw := readFile(t, "temporal/dynamicconfig.yaml")
	loaded := dynamicconfig.LoadYamlFile([]byte(raw))
	if err := loaded.Err(); err != nil {
		t.Fatalf("dynamic config does not load: %v", err)
	}
	for _, w := range loaded.Warnings {
		t.Errorf("dynamic config: %v", w)
	}
	testOnly := []dynamicconfig.Key{dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key()}
	for _, k := range testOnly {
		if _, set := loaded.Map[k]; set {
			t.Errorf("dynamic config sets %s, which the server says should not be turned on in production", k)
		}
	}

	temporal := load(t).Services["temporal"]
	cfgPath := *temporal.Environment["DYNAMIC_CONFIG_FILE_PATH"]
	mounted := false
	for _, v := range temporal.Volumes {
		if v.Target == cfgPath && strings.HasSuffix(v.Source, filepath.Join("deploy", "temporal", "dynamicconfig.yaml")) {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("DYNAMIC_CONFIG_FILE_PATH %s is not where deploy/temporal/dynamicconfig.yaml is mounted", cfgPath)
	}
}

func TestPrometheusTargetsAreServices(t *testing.T) {
	p := load(t)
	cfg := prometheusConfig(t)
	jobs := map[string]bool{}
	for _, job := range cfg.ScrapeConfigs {
		jobs[job.JobName] = true
		for _, sc := range job.StaticConfigs {
			for _, target := range sc.Targets {
				host, targetPort, _ := strings.Cut(target, ":")
				if host == "localhost" && job.JobName == "prometheus" {
					continue
				}
				svc, ok := p.Services[host]
				if !ok {
					t.Errorf("job %s scrapes %s, which is not a service", job.JobName, target)
					continue
				}
				if strings.HasPrefix(svc.Name, "kooflow-") {
					if want := port(t, *svc.Environment["KOOFLOW_METRICS_ADDR"]); targetPort != want {
						t.Errorf("job %s scrapes port %s, %s serves metrics on %s", job.JobName, targetPort, svc.Name, want)
					}
				}
				if svc.Name == "temporal" && !strings.HasSuffix(*svc.Environment["PROMETHEUS_ENDPOINT"], ":"+targetPort) {
					t.Errorf("job %s scrapes port %s, Temporal exports on %s", job.JobName, targetPort, *svc.Environment["PROMETHEUS_ENDPOINT"])
				}
			}
		}
	}
	for _, want := range []string{"kooflow-worker", "kooflow-webhook", "temporal", "alertmanager"} {
		if !jobs[want] {
			t.Errorf("Prometheus does not scrape %s", want)
		}
	}
}

// promConfig is the part of prometheus.yml the tests read.
type promConfig struct {
	RuleFiles []string `yaml:"rule_files"`
	Alerting  struct {
		Alertmanagers []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"alertmanagers"`
	} `yaml:"alerting"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

func prometheusConfig(t *testing.T) promConfig {
	t.Helper()
	var cfg promConfig
	if err := yaml.Unmarshal([]byte(readFile(t, "prometheus/prometheus.yml")), &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}
