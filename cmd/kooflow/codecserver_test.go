package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/kooflow/kooflow/payloadcodec"
)

// TestCodecServerCommand runs `kooflow codec-server` on the files a dev data directory
// keeps and checks that it decodes for the token only.
func TestCodecServerCommand(t *testing.T) {
	for _, k := range []string{payloadcodec.EnvKeys, payloadcodec.EnvKeysFile, payloadcodec.EnvCodecToken,
		payloadcodec.EnvCodecTokenFile, payloadcodec.EnvEncryption, "KOOFLOW_CODEC_ADDR", "KOOFLOW_CODEC_UI_ORIGINS"} {
		t.Setenv(k, "")
	}
	dir := t.TempDir()
	codec, err := payloadcodec.ForDev(func(string) string { return "" }, dir)
	if err != nil {
		t.Fatal(err)
	}
	tokenPath, err := payloadcodec.EnsureDevToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	tokenBytes, _ := os.ReadFile(tokenPath)
	token := strings.TrimSpace(string(tokenBytes))

	// Without a token the command refuses to start, naming what to set.
	if out, err := run(t, "codec-server", "--listen", "127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "KOOFLOW_PAYLOAD_KEYS") {
		t.Errorf("no keys: %q, %v", out, err)
	}
	t.Setenv(payloadcodec.EnvKeysFile, filepath.Join(dir, payloadcodec.DevKeyFile))
	if out, err := run(t, "codec-server", "--listen", "127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), payloadcodec.EnvCodecToken) {
		t.Errorf("no token: %q, %v", out, err)
	}
	t.Setenv(payloadcodec.EnvKeysFile, "")

	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		cmd := newRootCommand()
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs([]string{"codec-server", "--listen", addr, "--data-dir", dir, "--ui-origin", "http://127.0.0.1:18233"})
		done <- cmd.ExecuteContext(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("codec-server: %v", err)
		}
		if strings.Contains(out.String(), token) {
			t.Errorf("the token reached the output: %s", out.String())
		}
	})
	base := "http://" + addr
	waitHealthy(t, base+"/healthz")

	enc, err := codec.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")},
		Data: []byte(`{"CarrierUserID":"demo-user-2"}`)}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: enc})
	decode := func(auth string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, base+"/decode", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, got := decode(""); code != http.StatusUnauthorized || strings.Contains(got, "demo-user-2") {
		t.Errorf("unauthenticated: %d %q", code, got)
	}
	if code, got := decode("Bearer " + strings.Repeat("0", len(token))); code != http.StatusUnauthorized || strings.Contains(got, "demo-user-2") {
		t.Errorf("wrong token: %d %q", code, got)
	}
	code, got := decode("Bearer " + token)
	if code != http.StatusOK {
		t.Fatalf("with token: %d %q", code, got)
	}
	var decoded commonpb.Payloads
	if err := protojson.Unmarshal([]byte(got), &decoded); err != nil {
		t.Fatal(err)
	}
	if string(decoded.Payloads[0].Data) != `{"CarrierUserID":"demo-user-2"}` {
		t.Errorf("decoded %q (raw answer %q, base64 of the expected %s)", decoded.Payloads[0].Data, got,
			base64.StdEncoding.EncodeToString([]byte(`{"CarrierUserID":"demo-user-2"}`)))
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitHealthy polls url until it answers 200.
func waitHealthy(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200", url)
}
