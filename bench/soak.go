package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kooflow/kooflow/koodrive/sandbox"
	"github.com/kooflow/kooflow/koogallery"
	"github.com/kooflow/kooflow/store"
)

// envFlags collects repeated -env KEY=VALUE flags.
type envFlags []string

func (e *envFlags) String() string { return strings.Join(*e, " ") }

func (e *envFlags) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("-env %q: want KEY=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

// soakProcess is one kooflow process of the soak, with the metrics port its memory and
// profiles are read from.
type soakProcess struct {
	name    string
	proc    *benchProcess
	metrics string
}

// soakSample is one reading of every process: resident memory (VmRSS) and the Go heap in
// use (go_memstats_heap_inuse_bytes), in bytes.
type soakSample struct {
	at       time.Duration
	sent     int
	reserved int
	rss      map[string]float64
	heap     map[string]float64
}

// runSoak sends a steady trickle of signed KooGallery expiries at -rate per second for
// -duration to kooflow running as real processes — `kooflow temporal`, `kooflow worker`
// and `kooflow webhook` (the default), or one `kooflow dev` (-topology dev) — and samples
// every process's RSS from /proc/<pid>/status every -sample. It prints RSS over time, the
// growth per expiration (the slope of RSS against expirations over the last two thirds)
// and the last third's growth, and saves heap profiles of every process (KOOFLOW_PPROF=on)
// at a third of the run and at the end, printing the top of the server's. -env passes
// settings to every process, e.g. to run the same soak on other cache bounds.
func runSoak(args []string) error {
	fs := newFlags("soak")
	rate := fs.Float64("rate", 10, "expiries per second")
	duration := fs.Duration("duration", 8*time.Minute, "how long the trickle lasts")
	every := fs.Duration("sample", 10*time.Second, "how often RSS is sampled")
	topology := fs.String("topology", "processes", "processes: kooflow temporal + worker + webhook; dev: one kooflow dev")
	out := fs.String("profiles", "", "directory the heap profiles are saved in (default: a new temporary directory, kept)")
	var env envFlags
	fs.Var(&env, "env", "KEY=VALUE passed to every kooflow process (repeat it)")
	_ = fs.Parse(args)
	if *rate <= 0 || *duration <= 0 || *every <= 0 {
		return errors.New("-rate, -duration and -sample must be positive")
	}
	if *topology != "processes" && *topology != "dev" {
		return fmt.Errorf("-topology %q: want processes or dev", *topology)
	}
	dir, err := os.MkdirTemp("", "kooflow-bench-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if *out == "" {
		if *out, err = os.MkdirTemp("", "kooflow-soak-profiles-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("profiles directory: %w", err)
	}

	n := int(*rate * duration.Seconds())
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, "kooflow.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	if err := seed(st, "soak", n); err != nil {
		return fmt.Errorf("seed the registry: %w", err)
	}
	kd := httptest.NewServer(sandbox.New(sandbox.Options{AccessToken: "bench-token", UserID: "bench-user"}).Handler())
	defer kd.Close()

	bin := filepath.Join(dir, "kooflow")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/kooflow").CombinedOutput(); err != nil {
		return fmt.Errorf("build kooflow: %v\n%s", err, out)
	}
	procs, webhookURL, err := startSoakProcesses(bin, dir, *topology, kd.URL, env)
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].proc.stop()
		}
	}()
	if err != nil {
		return err
	}
	fmt.Printf("\nsoak on %s: %.1f expiries/s for %s (%d), RSS sampled every %s; settings: %s\n",
		describeTopology(*topology), *rate, *duration, n, *every, cmpOr(env.String(), "defaults"))

	var sent, refused atomic.Int64
	var firstErr error
	var errOnce sync.Once
	read := func(at time.Duration) soakSample {
		counts, _ := st.CountExpirationsByState(context.Background())
		s := soakSample{at: at, sent: int(sent.Load()), reserved: counts[store.StateReserved], rss: map[string]float64{}, heap: map[string]float64{}}
		for _, p := range procs {
			s.rss[p.name] = procRSS(p.proc.cmd.Process.Pid)
			s.heap[p.name] = scrapeGauge(p.metrics+"/metrics", "go_memstats_heap_inuse_bytes")
		}
		return s
	}
	printHeader(procs)
	start := time.Now()
	samples := []soakSample{read(0)}
	printSample(procs, samples[0])
	interval := time.Duration(float64(time.Second) / *rate)
	tick, sample := time.NewTicker(interval), time.NewTicker(*every)
	defer tick.Stop()
	defer sample.Stop()
	var wg sync.WaitGroup
	early := false
	for i := 0; i < n; {
		select {
		case <-tick.C:
			id := instance("soak", i)
			wg.Go(func() {
				code, err := expire(webhookURL, id)
				switch {
				case err != nil:
					errOnce.Do(func() { firstErr = err })
				case code != koogallery.Success:
					refused.Add(1)
				}
			})
			i++
			sent.Add(1)
		case <-sample.C:
			s := read(time.Since(start))
			samples = append(samples, s)
			printSample(procs, s)
			if !early && s.at >= *duration/3 {
				early = true
				saveProfiles(procs, *out, "early")
			}
		}
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("deliveries: %w", firstErr)
	}
	// The trickle is over: wait for the last expirations to reach reserved, so the end
	// holds nothing in flight, sampling on, then take the last sample and profiles.
	drainStart := time.Now()
	for {
		counts, err := st.CountExpirationsByState(context.Background())
		if err != nil {
			return err
		}
		if counts[store.StateReserved] >= n-int(refused.Load()) {
			break
		}
		select {
		case <-sample.C:
			s := read(time.Since(start))
			samples = append(samples, s)
			printSample(procs, s)
		default:
		}
		if time.Since(drainStart) > 10*time.Minute {
			// The figures are still worth printing: they say what the server holds with
			// that many expirations in flight.
			fmt.Fprintf(os.Stderr, "only %d of %d expirations reserved 10 min after the trickle ended: the end is not idle\n",
				counts[store.StateReserved], n)
			break
		}
		time.Sleep(time.Second)
	}
	last := read(time.Since(start))
	samples = append(samples, last)
	printSample(procs, last)
	saveProfiles(procs, *out, "end")
	fmt.Printf("deliveries: %d sent, %d answered other than 000000; %d reserved %s after the last\n",
		n, refused.Load(), last.reserved, time.Since(drainStart).Round(time.Second))
	printGrowth(procs, samples)
	for _, p := range procs {
		if p.name == "temporal" || p.name == "dev" {
			printProfileTop(p.name, *out)
		}
	}
	fmt.Printf("heap profiles (go tool pprof -top -inuse_space FILE; -diff_base EARLY for the growth): %s\n", *out)
	return nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func describeTopology(topology string) string {
	if topology == "dev" {
		return "one kooflow dev process (Temporal on SQLite)"
	}
	return "kooflow temporal (SQLite), kooflow worker and kooflow webhook as separate processes, kooflow's store on SQLite"
}

