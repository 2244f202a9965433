package settings

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// variable is an environment variable name kooflow owns, or one of the SDK's that
// kooflow's code names, as a Go string literal.
var variable = regexp.MustCompile(`"((?:KOOFLOW|KOODRIVE|KOOGALLERY|SMARTHUB)_[A-Z0-9_]*[A-Z0-9]|TEMPORAL_(?:ADDRESS|NAMESPACE|CONFIG_FILE|API_KEY|PROFILE))"`)

// readByTheSDK are table entries the Temporal SDK reads, which kooflow's code need not name.
var readByTheSDK = map[string]bool{"TEMPORAL_TLS*": true, "TEMPORAL_API_KEY": true, "TEMPORAL_PROFILE": true}

// namedInCode returns every variable name a Go file of the repository names, with a file
// that names it.
func namedInCode(t *testing.T) map[string]string {
	t.Helper()
	names := map[string]string{}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "kooflow-data" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasPrefix(path, filepath.Join(root, "settings")) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range variable.FindAllStringSubmatch(string(b), -1) {
			rel, _ := filepath.Rel(root, path)
			names[m[1]] = rel
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestEveryVariableIsInTheTable: every environment variable kooflow's code (and its tests)
// names is in the settings table, so it is documented; and every entry of the table is
// still read somewhere (a _FILE variant counts as read where its variable is, as the
// secret readers build its name).
func TestEveryVariableIsInTheTable(t *testing.T) {
	named := namedInCode(t)
	if len(named) < 30 {
		t.Fatalf("found %d variable names in the code; the scan is wrong", len(named))
	}
	for name, file := range named {
		if _, ok := Lookup(name); !ok {
			t.Errorf("%s (named in %s) is not in the settings table: add it to settings.All, then go generate ./cmd/kooflow", name, file)
		}
	}
	for _, s := range All {
		_, read := named[s.Name]
		_, readAsFile := named[strings.TrimSuffix(s.Name, "_FILE")]
		if !read && !readAsFile && !readByTheSDK[s.Name] {
			t.Errorf("the settings table has %s, which no code reads any more", s.Name)
		}
	}
}

// TestTheTableIsWhole: every setting has a group the documentation lists, processes and a
// meaning, and appears once.
func TestTheTableIsWhole(t *testing.T) {
	groups := map[string]bool{}
	for _, g := range Groups {
		groups[g] = true
	}
	seen := map[string]bool{}
	for _, s := range All {
		if !groups[s.Group] || s.Processes == "" || s.Meaning == "" {
			t.Errorf("%+v lacks a listed group, its processes or its meaning", s)
		}
		if seen[s.Name] {
			t.Errorf("%s is in the table twice", s.Name)
		}
		seen[s.Name] = true
	}
}
