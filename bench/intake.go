package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/koogallery"
)

// runIntake measures signed KooGallery expirations through the webhook at several
// concurrency levels, and raw client.ExecuteWorkflow starts at the same levels against
// the same embedded server, the ceiling intake can approach.
func runIntake(args []string) error {
	fs := newFlags("intake")
	n := fs.Int("n", 400, "requests per concurrency level")
	_ = fs.Parse(args)
	dir, err := os.MkdirTemp("", "kooflow-bench-intake-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	app, err := startApp(dir, nil)
	if err != nil {
		return err
	}
	defer app.Stop()
	levels := []int{1, 8, 32, 128}
	if err := seed(app.Store, "intake", *n*len(levels)); err != nil {
		return err
	}
	fmt.Printf("\nintake: %d signed expireInstance calls per level (distinct instances) vs %d raw ExecuteWorkflow starts\n", *n, *n)
	fmt.Printf("%-11s %12s %9s %9s %9s %12s %9s %9s\n", "concurrency", "intake req/s", "p50", "p99", "max", "raw starts/s", "raw p99", "ratio")
	for li, c := range levels {
		offset := li * *n
		start := time.Now()
		lat, errs := run(*n, c, func(i int) error {
			code, err := expire(app.WebhookURL, instance("intake", offset+i))
			if err == nil && code != koogallery.Success {
				err = fmt.Errorf("result %s", code)
			}
			return err
		})
		intakeRate := float64(*n) / time.Since(start).Seconds()
		if err := firstError(errs); err != nil {
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
		fmt.Printf("%-11d %12.0f %9s %9s %9s %12.0f %9s %9.2f\n", c, intakeRate, ms(percentile(lat, 50)), ms(percentile(lat, 99)),
			ms(percentile(lat, 100)), rawRate, ms(percentile(rawLat, 99)), intakeRate/rawRate)
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
