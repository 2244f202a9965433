package payloadcodec

import (
	"testing"

	"go.temporal.io/sdk/converter"
)

// BenchmarkExpirationInput measures converting a typical expiration input (about 300
// bytes of JSON) to a payload and back, with the default converter alone and with the
// AES-256-GCM codec on top, in the same run.
func BenchmarkExpirationInput(b *testing.B) {
	plain, err := converter.GetDefaultDataConverter().ToPayload(sampleInput)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("input payload: %d bytes of JSON", len(plain.Data))
	for _, bc := range []struct {
		name string
		dc   converter.DataConverter
	}{
		{"default", DataConverter(nil)},
		{"encrypted", DataConverter(mustKeys(b, keyEntry("k1", 1)))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p, err := bc.dc.ToPayload(sampleInput)
				if err != nil {
					b.Fatal(err)
				}
				var back expirationInput
				if err := bc.dc.FromPayload(p, &back); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
