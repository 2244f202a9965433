package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/devapp"
	"github.com/kooflow/kooflow/koogallery"
)

// runIntake measures signed KooGallery expirations through the webhook at several
// concurrency levels, and raw client.ExecuteWorkflow starts at the same levels against
// the same embedded server: the floor the intake is compared with. The intake answers
// from its store (the outbox) and the relay starts the workflows behind it, so the
// intake may run ahead of Temporal; answers other than 000000 are counted, not fatal.
func runIntake(args []string) error {
	fs := newFlags("intake")
	n := fs.Int("n", 400, "requests per concurrency level")
	db := fs.String("db", "", "kooflow store: empty for SQLite in the data directory, or a postgres:// URL (use an empty database)")
	_ = fs.Parse(args)
	dir, err := os.MkdirTemp("", "kooflow-bench-intake-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	app, err := startApp(dir, func(o *devapp.Options) { o.DB = *db })
	if err != nil {
		return err
	}
	defer app.Stop()
	levels := []int{1, 8, 32, 128, 256}
	if err := seed(app.Store, "intake", *n*len(levels)); err != nil {
		return err
	}
	fmt.Printf("\nintake on %s: %d signed expireInstance calls per level (distinct instances) vs %d raw ExecuteWorkflow starts\n",
		app.Store.Dialect(), *n, *n)
	fmt.Printf("%-11s %12s %9s %9s %9s %10s %12s %9s %9s\n", "concurrency", "intake req/s", "p50", "p99", "max", "not 000000",
		"raw starts/s", "raw p99", "ratio")
	for li, c := range levels {
		offset := li * *n
		start := time.Now()
		lat, errs := run(*n, c, func(i int) error {
			code, err := expire(app.WebhookURL, instance("intake", offset+i))
			if err == nil && code != koogallery.Success {
				err = &notSuccess{code}
			}
			return err
		})
		intakeRate := float64(*n) / time.Since(start).Seconds()
		refused, err := countRefused(errs)
		if err != nil {
			return fmt.Errorf("intake at concurrency %d: %w", c, err)
		}
		start = time.Now()
		rawLat, rawErrs := run(*n, c, func(i int) error {
			_, err := app.Client.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
				ID: fmt.Sprintf("bench-raw-%d-%d", c, i), TaskQueue: "bench-raw-unpolled",
			}, "BenchRawStart")
			return err
		})
		rawRate := float64(*n) / time.Since(start).Seconds()
		if err := firstError(rawErrs); err != nil {
			return fmt.Errorf("raw starts at concurrency %d: %w", c, err)
		}
		fmt.Printf("%-11d %12.0f %9s %9s %9s %10d %12.0f %9s %9.2f\n", c, intakeRate, ms(percentile(lat, 50)), ms(percentile(lat, 99)),
			ms(percentile(lat, 100)), refused, rawRate, ms(percentile(rawLat, 99)), intakeRate/rawRate)
	}
	drained, err := waitDrained(app, 10*time.Minute)
	if err != nil {
		return err
	}
	fmt.Printf("relay: every accepted expiry started %s after the last answer\n", drained.Round(time.Millisecond))
	return nil
}

// notSuccess is an answer other than 000000: KooGallery would count an interface exception.
type notSuccess struct{ code koogallery.ResultCode }

func (e *notSuccess) Error() string { return "result " + string(e.code) }

// countRefused counts answers other than 000000 and returns the first transport error.
func countRefused(errs []error) (int, error) {
	refused := 0
	for _, err := range errs {
		var ns *notSuccess
		switch {
		case errors.As(err, &ns):
			refused++
		case err != nil:
			return refused, err
		}
	}
	return refused, nil
}

// waitDrained waits until the relay has handed every accepted intent to Temporal and
// returns how long that took.
func waitDrained(app *devapp.App, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		b, err := app.Store.Backlog(context.Background())
		if err != nil {
			return 0, err
		}
		if b.Pending == 0 {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return 0, fmt.Errorf("%d intents still queued after %s", b.Pending, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
