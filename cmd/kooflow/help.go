package main

import (
	"github.com/spf13/cobra"
)

// commandGroups are the headings `kooflow --help` lists the commands under, the way
// kubectl groups its own: what an operator wants to do first, then the tools.
var commandGroups = []*cobra.Group{
	{ID: "stack", Title: "Run the stack:"},
	{ID: "expirations", Title: "Operate expirations:"},
	{ID: "reconciliation", Title: "Reconciliation:"},
	{ID: "registry", Title: "Registry:"},
	{ID: "inspect", Title: "Inspect the records:"},
	{ID: "develop", Title: "Develop kooflow:"},
}

// commandGroup says under which heading each top-level command is listed.
var commandGroup = map[string]string{
	"dev": "stack", "temporal": "stack", "worker": "stack", "webhook": "stack", "console": "stack",
	"codec-server": "stack", "healthcheck": "stack",
	"status": "expirations", "retry": "expirations", "expire": "expirations", "replay": "expirations", "send": "expirations",
	"reconcile": "reconciliation", "schedule": "reconciliation",
	"registry":   "registry",
	"deliveries": "inspect", "audit": "inspect",
	"docs": "develop",
}

// commandExamples are the examples of the commands whose definitions carry none, by
// command path; TestEveryCommandHasAnExample keeps the table complete.
var commandExamples = map[string]string{
	"kooflow dev": `  kooflow dev
  kooflow dev --data-dir /var/lib/kooflow-trial --console-addr 127.0.0.1:9280`,
	"kooflow temporal": `  kooflow temporal --data-dir /var/lib/kooflow
  kooflow temporal --db "postgres://temporal@db:5432/temporal" --history-shards 4`,
	"kooflow worker":       `  TEMPORAL_ADDRESS=temporal:7233 KOOFLOW_DB=postgres://kooflow@db/kooflow kooflow worker`,
	"kooflow webhook":      `  TEMPORAL_ADDRESS=temporal:7233 KOOFLOW_DB=postgres://kooflow@db/kooflow KOOGALLERY_KEY="$(cat /run/secrets/koogallery-key)" kooflow webhook`,
	"kooflow console":      `  KOOFLOW_CONSOLE_URL=https://kooflow.carrier.example KOOFLOW_CONSOLE_OIDC_ISSUER=https://sso.carrier.example/realms/ops kooflow console`,
	"kooflow codec-server": `  kooflow codec-server --listen 127.0.0.1:8081 --ui-origin http://localhost:8233`,
	"kooflow healthcheck":  `  kooflow healthcheck --url http://127.0.0.1:9090/readyz`,
	"kooflow status": `  kooflow status
  kooflow status --state stalled
  kooflow status user-0042          # any identifier: instance, workflow ID, carrier user, order, ICCID
  kooflow status inst-0042 -o json`,
	"kooflow retry": `  kooflow retry inst-0042
  kooflow retry expire/koogallery/inst-0042/current
  kooflow retry --all-stalled`,
	"kooflow expire": `  kooflow expire --instance inst-0042`,
	"kooflow replay": `  kooflow replay 8f6c2a0e-5b1d-4c3e-9a7f-1d2e3f4a5b6c`,
	"kooflow send":   `  kooflow send koogallery-expire --instance inst-0042`,
	"kooflow send koogallery-expire": `  kooflow send koogallery-expire --instance inst-0042
  kooflow send koogallery-expire --instance inst-0042 --webhook http://127.0.0.1:8088`,
	"kooflow send smarthub-expired": `  kooflow send smarthub-expired --iccid 89860000000000000042 --package PK50`,
	"kooflow reconcile": `  kooflow reconcile --cycle 2026-11 --wait
  kooflow reconcile --cycle 2026-10 --force`,
	"kooflow reconcile show": `  kooflow reconcile show
  kooflow reconcile show --cycle 2026-10`,
	"kooflow schedule":          `  kooflow schedule describe`,
	"kooflow schedule apply":    `  kooflow schedule apply --cron "0 2 1 * *" --timezone Asia/Shanghai`,
	"kooflow schedule describe": `  kooflow schedule describe`,
	"kooflow registry":          `  kooflow registry import registry-2026-12.csv`,
	"kooflow docs":              `  kooflow docs cli -o docs/reference/cli.md`,
	"kooflow docs config":       `  kooflow docs config -o docs/configuration.md`,
	"kooflow docs cli":          `  kooflow docs cli -o docs/reference/cli.md`,
	"kooflow registry import": `  kooflow registry import registry-2026-12.csv
  kooflow registry import --db postgres://kooflow@db/kooflow registry-2026-12.xlsx
  kooflow registry import --create --data-dir ./trial registry.csv   # a new, empty store`,
}

// organiseHelp puts root's commands under their headings and gives each command its
// example from commandExamples.
func organiseHelp(root *cobra.Command) {
	root.AddGroup(commandGroups...)
	for _, c := range root.Commands() {
		c.GroupID = commandGroup[c.Name()]
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if ex, ok := commandExamples[c.CommandPath()]; ok && c.Example == "" {
			c.Example = ex
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
