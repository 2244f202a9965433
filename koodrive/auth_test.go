package koodrive_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/kooflow/kooflow/koodrive"
)

// TestAppSignatureOfAFixedRequest checks the §7 signature of one fixed request against a
// value computed by hand, outside kooflow's code, from the rules in spec
// koodrive-carrier.md §7:
//
//		request: POST https://intl.myhuaweicloud-koodrive.com/koodrive/ose/v1/carrier/users/notifyPackageExpire?b=2&a=1
//		         X-Date: 20240909T033325Z, X-User-Id: " 1505084218764547200 " (spaces to be trimmed)
//		         body {"carrierUserId":"user-1","type":2,"packageId":"pkg-50GB"}
//		app:     AppId a378demo, secret kooflow-test-app-secret
//
//	 1. Canonical request, six lines joined by "\n": the method; the path with "/" appended
//	    (it has none, and every segment is unreserved, so nothing is encoded); the query
//	    sorted by name, "a=1&b=2"; the canonical headers, each "name:trimmed value\n", so the
//	    block ends with a newline and an empty line follows; the signed headers; and the
//	    payload hash, `printf '%s' "$BODY" | sha256sum` =
//	    467ba665f9cffd8cf7670f1a4281ae31b3348669a557939ce063be49ea94a59b.
//	 2. String to sign: "HMAC-SHA256\n" + `sha256sum` of the canonical request (no final
//	    newline) = f80739b0a38dc7722e806db235368f146e4db048a40c73658911b8b1fe7d3cc2.
//	 3. Signature: `openssl dgst -sha256 -hmac kooflow-test-app-secret` over the string to
//	    sign (no final newline) = 0d36da42ebd4122423176ad6754950b37c7585d6b6f21d8428e38da525db2ade,
//	    the same with Python's hmac module.
func TestAppSignatureOfAFixedRequest(t *testing.T) {
	body := []byte(`{"carrierUserId":"user-1","type":2,"packageId":"pkg-50GB"}`)
	req, err := http.NewRequest(http.MethodPost,
		"https://intl.myhuaweicloud-koodrive.com/koodrive/ose/v1/carrier/users/notifyPackageExpire?b=2&a=1", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Date", "20240909T033325Z")
	req.Header.Set("X-User-Id", " 1505084218764547200 ")
	req.Header.Set("Content-Type", "application/json") // not signed

	const wantCanonical = "POST\n" +
		"/koodrive/ose/v1/carrier/users/notifyPackageExpire/\n" +
		"a=1&b=2\n" +
		"host:intl.myhuaweicloud-koodrive.com\n" +
		"x-date:20240909T033325Z\n" +
		"x-user-id:1505084218764547200\n" +
		"\n" +
		"host;x-date;x-user-id\n" +
		"467ba665f9cffd8cf7670f1a4281ae31b3348669a557939ce063be49ea94a59b"
	canonical, err := koodrive.CanonicalRequest(req, body)
	if err != nil {
		t.Fatal(err)
	}
	if canonical != wantCanonical {
		t.Fatalf("canonical request:\n%q\nwant\n%q", canonical, wantCanonical)
	}
	if got, want := koodrive.StringToSign(canonical), "HMAC-SHA256\nf80739b0a38dc7722e806db235368f146e4db048a40c73658911b8b1fe7d3cc2"; got != want {
		t.Fatalf("string to sign %q, want %q", got, want)
	}
	if err := koodrive.NewAppSignature("a378demo", "kooflow-test-app-secret").Sign(req, body); err != nil {
		t.Fatal(err)
	}
	const want = "HMAC-SHA256 AppId=a378demo,SignedHeaders=host;x-date;x-user-id,Signature=0d36da42ebd4122423176ad6754950b37c7585d6b6f21d8428e38da525db2ade"
	if got := req.Header.Get("Authorization"); got != want {
		t.Fatalf("Authorization:\n%s\nwant\n%s", got, want)
	}
}

// TestCanonicalQueryAndURI checks §7's encoding: unreserved characters (A-Z a-z 0-9 - _ . ~)
// kept, every other byte %XY in upper-case hex (space %20, never "+"; UTF-8 byte by byte),
// "=" kept for empty values, parameters sorted by name in code-point order, and the path
// encoded per segment with a trailing "/".
func TestCanonicalQueryAndURI(t *testing.T) {
	cases := []struct {
		name, rawQuery, want string
	}{
		{"space sent as %20", "q=a%20b", "q=a%20b"},
		{"space sent form-encoded", "q=a+b", "q=a%20b"},
		{"tilde kept, even when sent encoded", "t=x%7Ey~z", "t=x~y~z"},
		{"non-ASCII as UTF-8 bytes", "city=Z%C3%BCrich", "city=Z%C3%BCrich"},
		{"reserved characters encoded", "v=a%2Fb%2Bc%3Dd%26e%2A", "v=a%2Fb%2Bc%3Dd%26e%2A"},
		{"unreserved kept", "v=AZaz09-_.~", "v=AZaz09-_.~"},
		{"empty value keeps =", "empty=&flag", "empty=&flag="},
		{"sorted by name in code-point order", "z=1&%C3%BC=2&a=3&B=4", "B=4&a=3&z=1&%C3%BC=2"},
		{"a repeated name sorted by value", "k=b&k=a", "k=a&k=b"},
		{"no query", "", ""},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(http.MethodGet, "https://kd.example/p", nil)
		req.URL.RawQuery = c.rawQuery
		req.Header.Set("X-Date", "20240909T033325Z")
		req.Header.Set("X-User-Id", "u")
		canonical, err := koodrive.CanonicalRequest(req, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := strings.Split(canonical, "\n")[2]; got != c.want {
			t.Errorf("%s: canonical query %q, want %q", c.name, got, c.want)
		}
	}

	// The client sends its queries canonically, so what goes on the wire is what is signed.
	q := url.Values{"pageCursor": {"a b~ü+/"}, "batchNo": {"B1"}}
	if got, want := koodrive.EncodeQuery(q), "batchNo=B1&pageCursor=a%20b~%C3%BC%2B%2F"; got != want {
		t.Errorf("EncodeQuery = %q, want %q", got, want)
	}

	for path, want := range map[string]string{
		"/koodrive/ose/v1/service": "/koodrive/ose/v1/service/",
		"/already/":                "/already/",
		"/a b/ü~":                  "/a%20b/%C3%BC~/",
		"":                         "/",
	} {
		req, _ := http.NewRequest(http.MethodGet, "https://kd.example/", nil)
		req.URL.Path = path
		req.Header.Set("X-Date", "20240909T033325Z")
		req.Header.Set("X-User-Id", "u")
		canonical, err := koodrive.CanonicalRequest(req, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Split(canonical, "\n")[1]; got != want {
			t.Errorf("canonical URI of %q = %q, want %q", path, got, want)
		}
	}
}

func TestCanonicalRequestNeedsTheSignedHeaders(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "https://kd.example/p", nil)
	req.Header.Set("X-Date", "20240909T033325Z")
	if _, err := koodrive.CanonicalRequest(req, nil); err == nil || !strings.Contains(err.Error(), "x-user-id") {
		t.Fatalf("err = %v, want one naming x-user-id", err)
	}
}

func TestConfigFromEnv(t *testing.T) {
	const secret, token = "s3cret-app-secret", "t0ken-value"
	cases := []struct {
		name      string
		env       map[string]string
		wantErr   []string // every one must appear in the error
		wantCreds string   // the signer's description when there is no error
	}{
		{name: "nothing set", wantErr: []string{"KOODRIVE_AUTH=token", "KOODRIVE_BASE_URL", "KOODRIVE_USER_ID", "KOODRIVE_ACCESS_TOKEN or KOODRIVE_ACCESS_TOKEN_FILE"}},
		{name: "app chosen by KOODRIVE_APP_ID", env: map[string]string{"KOODRIVE_APP_ID": "app-1"},
			wantErr: []string{"KOODRIVE_AUTH=app", "KOODRIVE_BASE_URL", "KOODRIVE_USER_ID", "KOODRIVE_APP_SECRET"}},
		{name: "app asked for", env: map[string]string{"KOODRIVE_AUTH": "app", "KOODRIVE_BASE_URL": "https://kd", "KOODRIVE_USER_ID": "u"},
			wantErr: []string{"KOODRIVE_APP_ID, KOODRIVE_APP_SECRET"}},
		{name: "unknown mode", env: map[string]string{"KOODRIVE_AUTH": "oauth", "KOODRIVE_BASE_URL": "https://kd", "KOODRIVE_USER_ID": "u"},
			wantErr: []string{`KOODRIVE_AUTH="oauth" is neither app nor token`}},
		{name: "two token sources", env: map[string]string{"KOODRIVE_BASE_URL": "https://kd", "KOODRIVE_USER_ID": "u",
			"KOODRIVE_ACCESS_TOKEN": token, "KOODRIVE_ACCESS_TOKEN_FILE": "/run/secrets/t"}, wantErr: []string{"set only one of"}},
		{name: "app", env: map[string]string{"KOODRIVE_BASE_URL": "https://kd", "KOODRIVE_USER_ID": "u", "KOODRIVE_APP_ID": "app-1",
			"KOODRIVE_APP_SECRET": secret, "KOODRIVE_ACCESS_TOKEN": token}, wantCreds: "app signature (KOODRIVE_APP_ID app-1)"},
		{name: "token forced despite an app ID", env: map[string]string{"KOODRIVE_AUTH": "token", "KOODRIVE_BASE_URL": "https://kd",
			"KOODRIVE_USER_ID": "u", "KOODRIVE_APP_ID": "app-1", "KOODRIVE_ACCESS_TOKEN": token}, wantCreds: "access token from KOODRIVE_ACCESS_TOKEN"},
		{name: "token file", env: map[string]string{"KOODRIVE_BASE_URL": "https://kd", "KOODRIVE_USER_ID": "u",
			"KOODRIVE_ACCESS_TOKEN_FILE": "/run/secrets/t"}, wantCreds: "access token from KOODRIVE_ACCESS_TOKEN_FILE /run/secrets/t"},
	}
	for _, c := range cases {
		cfg, err := koodrive.ConfigFromEnv(func(k string) string { return c.env[k] })
		if c.wantErr != nil {
			if err == nil {
				t.Errorf("%s: accepted", c.name)
				continue
			}
			for _, w := range c.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: error %q does not name %q", c.name, err, w)
				}
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), token) {
				t.Errorf("%s: error %q shows a secret", c.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got := cfg.Auth.(interface{ String() string }).String(); got != c.wantCreds {
			t.Errorf("%s: credentials %q, want %q", c.name, got, c.wantCreds)
		}
		if cfg.BaseURL != "https://kd" || cfg.UserID != "u" {
			t.Errorf("%s: config %+v", c.name, cfg)
		}
	}
}