// startSoakProcesses starts the processes of the topology with profiling on, each metrics
// port on a free loopback address, and waits until the webhook is ready and the worker
// polls. It returns the processes started so far even on error, for the caller to stop.
func startSoakProcesses(bin, dir, topology, kooDriveURL string, env []string) ([]soakProcess, string, error) {
	var procs []soakProcess
	start := func(name, metrics string, extra []string, args ...string) (*benchProcess, error) {
		full := append(append([]string{"KOOFLOW_PPROF=on", "KOOFLOW_LOG_LEVEL=warn", "KOOFLOW_PAYLOAD_KEYS_FILE=", "KOOFLOW_PAYLOAD_KEYS=",
			"KOOFLOW_PAYLOAD_ENCRYPTION=off"}, extra...), env...)
		p, err := startBenchProcess(bin, filepath.Join(dir, name+".log"), full, args...)
		if err != nil {
			return nil, err
		}
		procs = append(procs, soakProcess{name: name, proc: p, metrics: "http://" + metrics})
		return p, nil
	}
	temporalAddr, webhookAddr := freeAddr(), freeAddr()
	_, port, _ := strings.Cut(temporalAddr, ":")
	db := "KOOFLOW_DB=sqlite:" + filepath.Join(dir, "kooflow.db")
	kooDrive := []string{"KOODRIVE_BASE_URL=" + kooDriveURL, "KOODRIVE_ACCESS_TOKEN=bench-token", "KOODRIVE_USER_ID=bench-user"}
	webhookURL := "http://" + webhookAddr
	if topology == "dev" {
		metrics := freeAddr()
		extra := append([]string{db, "KOOGALLERY_KEY=" + benchKey, "KOOFLOW_WEBHOOK_ADDR=" + webhookAddr, "KOOFLOW_METRICS_ADDR=" + metrics,
			"KOOFLOW_CONSOLE_ADDR=-", "KOOFLOW_SANDBOX_ADDR=" + freeAddr(), "KOOFLOW_TEMPORAL_PORT=" + port, "KOOFLOW_UI_PORT=-1",
			"KOOFLOW_DATA_DIR=" + filepath.Join(dir, "dev")}, kooDrive...)
		if _, err := start("dev", metrics, extra, "dev"); err != nil {
			return procs, "", err
		}
		return procs, webhookURL, waitOK(webhookURL+"/readyz", 3*time.Minute)
	}
	temporalMetrics := freeAddr()
	temporal, err := start("temporal", temporalMetrics, []string{"KOOFLOW_TEMPORAL_METRICS_ADDR=" + temporalMetrics},
		"temporal", "--data-dir", filepath.Join(dir, "temporal"), "--temporal-port", port, "--ui-port", "-1")
	if err != nil {
		return procs, "", err
	}
	if _, err := temporal.waitLine("Temporal persistence: ", 2*time.Minute); err != nil {
		return procs, "", err
	}
	common := []string{"TEMPORAL_ADDRESS=" + temporalAddr, db, "KOOFLOW_DATA_DIR=" + dir}
	workerMetrics, webhookMetrics := freeAddr(), freeAddr()
	if _, err := start("worker", workerMetrics, append(append(common, kooDrive...), "KOOFLOW_METRICS_ADDR="+workerMetrics), "worker"); err != nil {
		return procs, "", err
	}
	if _, err := start("webhook", webhookMetrics, append(common, "KOOGALLERY_KEY="+benchKey, "KOOFLOW_WEBHOOK_ADDR="+webhookAddr,
		"KOOFLOW_METRICS_ADDR="+webhookMetrics), "webhook"); err != nil {
		return procs, "", err
	}
	for _, u := range []string{webhookURL + "/readyz", "http://" + workerMetrics + "/readyz", "http://" + webhookMetrics + "/readyz"} {
		if err := waitOK(u, 2*time.Minute); err != nil {
			return procs, "", err
		}
	}
	return procs, webhookURL, nil
}

