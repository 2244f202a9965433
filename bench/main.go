// Command bench measures kooflow and checks that nothing is lost under faults. Every
// subcommand runs on this machine only (loopback), prints its figures, and exits non-zero
// when a reliability check fails:
//
//	go run ./bench intake      KooGallery intake vs raw workflow starts, at concurrency 1, 8, 32, 128, 256
//	go run ./bench temporal-down 1,000 deliveries while Temporal is stopped for 60 s: none refused, lost or doubled
//	go run ./bench burst       10,000 expirations end to end vs a minimal two-activity workflow;
//	                           --payload-encryption on,off: the payload codec's cost, encrypted vs clear in one run
//	go run ./bench storm       month end: 1,000,000-row registry import, 20,000 expirations, the statement, vs floors
//	go run ./bench import      registry import of 1,000,000 rows (again unchanged, then a bad last row) vs sqlite3 .import / psql \copy
//	go run ./bench fetch       paging 100,000 discrepancies from the KooDrive sandbox into the store
//	go run ./bench kill-worker SIGKILL the worker process during a burst, restart it
//	go run ./bench outage      KooDrive down for 20 and for 70 simulated minutes during a burst
//	go run ./bench restart     stop and start the embedded Temporal mid-burst
//	go run ./bench soak        a steady trickle of expiries (-rate/s for -duration) to the production processes (or
//	                           -topology dev): each process's RSS over time, growth per expiration, heap profiles
//	go run ./bench console     the console's pages on a 1,000,000-row registry with 100,000 expirations, vs the store queries alone
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kooflow/kooflow/devapp"
	"github.com/kooflow/kooflow/koogallery"
	"github.com/kooflow/kooflow/store"
)

const benchKey = "bench-seller-key"

var subcommands = map[string]func(args []string) error{
	"intake":        runIntake,
	"burst":         runBurst,
	"fetch":         runFetch,
	"kill-worker":   runKillWorker,
	"outage":        runOutage,
	"restart":       runRestart,
	"temporal-down": runTemporalDown,
	"storm":         runStorm,
	"console":       runConsole,
	"import":        runImport,
	"soak":          runSoak,
}

func main() {
	if len(os.Args) < 2 || subcommands[os.Args[1]] == nil {
		names := make([]string, 0, len(subcommands))
		for n := range subcommands {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "usage: go run ./bench <%s> [flags]\n", strings.Join(names, "|"))
		os.Exit(2)
	}
	fmt.Printf("machine: %d cores, Go %s, %s\n", runtime.NumCPU(), runtime.Version(), time.Now().UTC().Format("2006-01-02"))
	if err := subcommands[os.Args[1]](os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
}

func newFlags(name string) *flag.FlagSet { return flag.NewFlagSet(name, flag.ExitOnError) }

// quiet is the logger for benchmark runs: warnings and errors only.
func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// startApp runs a whole kooflow in this process on a fresh data directory.
func startApp(dir string, tune func(*devapp.Options)) (*devapp.App, error) {
	opts := devapp.Options{
		DataDir: dir, UIPort: -1, WebhookAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0", SandboxAddr: "127.0.0.1:0",
		KooGalleryKey: benchKey, KooDriveToken: "bench-token", KooDriveUser: "bench-user", Logger: quiet(),
	}
	if tune != nil {
		tune(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return devapp.Start(ctx, opts)
}

// seed registers n subscriptions named <prefix>-<i>.
func seed(st *store.Store, prefix string, n int) error {
	for start := 0; start < n; start += 1000 {
		var batch []store.Subscription
		for i := start; i < min(start+1000, n); i++ {
			batch = append(batch, store.Subscription{InstanceID: instance(prefix, i), CarrierUserID: "user-" + instance(prefix, i), PackageID: "pkg"})
		}
		if _, err := st.UpsertSubscriptions(context.Background(), batch); err != nil {
			return err
		}
	}
	return nil
}

func instance(prefix string, i int) string { return fmt.Sprintf("%s-%06d", prefix, i) }

var httpClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512}}

// expire sends one signed KooGallery expireInstance and returns its result code.
func expire(webhook, instanceID string) (koogallery.ResultCode, error) {
	params := koogallery.Params{"activity": "expireInstance", "instanceId": instanceID, "orderId": "CS-" + instanceID,
		"timeStamp": time.Now().UTC().Format("20060102150405") + "000"}
	resp, err := httpClient.Get(webhook + "/koogallery/produce?" + koogallery.SignedQuery(benchKey, params))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var code koogallery.ResultCode
	if i := strings.Index(string(body), `"resultCode":"`); i >= 0 && len(body) >= i+20 {
		code = koogallery.ResultCode(body[i+14 : i+20])
	}
	return code, nil
}

// run calls fn(i) for i in [0,n) on c goroutines and returns each call's latency.
func run(n, c int, fn func(i int) error) ([]time.Duration, []error) {
	lat := make([]time.Duration, n)
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				start := time.Now()
				errs[i] = fn(i)
				lat[i] = time.Since(start)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return lat, errs
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// percentile returns the p-th percentile (0-100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(float64(len(s))*p/100))]
}

// waitCount polls until count() reaches want or timeout passes.
func waitCount(want int, timeout time.Duration, count func() (int, error)) (time.Duration, error) {
	start := time.Now()
	for {
		n, err := count()
		if err != nil {
			return 0, err
		}
		if n >= want {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return 0, fmt.Errorf("only %d of %d after %s", n, want, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func reservedCount(st *store.Store) func() (int, error) {
	return func() (int, error) {
		counts, err := st.CountExpirationsByState(context.Background())
		return counts[store.StateReserved], err
	}
}

// cpuSeconds is this process's user+system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// peakRSSMB is this process's peak resident set (VmHWM).
func peakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}
