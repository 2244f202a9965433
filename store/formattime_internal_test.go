package store

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestFormatTimeIsTimeFormat: the hand-written formatter writes exactly what
// t.UTC().Format(timeLayout) writes, for times across the years formatTime writes digits
// for, in other zones, at the edges, and outside them (where it hands over to Format).
func TestFormatTimeIsTimeFormat(t *testing.T) {
	zone := time.FixedZone("UTC+8", 8*3600)
	times := []time.Time{
		time.Date(2026, 12, 6, 20, 30, 1, 999_999_999, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-5, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 3, 0, 0, 5_000_000, zone),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		times = append(times, time.Unix(r.Int64N(253402300800), r.Int64N(1e9)).In(zone))
	}
	for _, tm := range times {
		if got, want := formatTime(tm), tm.UTC().Format(timeLayout); got != want {
			t.Fatalf("formatTime(%v) = %q, want %q", tm, got, want)
		}
	}
	if formatTime(time.Time{}) != "" {
		t.Fatal("the zero time is not empty")
	}
}

func BenchmarkFormatTime(b *testing.B) {
	tm := time.Date(2026, 12, 6, 20, 30, 1, 123_456_789, time.UTC)
	b.Run("formatTime", func(b *testing.B) {
		for b.Loop() {
			_ = formatTime(tm)
		}
	})
	b.Run("time.Format, for comparison", func(b *testing.B) {
		for b.Loop() {
			_ = tm.UTC().Format(timeLayout)
		}
	})
}
