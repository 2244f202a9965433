package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/devapp"
	"github.com/kooflow/kooflow/koogallery"
)

// runBurst delivers n expirations as fast as intake allows and times them to reserved,
// then runs n minimal workflows (two no-op activities) on the same server for comparison.
func runBurst(args []string) error {
	fs := newFlags("burst")
	n := fs.Int("n", 10000, "expirations")
	c := fs.Int("c", 64, "concurrent deliveries")
	pollers := fs.Int("pollers", 0, "workflow and activity task pollers (0: SDK default)")
	_ = fs.Parse(args)
	dir, err := os.MkdirTemp("", "kooflow-bench-burst-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	app, err := startApp(dir, func(o *devapp.Options) {
		if *pollers > 0 {
			o.WorkerOptions = sdkworker.Options{MaxConcurrentWorkflowTaskPollers: *pollers, MaxConcurrentActivityTaskPollers: *pollers}
		}
	})
	if err != nil {
		return err
	}
	defer app.Stop()
	if err := seed(app.Store, "burst", *n); err != nil {
		return err
	}

	cpu0, start := cpuSeconds(), time.Now()
	_, errs := run(*n, *c, func(i int) error {
		code, err := expire(app.WebhookURL, instance("burst", i))
		if err == nil && code != koogallery.Success {
			err = fmt.Errorf("result %s", code)
		}
		return err
	})
	if err := firstError(errs); err != nil {
		return err
	}
	intake := time.Since(start)
	if _, err := waitCount(*n, 30*time.Minute, reservedCount(app.Store)); err != nil {
		return err
	}
	total, cpu := time.Since(start), cpuSeconds()-cpu0
	if got := len(app.Sandbox.Notifications()); got != *n {
		return fmt.Errorf("KooDrive received %d notifications for %d expirations", got, *n)
	}
	fmt.Printf("\nburst: %d expirations, %d concurrent deliveries, pollers %d (0 = SDK default)\n", *n, *c, *pollers)
	fmt.Printf("  intake done after   %6.1f s (%.0f deliveries/s)\n", intake.Seconds(), float64(*n)/intake.Seconds())
	fmt.Printf("  all reserved after  %6.1f s (%.0f workflows/s), process CPU %.0f s (%.0f%% of one core), peak RSS %.0f MB\n",
		total.Seconds(), float64(*n)/total.Seconds(), cpu, 100*cpu/total.Seconds(), peakRSSMB())

	w := sdkworker.New(app.Client, "bench-minimal", sdkworker.Options{})
	w.RegisterWorkflowWithOptions(minimalWorkflow, workflow.RegisterOptions{Name: "BenchMinimal"})
	w.RegisterActivityWithOptions(func(context.Context) error { return nil }, activity.RegisterOptions{Name: "BenchNoop"})
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()
	cpu0, start = cpuSeconds(), time.Now()
	_, errs = run(*n, *c, func(i int) error {
		run, err := app.Client.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
			ID: fmt.Sprintf("bench-minimal-%d", i), TaskQueue: "bench-minimal"}, "BenchMinimal")
		if err != nil {
			return err
		}
		return run.Get(context.Background(), nil)
	})
	if err := firstError(errs); err != nil {
		return err
	}
	minimal, minimalCPU := time.Since(start), cpuSeconds()-cpu0
	fmt.Printf("  minimal workflow    %6.1f s (%.0f workflows/s), process CPU %.0f s\n", minimal.Seconds(), float64(*n)/minimal.Seconds(), minimalCPU)
	fmt.Printf("  kooflow / minimal throughput ratio: %.2f\n", minimal.Seconds()/total.Seconds())
	return nil
}

// minimalWorkflow is the floor: two no-op activities and nothing else.
func minimalWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	if err := workflow.ExecuteActivity(ctx, "BenchNoop").Get(ctx, nil); err != nil {
		return err
	}
	return workflow.ExecuteActivity(ctx, "BenchNoop").Get(ctx, nil)
}
