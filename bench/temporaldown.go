package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/kooflow/kooflow/koogallery"
	"github.com/kooflow/kooflow/store"
)

// runTemporalDown sends deliveries while the embedded Temporal is stopped, brings it
// back, and checks that every accepted expiry was started and reserved exactly once.
// It exits non-zero when one was refused, lost or doubled.
func runTemporalDown(args []string) error {
	fs := newFlags("temporal-down")
	n := fs.Int("n", 1000, "deliveries while Temporal is down")
	c := fs.Int("c", 32, "concurrent deliveries")
	down := fs.Duration("down", 60*time.Second, "how long Temporal stays stopped")
	_ = fs.Parse(args)
	dir, err := os.MkdirTemp("", "kooflow-bench-down-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	app, err := startApp(dir, nil)
	if err != nil {
		return err
	}
	defer app.Stop()
	if err := seed(app.Store, "down", *n); err != nil {
		return err
	}
	fmt.Printf("\ntemporal-down on %s: %d expireInstance deliveries at concurrency %d while Temporal is stopped for %s\n",
		app.Store.Dialect(), *n, *c, *down)
	if err := app.StopTemporal(); err != nil {
		return err
	}
	stopped := time.Now()
	lat, errs := run(*n, *c, func(i int) error {
		code, err := expire(app.WebhookURL, instance("down", i))
		if err == nil && code != koogallery.Success {
			err = &notSuccess{code}
		}
		return err
	})
	refused, err := countRefused(errs)
	if err != nil {
		return err
	}
	fmt.Printf("accepted %d of %d while down (p99 %s, max %s); refused %d\n", *n-refused, *n, ms(percentile(lat, 99)), ms(percentile(lat, 100)), refused)
	time.Sleep(time.Until(stopped.Add(*down)))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := app.StartTemporal(ctx); err != nil {
		return err
	}
	returned := time.Now()
	started, err := waitDrained(app, 10*time.Minute)
	if err != nil {
		return err
	}
	if _, err := waitCount(*n-refused, 15*time.Minute, func() (int, error) {
		counts, err := app.Store.CountExpirationsByState(context.Background())
		return counts[store.StateReserved], err
	}); err != nil {
		return fmt.Errorf("lost expirations: %w", err)
	}
	allReserved := time.Since(returned)
	perUser := map[string]int{}
	for _, nt := range app.Sandbox.Notifications() {
		perUser[nt.CarrierUserID]++
	}
	duplicated := 0
	for _, k := range perUser {
		duplicated += k - 1
	}
	lost := *n - refused - len(perUser)
	fmt.Printf("after Temporal returned: all started in %s, all reserved in %s (%.0f/s); lost %d, duplicated %d\n",
		started.Round(time.Millisecond), allReserved.Round(time.Millisecond), float64(*n-refused)/allReserved.Seconds(), lost, duplicated)
	if refused > 0 || lost != 0 || duplicated != 0 {
		return fmt.Errorf("refused %d, lost %d, duplicated %d", refused, lost, duplicated)
	}
	return nil
}
