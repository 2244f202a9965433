package payloadcodec

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

const (
	testToken = "0123456789abcdef0123456789abcdef-test-token"
	uiOrigin  = "http://127.0.0.1:8233"
)

// codecServer serves NewHandler and returns its URL, the codec and the server's log.
func codecServer(t *testing.T) (string, *Codec, *bytes.Buffer) {
	t.Helper()
	codec := mustKeys(t, keyEntry("k1", 1))
	var logs bytes.Buffer
	h, err := NewHandler(HandlerOptions{Codec: codec, Token: testToken, AllowedOrigins: []string{uiOrigin},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, codec, &logs
}

// encryptedBody is a /decode request body holding sampleInput encrypted.
func encryptedBody(t *testing.T) []byte {
	t.Helper()
	p, err := DataConverter(mustKeys(t, keyEntry("k1", 1))).ToPayload(sampleInput)
	if err != nil {
		t.Fatal(err)
	}
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{p}})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func post(t *testing.T, url string, body []byte, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "default")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestCodecServerRefusesWithoutTheToken(t *testing.T) {
	base, _, logs := codecServer(t)
	body := encryptedBody(t)
	for name, header := range map[string]map[string]string{
		"no credentials":  nil,
		"wrong token":     {"Authorization": "Bearer " + strings.Repeat("x", len(testToken))},
		"token prefix":    {"Authorization": "Bearer " + testToken[:20]},
		"basic scheme":    {"Authorization": "Basic " + testToken},
		"forged cookie":   {"Cookie": SessionCookie + "=" + strings.Repeat("0", 64)},
		"token as cookie": {"Cookie": SessionCookie + "=" + testToken},
	} {
		resp, out := post(t, base+"/decode", body, header)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, resp.StatusCode)
		}
		if strings.Contains(out, sampleInput.CarrierUserID) || strings.Contains(out, "payloads") {
			t.Errorf("%s: answer %q carries payloads", name, out)
		}
	}
	if strings.Contains(logs.String(), testToken) || strings.Contains(logs.String(), testToken[:20]) {
		t.Errorf("log carries the token: %s", logs)
	}
	if !strings.Contains(logs.String(), "unauthenticated") {
		t.Errorf("refusals not logged: %s", logs)
	}
}