func printHeader(procs []soakProcess) {
	fmt.Printf("%8s %7s %8s", "time", "sent", "reserved")
	for _, p := range procs {
		fmt.Printf(" %14s", p.name+" RSS/heap")
	}
	fmt.Println("   (MB)")
}

func printSample(procs []soakProcess, s soakSample) {
	fmt.Printf("%8s %7d %8d", s.at.Round(time.Second), s.sent, s.reserved)
	for _, p := range procs {
		fmt.Printf(" %14s", fmt.Sprintf("%.0f/%.0f", s.rss[p.name]/(1<<20), s.heap[p.name]/(1<<20)))
	}
	fmt.Println()
}

// printGrowth prints, for every process, RSS at the start, at a third, at two thirds and
// at the end of the run (the trickle and the drain after it), the growth per expiration
// over the last two thirds (the least-squares slope of RSS, and of the Go heap in use,
// against expirations reserved) and the last third's growth.
func printGrowth(procs []soakProcess, samples []soakSample) {
	end := samples[len(samples)-1]
	at := func(frac float64) soakSample {
		want := time.Duration(frac * float64(end.at))
		for _, s := range samples {
			if s.at >= want {
				return s
			}
		}
		return end
	}
	third, twoThirds := at(1.0/3), at(2.0/3)
	fmt.Printf("\n%-9s %9s %9s %9s %9s %17s %17s %16s\n", "process", "RSS 0", "RSS 1/3", "RSS 2/3", "RSS end", "KB/expiry (2/3)",
		"heap KB/expiry", "last third")
	for _, p := range procs {
		var xs, ys, hs []float64
		for _, s := range samples {
			if s.at >= third.at {
				xs, ys, hs = append(xs, float64(s.reserved)), append(ys, s.rss[p.name]), append(hs, s.heap[p.name])
			}
		}
		mb := func(s soakSample) float64 { return s.rss[p.name] / (1 << 20) }
		fmt.Printf("%-9s %9.0f %9.0f %9.0f %9.0f %17.1f %17.1f %15.1f%%\n", p.name, mb(samples[0]), mb(third), mb(twoThirds), mb(end),
			slope(xs, ys)/1024, slope(xs, hs)/1024, 100*(end.rss[p.name]-twoThirds.rss[p.name])/twoThirds.rss[p.name])
	}
}

// slope is the least-squares slope of ys against xs (0 for fewer than two distinct xs).
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx, sy, sxx, sxy = sx+xs[i], sy+ys[i], sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

// procRSS is a running process's resident set (VmRSS) in bytes.
func procRSS(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(fields[1], 64)
			return kb * 1024
		}
	}
	return 0
}

// scrapeGauge reads one unlabelled metric from a Prometheus text page (0 when absent).
func scrapeGauge(url, name string) float64 {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v
		}
	}
	return 0
}

// saveProfiles saves every process's heap profile, after a garbage collection, as
// <dir>/<process>-heap-<label>.pb.gz.
func saveProfiles(procs []soakProcess, dir, label string) {
	for _, p := range procs {
		path := filepath.Join(dir, p.name+"-heap-"+label+".pb.gz")
		if err := fetchTo(p.metrics+"/debug/pprof/heap?gc=1", path); err != nil {
			fmt.Fprintf(os.Stderr, "heap profile of %s: %v\n", p.name, err)
		}
	}
}

func fetchTo(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("save %s: %w", path, err)
	}
	return f.Close()
}

// printProfileTop prints the top of the server's heap at the end, and what grew between
// a third of the run and the end. The profiles are symbolized: they need no binary.
func printProfileTop(name, dir string) {
	end := filepath.Join(dir, name+"-heap-end.pb.gz")
	early := filepath.Join(dir, name+"-heap-early.pb.gz")
	for _, args := range [][]string{
		{"tool", "pprof", "-top", "-inuse_space", "-nodecount=15", end},
		{"tool", "pprof", "-top", "-inuse_space", "-nodecount=15", "-diff_base", early, end},
	} {
		out, err := exec.Command("go", args...).CombinedOutput()
		fmt.Printf("\n$ go %s\n%s", strings.Join(args, " "), out)
		if err != nil {
			fmt.Fprintf(os.Stderr, "go tool pprof: %v\n", err)
		}
	}
}
