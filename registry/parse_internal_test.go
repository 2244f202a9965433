package registry

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestParseDigitsIsTimeParse: the hand-written reader of yyyyMMddHHmmss accepts exactly
// the strings time.Parse accepts in that layout, as the same times; what it declines goes
// to time.Parse, which gives the reason.
func TestParseDigitsIsTimeParse(t *testing.T) {
	values := []string{"20261031160000", "20240229000000", "20230229000000", "20261131000000", "20261301000000",
		"20261200000000", "20261231240000", "20261231236000", "20261231235960", "00000101000000", "99991231235959",
		"2026103116000", "202610311600000", "2026-10-31T16", "+0261031160000", "2026103116000x", "20261031160000 "}
	r := rand.New(rand.NewPCG(3, 4))
	for range 200_000 {
		values = append(values, fmt.Sprintf("%04d%02d%02d%02d%02d%02d", r.IntN(10000), r.IntN(14), r.IntN(33), r.IntN(26), r.IntN(62), r.IntN(62)))
	}
	for _, v := range values {
		want, werr := time.Parse("20060102150405", v)
		got, ok := parseDigits(v)
		if ok != (werr == nil) || (ok && !got.Equal(want)) {
			t.Fatalf("parseDigits(%q) = %v, %v; time.Parse = %v, %v", v, got, ok, want, werr)
		}
		if pt, err := ParseTime(v); (err == nil) != (werr == nil) && len(v) == 14 {
			t.Fatalf("ParseTime(%q) = %v, %v; time.Parse = %v, %v", v, pt, err, want, werr)
		}
	}
}

func BenchmarkParseTime(b *testing.B) {
	b.Run("ParseTime", func(b *testing.B) {
		for b.Loop() {
			_, _ = ParseTime("20261031160000")
		}
	})
	b.Run("time.Parse, for comparison", func(b *testing.B) {
		for b.Loop() {
			_, _ = time.Parse("20060102150405", "20261031160000")
		}
	})
}

// TestColumnPositionsNameTheirColumns: the parser's column constants index the header
// names they stand for.
func TestColumnPositionsNameTheirColumns(t *testing.T) {
	for col, name := range map[int]string{colInstanceID: "instanceId", colOrderID: "orderId", colCarrierUserID: "carrierUserId",
		colPackageID: "packageId", colCarrierOrderID: "carrierOrderId", colCarrierOrderTime: "carrierOrderTime",
		colExpireTime: "expireTime", colGIccid: "gIccid", colPackageCode: "packageCode"} {
		if columnNames[col] != name {
			t.Errorf("column %d is %s, want %s", col, columnNames[col], name)
		}
	}
	if len(Columns) != len(columnNames) {
		t.Errorf("Columns has %d names, want %d", len(Columns), len(columnNames))
	}
}
