package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// walkthroughStep is one command of the README's walkthrough and what its output must
// say (the text after "# →" on its line; empty when the README promises nothing).
type walkthroughStep struct {
	line, command, want string
}

// readmeWalkthrough reads the commands of the README's "Five minutes with kooflow": every
// line of its ```sh blocks, in order.
func readmeWalkthrough(t *testing.T) []walkthroughStep {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "## Five minutes with kooflow")
	if start < 0 {
		t.Fatal(`README.md has no "## Five minutes with kooflow" section`)
	}
	section := text[start:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	var steps []walkthroughStep
	for _, block := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(section, -1) {
		for _, line := range strings.Split(block[1], "\n") {
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			command, want, _ := strings.Cut(line, "# →")
			steps = append(steps, walkthroughStep{line: line, command: strings.TrimSpace(command), want: strings.TrimSpace(want)})
		}
	}
	if len(steps) < 5 {
		t.Fatalf("the walkthrough has %d commands; the section's ```sh blocks were not found", len(steps))
	}
	return steps
}

// TestReadmeWalkthrough runs the README's five-minute walkthrough as a new user would:
// `kooflow dev` in a fresh directory, then each command of the walkthrough in order, in
// that directory, checking the output each line promises. The only changes to the
// commands: the built binary for `go run ./cmd/kooflow`, the sandbox's address from the
// banner for <sandbox>, and — since other tests may hold kooflow dev's default ports —
// free ports, with the webhook's given to `send` (which otherwise assumes the default).
// A `status` whose promise is not kept yet by the expiration's row is asked again (an
// expiry takes a moment to be reserved), for at most 90 s.
func TestReadmeWalkthrough(t *testing.T) {
	steps := readmeWalkthrough(t)
	work := t.TempDir()
	bin := buildKooflow(t, t.TempDir())
	webhook, metrics, console := freeAddr(t), freeAddr(t), freeAddr(t)
	_, temporalPort := splitPort(t, freeAddr(t))

	banner := filepath.Join(work, "dev.out")
	out, err := os.Create(banner)
	if err != nil {
		t.Fatal(err)
	}
	dev := exec.Command(bin, "dev")
	dev.Dir = work
	dev.Env = append(os.Environ(), "KOOFLOW_TEMPORAL_PORT="+temporalPort, "KOOFLOW_UI_PORT=-1", "KOOFLOW_WEBHOOK_ADDR="+webhook,
		"KOOFLOW_METRICS_ADDR="+metrics, "KOOFLOW_CONSOLE_ADDR="+console)
	dev.Stdout, dev.Stderr = out, out
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = dev.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = dev.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = dev.Process.Kill()
			<-done
		}
		out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(banner)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("kooflow dev's output (last lines):\n%s", b)
		}
	})
	sandbox := bannerValue(t, banner, "KooDrive", 3*time.Minute)

	for _, s := range steps {
		command := strings.ReplaceAll(s.command, "<sandbox>", sandbox)
		command = strings.Replace(command, "go run ./cmd/kooflow", bin, 1)
		if strings.Contains(command, " send ") && !strings.Contains(command, "--webhook") {
			command += " --webhook http://" + webhook
		}
		deadline := time.Now().Add(90 * time.Second)
		for {
			output, err := runWalkthroughCommand(command, work)
			if err != nil {
				t.Fatalf("%s\nfailed: %v\n%s", s.line, err, output)
			}
			if strings.Contains(promised(s.command, output), s.want) {
				t.Logf("%s\n%s", s.line, indent(output))
				break
			}
			if !strings.Contains(s.command, " status ") || time.Now().After(deadline) {
				t.Fatalf("%s\nsaid no %q:\n%s", s.line, s.want, output)
			}
			time.Sleep(time.Second)
		}
	}
}

// promised is the part of a command's output its promise is about: for `status`, the
// rows of the expirations table (its summary line names every state, so the whole output
// would always say "reserved"); otherwise all of it.
func promised(command, output string) string {
	if !strings.Contains(command, " status ") {
		return output
	}
	var rows []string
	for _, line := range strings.Split(output, "\n") {
		if strings.HasPrefix(line, "expire/") {
			rows = append(rows, line)
		}
	}
	return strings.Join(rows, "\n")
}

// bannerValue waits for the dev banner's line label and returns its first word.
func bannerValue(t *testing.T, banner, label string, timeout time.Duration) string {
	t.Helper()
	line := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(label) + `\s+(\S+)`)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(banner)
		if m := line.FindSubmatch(b); m != nil && strings.Contains(string(b), "kooflow dev is running") {
			return string(m[1])
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("kooflow dev printed no %s line within %s", label, timeout)
	return ""
}

// runWalkthroughCommand runs one walkthrough command in dir: kooflow as a process, and
// curl — which a fresh machine may not have — as the HTTP request it sends (-X method,
// -d body, the URL).
func runWalkthroughCommand(command, dir string) (string, error) {
	words := strings.Fields(command)
	if words[0] != "curl" {
		cmd := exec.Command(words[0], words[1:]...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	method, body, target := http.MethodGet, "", ""
	args := quotedFields(command)[1:]
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-s":
		case "-X":
			i++
			method = args[i]
		case "-d":
			i++
			body = args[i]
			if method == http.MethodGet {
				method = http.MethodPost // curl's -d alone posts
			}
		default:
			target = args[i]
		}
	}
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		return string(b), fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return string(b), nil
}

// quotedFields splits a command line on spaces outside single quotes.
func quotedFields(s string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '\'':
			quoted = !quoted
		case r == ' ' && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

func indent(s string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		b.WriteString("    " + sc.Text() + "\n")
	}
	return b.String()
}
