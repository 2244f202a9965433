// Package docs holds kooflow's documentation pages; its test checks that every relative
// link and anchor in the repository's Markdown resolves, so a moved page or a renamed
// heading fails CI instead of a reader.
package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

var (
	fence     = regexp.MustCompile("(?ms)^\\s*```.*?^\\s*```")
	codeSpan  = regexp.MustCompile("`[^`\n]*`")
	mdLink    = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	heading   = regexp.MustCompile(`(?m)^#{1,6}\s+(.*?)\s*#*\s*$`)
	htmlID    = regexp.MustCompile(`(?i)<a\s+(?:name|id)="([^"]+)"`)
	skipDirs  = map[string]bool{".git": true, "node_modules": true, "kooflow-data": true, "testdata": true}
	externals = []string{"http://", "https://", "mailto:"}
)

// repoRoot is the repository's root, the directory above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// slug is the anchor a forge gives a heading: lower case, punctuation dropped, spaces
// to hyphens (GitHub's rule, which GitLab and Gitea follow for these headings).
func slug(title string) string {
	title = codeSpan.ReplaceAllStringFunc(title, func(s string) string { return strings.Trim(s, "`") })
	title = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(title, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(title) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

// anchors are the anchors a Markdown page offers: its headings' slugs (a repeated one
// with -1, -2, …) and explicit HTML ids.
func anchors(page string) map[string]bool {
	page = fence.ReplaceAllString(page, "")
	out := map[string]bool{}
	seen := map[string]int{}
	for _, m := range heading.FindAllStringSubmatch(page, -1) {
		s := slug(m[1])
		if n := seen[s]; n > 0 {
			out[s+"-"+strconv.Itoa(n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	for _, m := range htmlID.FindAllStringSubmatch(page, -1) {
		out[m[1]] = true
	}
	return out
}

// TestMarkdownLinksResolve: every relative link in every Markdown file of the repository
// names a file or directory that exists, and every #anchor a heading of its page.
func TestMarkdownLinksResolve(t *testing.T) {
	root := repoRoot(t)
	pages := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && skipDirs[d.Name()] {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			pages[path] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 10 {
		t.Fatalf("found %d Markdown pages under %s; the walk is wrong", len(pages), root)
	}
	checked := 0
	for path, page := range pages {
		rel, _ := filepath.Rel(root, path)
		text := codeSpan.ReplaceAllString(fence.ReplaceAllString(page, ""), "")
		for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if hasPrefix(target, externals) {
				continue
			}
			checked++
			file, anchor, _ := strings.Cut(target, "#")
			dest := path
			if file != "" {
				dest = filepath.Join(filepath.Dir(path), filepath.FromSlash(file))
				if !strings.HasPrefix(dest, root) {
					continue // ../shared and the like: outside this repository
				}
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s links %q: no such file", rel, target)
					continue
				}
			}
			if anchor == "" {
				continue
			}
			destPage, ok := pages[dest]
			if !ok {
				t.Errorf("%s links %q: an anchor into a page that is not Markdown", rel, target)
				continue
			}
			if !anchors(destPage)[anchor] {
				t.Errorf("%s links %q: the page has no heading with that anchor", rel, target)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative link checked")
	}
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// TestSlug pins the anchor rule on headings kooflow's pages have.
func TestSlug(t *testing.T) {
	for title, want := range map[string]string{
		"Subscriber data: what is visible where":                          "subscriber-data-what-is-visible-where",
		"`go run` or a binary":                                            "go-run-or-a-binary",
		"The console in production: `kooflow console` and OpenID Connect": "the-console-in-production-kooflow-console-and-openid-connect",
		"KooflowExpirationStalled":                                        "kooflowexpirationstalled",
		"Month-end storm (#15) (`go run ./bench storm`)":                  "month-end-storm-15-go-run-bench-storm",
	} {
		if got := slug(title); got != want {
			t.Errorf("slug(%q) = %q, want %q", title, got, want)
		}
	}
}
