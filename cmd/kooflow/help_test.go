package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kooflow/kooflow/settings"
)

// everyCommand walks the command tree below root, depth first.
func everyCommand(root *cobra.Command, fn func(*cobra.Command)) {
	for _, c := range root.Commands() {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		fn(c)
		everyCommand(c, fn)
	}
}

// exampleWords splits one example line into its words as a shell would for these
// examples: environment assignments before the command are dropped, a double-quoted
// word is one word, and a comment ends the line.
func exampleWords(line string) []string {
	var words []string
	var word strings.Builder
	quoted, inWord := false, false
	for _, r := range line {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case (r == ' ' || r == '\t') && !quoted:
			if inWord {
				words, inWord = append(words, word.String()), false
				word.Reset()
			}
		case r == '#' && !quoted && !inWord:
			return dropAssignments(words)
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return dropAssignments(words)
}

func dropAssignments(words []string) []string {
	for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
		words = words[1:]
	}
	return words
}

// TestEveryCommandHasAnExample: every command shows at least one example, and every
// example names a real command with flags it has, so an example cannot drift from the
// command it shows.
func TestEveryCommandHasAnExample(t *testing.T) {
	root := newRootCommand()
	everyCommand(root, func(c *cobra.Command) {
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s has no example (add it to commandExamples)", c.CommandPath())
			return
		}
		for _, line := range strings.Split(c.Example, "\n") {
			words := exampleWords(strings.TrimSpace(line))
			if len(words) == 0 || words[0] != "kooflow" {
				t.Errorf("%s: example %q does not run kooflow", c.CommandPath(), line)
				continue
			}
			found, args, err := newRootCommand().Find(words[1:])
			if err != nil {
				t.Errorf("%s: example %q: %v", c.CommandPath(), line, err)
				continue
			}
			if err := found.ParseFlags(args); err != nil {
				t.Errorf("%s: example %q: %v", c.CommandPath(), line, err)
			}
		}
	})
	paths := map[string]bool{}
	everyCommand(root, func(c *cobra.Command) { paths[c.CommandPath()] = true })
	for path := range commandExamples {
		if !paths[path] {
			t.Errorf("commandExamples has %q, which is no command", path)
		}
	}
}

// TestHelpListsCommandsInGroups: `kooflow --help` lists every command under a heading,
// run the stack first, none left in a catch-all list but help and completion.
func TestHelpListsCommandsInGroups(t *testing.T) {
	root := newRootCommand()
	for _, c := range root.Commands() {
		if c.GroupID == "" && c.Name() != "help" && c.Name() != "completion" {
			t.Errorf("%s is in no group (add it to commandGroup)", c.Name())
		}
	}
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	help := out.String()
	last := -1
	for _, g := range commandGroups {
		at := strings.Index(help, g.Title)
		if at < last {
			t.Errorf("--help lists %q out of order or not at all:\n%s", g.Title, help)
		}
		last = at
	}
	if stack := help[strings.Index(help, "Run the stack:"):strings.Index(help, "Operate expirations:")]; !strings.Contains(stack, "dev ") || !strings.Contains(stack, "worker ") {
		t.Errorf("the stack's heading does not list dev and worker:\n%s", help)
	}
}

// TestReferencesAreCurrent: the committed CLI and configuration references are what the
// command tree and the settings table write now; after changing either, run
// `go generate ./cmd/kooflow`.
func TestReferencesAreCurrent(t *testing.T) {
	for path, write := range map[string]func(*bytes.Buffer){
		cliReferencePath:  func(b *bytes.Buffer) { writeCLIReference(b, newRootCommand()) },
		configurationPath: func(b *bytes.Buffer) { writeConfigurationReference(b) },
	} {
		var want bytes.Buffer
		write(&want)
		got, err := os.ReadFile(filepath.Join("..", "..", path))
		if err != nil {
			t.Fatalf("%v: run `go generate ./cmd/kooflow`", err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s is not what the code says now: run `go generate ./cmd/kooflow` and commit it", path)
		}
	}
}

// TestFlagDefaultsAreTheTables: every flag that names its environment variable ("(env
// NAME)") defaults to the value the settings table documents for it, so the
// configuration reference cannot promise another default than the one kooflow uses.
func TestFlagDefaultsAreTheTables(t *testing.T) {
	envName := regexp.MustCompile(`\(env ([A-Z][A-Z0-9_]*)\)`)
	checked := 0
	everyCommand(newRootCommand(), func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			m := envName.FindStringSubmatch(f.Usage)
			if m == nil || os.Getenv(m[1]) != "" {
				return
			}
			s, ok := settings.Lookup(m[1])
			if !ok {
				t.Errorf("%s --%s names %s, which the settings table lacks", c.CommandPath(), f.Name, m[1])
				return
			}
			checked++
			if got := strings.Trim(f.DefValue, "[]"); got != s.Default {
				t.Errorf("%s --%s defaults to %q; the settings table documents %s's default as %q", c.CommandPath(), f.Name, got, m[1], s.Default)
			}
		})
	})
	if checked < 10 {
		t.Fatalf("checked %d flags; the (env NAME) convention was not found", checked)
	}
}
