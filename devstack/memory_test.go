package devstack

import (
	"strings"
	"testing"

	"go.temporal.io/server/common/dynamicconfig"
)

func TestMemoryBoundsReachTheServersDynamicConfig(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want int
	}{
		{env: nil, want: DefaultHistoryCacheEntries},
		{env: map[string]string{HistoryCacheEntriesEnv: "500"}, want: 500},
	} {
		b, err := MemoryBoundsFromEnv(func(name string) string { return tc.env[name] })
		if err != nil {
			t.Fatal(err)
		}
		dc := dynamicconfig.StaticClient{}
		b.apply(dc)
		if got := dc[dynamicconfig.HistoryCacheHostLevelMaxSize.Key()]; got != tc.want {
			t.Errorf("env %v: history.hostLevelCacheMaxSize = %v, want %d", tc.env, got, tc.want)
		}
	}
}

func TestMemoryBoundsRefuseNonsense(t *testing.T) {
	for _, v := range []string{"0", "-5", "lots", "2k"} {
		_, err := MemoryBoundsFromEnv(func(name string) string {
			if name == HistoryCacheEntriesEnv {
				return v
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), HistoryCacheEntriesEnv) {
			t.Errorf("%s=%s: %v, want an error naming the variable", HistoryCacheEntriesEnv, v, err)
		}
	}
}
