package statement

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// TestParallelDeflateIsOneDeflateStream compresses inputs around the block size, of
// text and of noise, and reads each back with the standard library's inflater.
func TestParallelDeflateIsOneDeflateStream(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	text := bytes.Repeat([]byte(`<row r="1"><c r="A1" t="inlineStr"><is><t>CO-0000001</t></is></c></row>`), 2*deflateBlockSize/60)
	noise := make([]byte, 3*deflateBlockSize+deflateBlockSize/2)
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"one byte", []byte("x")},
		{"a block less one", text[:deflateBlockSize-1]},
		{"exactly a block", text[:deflateBlockSize]},
		{"two blocks of text", text},
		{"three and a half blocks of noise", noise},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			d := newParallelDeflate(&out)
			// Written in uneven pieces, as io.Copy and excelize write.
			for rest := tc.data; len(rest) > 0; {
				n := min(len(rest), 1+rng.IntN(70_000))
				if w, err := d.Write(rest[:n]); err != nil || w != n {
					t.Fatalf("Write = %d, %v; want %d", w, err, n)
				}
				rest = rest[n:]
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(flate.NewReader(&out))
			if err != nil {
				t.Fatalf("inflate: %v", err)
			}
			if !bytes.Equal(got, tc.data) {
				t.Fatalf("inflated %d bytes, differing from the %d written", len(got), len(tc.data))
			}
			if _, err := d.Write([]byte("late")); err == nil {
				t.Fatal("a write after Close was accepted")
			}
		})
	}
}

// failingWriter accepts limit bytes, then fails.
type failingWriter struct{ limit int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.limit {
		return 0, errors.New("disk full")
	}
	f.limit -= len(p)
	return len(p), nil
}

// TestParallelDeflateReportsAFailedWrite: when the file cannot take the compressed
// bytes, the error reaches Write or Close instead of a silently truncated entry.
func TestParallelDeflateReportsAFailedWrite(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	noise := make([]byte, 8*deflateBlockSize)
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	d := newParallelDeflate(&failingWriter{limit: deflateBlockSize})
	_, werr := d.Write(noise)
	cerr := d.Close()
	if err := errors.Join(werr, cerr); err == nil || !bytes.Contains([]byte(err.Error()), []byte("disk full")) {
		t.Fatalf("write error %v, close error %v; want disk full", werr, cerr)
	}
}
