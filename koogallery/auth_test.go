package koogallery

import (
	"net/url"
	"strings"
	"testing"
)

const specKey = "demoKey-0000-1111-2222-333344445555"

func TestAuthTokenMatchesSpecVector(t *testing.T) {
	p, err := ParseQuery("activity=expireInstance&instanceId=inst-0001&orderId=CS2403150001ABCDE&testFlag=1&timeStamp=20240315083000123")
	if err != nil {
		t.Fatal(err)
	}
	const want = "uVvBo5USGllbIs/tvqxxwOM1LalW+UEi/2f834oOUC0="
	if got := AuthToken(specKey, p); got != want {
		t.Fatalf("AuthToken = %s, want %s", got, want)
	}
}

func TestVerifyAcceptsRawAndEncodedPlus(t *testing.T) {
	base := "activity=expireInstance&instanceId=inst-0001&orderId=CS2403150001ABCDE&testFlag=1&timeStamp=20240315083000123"
	token := "uVvBo5USGllbIs/tvqxxwOM1LalW+UEi/2f834oOUC0="
	for name, q := range map[string]string{
		"raw":     base + "&authToken=" + token,
		"encoded": base + "&authToken=" + url.QueryEscape(token),
		"first":   "authToken=" + url.QueryEscape(token) + "&" + base,
	} {
		p, err := ParseQuery(q)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := VerifyAuthToken(specKey, p); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	good := "activity=expireInstance&instanceId=inst-0001&orderId=CS2403150001ABCDE&testFlag=1&timeStamp=20240315083000123"
	token := "uVvBo5USGllbIs/tvqxxwOM1LalW+UEi/2f834oOUC0="
	cases := map[string]string{
		"wrong key":       "",
		"missing token":   good,
		"tampered value":  strings.Replace(good, "inst-0001", "inst-0002", 1) + "&authToken=" + token,
		"space for plus":  good + "&authToken=" + strings.ReplaceAll(token, "+", "%20"),
		"extra parameter": good + "&x=1&authToken=" + token,
	}
	for name, q := range cases {
		key := specKey
		if name == "wrong key" {
			q = good + "&authToken=" + token
			key = "another-key"
		}
		p, err := ParseQuery(q)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := VerifyAuthToken(key, p); err == nil {
			t.Errorf("%s: verified, want rejection", name)
		}
	}
}

func TestParseQueryRefusesHostileInput(t *testing.T) {
	for name, q := range map[string]string{
		"duplicate":  "instanceId=a&instanceId=b",
		"bad escape": "instanceId=%zz",
		"oversize":   "instanceId=" + strings.Repeat("a", MaxQueryBytes),
		"long value": "instanceId=" + strings.Repeat("a", MaxValueBytes+1),
		"many":       strings.Repeat("a=1&", 0) + manyParams(MaxParams+1),
	} {
		if _, err := ParseQuery(q); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func manyParams(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = "p" + strings.Repeat("x", i) + "=1"
	}
	return strings.Join(parts, "&")
}

func TestSignedQueryRoundTrip(t *testing.T) {
	p := Params{"activity": "expireInstance", "instanceId": "i+1 2", "orderId": "o", "timeStamp": "20240315083000123"}
	parsed, err := ParseQuery(SignedQuery(specKey, p))
	if err != nil {
		t.Fatal(err)
	}
	if parsed["instanceId"] != "i+1 2" {
		t.Fatalf("instanceId decoded as %q", parsed["instanceId"])
	}
	if err := VerifyAuthToken(specKey, parsed); err != nil {
		t.Fatal(err)
	}
}

func TestBodySignatureMatchesSpecVector(t *testing.T) {
	body := []byte(`{"resultCode":"000000","resultMsg":"success."}`)
	const want = "xoWiz9FNQCjdyj29rEejSWq4ActPS0ARiO06uXGPFsM="
	if got := BodySignature(specKey, body); got != want {
		t.Fatalf("BodySignature = %s, want %s", got, want)
	}
	header := BodySignHeader(specKey, body)
	if header != `sign_type="HMAC-SHA256", signature= "`+want+`"` {
		t.Fatalf("header = %s", header)
	}
	if err := VerifyBodySignHeader(specKey, header, body); err != nil {
		t.Fatal(err)
	}
	if err := VerifyBodySignHeader(specKey, header, append(body, ' ')); err == nil {
		t.Fatal("a changed body verified")
	}
}

func TestCheckV1Common(t *testing.T) {
	ok := Params{"instanceId": "inst-1", "orderId": "CS1", "timeStamp": "20240315083000123", "testFlag": "1"}
	if err := CheckV1Common(ok); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(Params){
		"bad flag":  func(p Params) { p["testFlag"] = "2" },
		"bad stamp": func(p Params) { p["timeStamp"] = "yesterday" },
		"no stamp":  func(p Params) { delete(p, "timeStamp") },
	} {
		p := Params{}
		for k, v := range ok {
			p[k] = v
		}
		mutate(p)
		if err := CheckV1Common(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for _, bad := range []string{"", "x' OR '1'='1", "inst-\xff", strings.Repeat("a", 65)} {
		if err := CheckID("instanceId", bad); err == nil {
			t.Errorf("CheckID(%q) accepted", bad)
		}
	}
}