func TestCodecServerDecodesAndEncodesForTheToken(t *testing.T) {
	base, codec, _ := codecServer(t)
	resp, out := post(t, base+"/decode?preserveStorageRefs=true", encryptedBody(t), map[string]string{"Authorization": "Bearer " + testToken})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("decode: %d %s", resp.StatusCode, out)
	}
	var decoded commonpb.Payloads
	if err := protojson.Unmarshal([]byte(out), &decoded); err != nil {
		t.Fatal(err)
	}
	var got expirationInput
	if err := json.Unmarshal(decoded.Payloads[0].Data, &got); err != nil || got != sampleInput {
		t.Errorf("decoded %q: %v", decoded.Payloads[0].Data, err)
	}
	if enc := string(decoded.Payloads[0].Metadata["encoding"]); enc != "json/plain" {
		t.Errorf("decoded encoding %q", enc)
	}

	// /encode (the UI's signal and start forms) gives payloads the workers can decode.
	plain, _ := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{{
		Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"hello"`)}}})
	resp, out = post(t, base+"/encode", plain, map[string]string{"Authorization": "Bearer " + testToken})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("encode: %d %s", resp.StatusCode, out)
	}
	var encoded commonpb.Payloads
	if err := protojson.Unmarshal([]byte(out), &encoded); err != nil {
		t.Fatal(err)
	}
	back, err := codec.Decode(encoded.Payloads)
	if err != nil || string(back[0].Data) != `"hello"` {
		t.Errorf("encoded payload decodes to %v, %v", back, err)
	}

	// Unknown key: a clear error naming the id, status 400.
	other, _ := mustKeys(t, keyEntry("retired-2025", 5)).Encode([]*commonpb.Payload{{Data: []byte("x")}})
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: other})
	resp, out = post(t, base+"/decode", body, map[string]string{"Authorization": "Bearer " + testToken})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(out, `"retired-2025"`) {
		t.Errorf("unknown key: %d %q", resp.StatusCode, out)
	}
}

func TestCodecServerCORS(t *testing.T) {
	base, _, _ := codecServer(t)
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, base+"/decode", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := preflight(uiOrigin)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != uiOrigin ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("allowed origin: %d %v", resp.StatusCode, resp.Header)
	}
	allowHeaders := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
	for _, h := range []string{"content-type", "x-namespace", "authorization"} {
		if !strings.Contains(allowHeaders, h) {
			t.Errorf("preflight does not allow %s: %q", h, allowHeaders)
		}
	}
	for _, origin := range []string{"http://evil.example", "http://127.0.0.1:8234", "null"} {
		resp := preflight(origin)
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("origin %s: %d, allow-origin %q", origin, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	// A real request from another origin is refused even with the token.
	resp, out := post(t, base+"/decode", encryptedBody(t), map[string]string{"Authorization": "Bearer " + testToken, "Origin": "http://evil.example"})
	if resp.StatusCode != http.StatusForbidden || strings.Contains(out, sampleInput.CarrierUserID) {
		t.Errorf("foreign origin with token: %d %q", resp.StatusCode, out)
	}
	resp, _ = post(t, base+"/decode", encryptedBody(t), map[string]string{"Authorization": "Bearer " + testToken, "Origin": uiOrigin})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != uiOrigin {
		t.Errorf("UI origin with token: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestCodecServerBrowserSignIn(t *testing.T) {
	base, _, _ := codecServer(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.PostForm(base+"/login", url.Values{"token": {"wrong-" + testToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Errorf("wrong token sign-in: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	resp, err = noRedirect.PostForm(base+"/login", url.Values{"token": {testToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == SessionCookie {
			session = c
		}
	}
	if resp.StatusCode != http.StatusOK || session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode {
		t.Fatalf("sign-in: %d, cookie %+v", resp.StatusCode, session)
	}
	if strings.Contains(session.Value, testToken) {
		t.Error("the session cookie is the token")
	}
	// What the UI sends with codec.includeCredentials: the cookie, no Authorization.
	r, out := post(t, base+"/decode", encryptedBody(t), map[string]string{"Origin": uiOrigin, "Cookie": session.Name + "=" + session.Value})
	if r.StatusCode != http.StatusOK || !strings.Contains(out, "payloads") {
		t.Errorf("decode with the session cookie: %d %q", r.StatusCode, out)
	}
	// A credentialed request that is not JSON (a form another page could post) is refused.
	r, _ = post(t, base+"/decode", encryptedBody(t), map[string]string{"Content-Type": "text/plain", "Cookie": session.Name + "=" + session.Value})
	if r.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain decode: %d", r.StatusCode)
	}
}

func TestTokenFromEnvAndDevToken(t *testing.T) {
	none := func(string) string { return "" }
	if _, err := TokenFromEnv(none); err == nil || !strings.Contains(err.Error(), EnvCodecToken) {
		t.Errorf("no token: %v", err)
	}
	short := func(k string) string {
		if k == EnvCodecToken {
			return "short-secret"
		}
		return ""
	}
	if _, err := TokenFromEnv(short); err == nil || strings.Contains(err.Error(), "short-secret") {
		t.Errorf("short token: %v", err)
	}
	dir := t.TempDir()
	path, err := EnsureDevToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := EnsureDevToken(dir)
	first, _ := os.ReadFile(path)
	second, _ := os.ReadFile(again)
	if path != filepath.Join(dir, DevTokenFile) || !bytes.Equal(first, second) {
		t.Errorf("dev token not reused: %s %s", path, again)
	}
	tok, err := TokenFromEnv(func(k string) string {
		if k == EnvCodecTokenFile {
			return path
		}
		return ""
	})
	if err != nil || tok != strings.TrimSpace(string(first)) {
		t.Errorf("token from file: %v", err)
	}
	if _, err := NewHandler(HandlerOptions{Codec: mustKeys(t, keyEntry("k", 1)), Token: tok, AllowedOrigins: []string{"*"}}); err == nil {
		t.Error("wildcard origin accepted")
	}
}
