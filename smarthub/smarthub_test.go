package smarthub

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const vendorExample = `{
    "eventId": "150aa0f9bc6441378938a1e6c6e222f9",
    "datePush": "2019-05-16T10:59:29.789Z",
    "signature": "58210277eeea982589a3f2c5711ce5ac23a866298d77fcb5c30bb1e0aa9c345f",
    "eventType": "RULE_TRIGGERED",
    "data": {
        "ruleName": "string",
        "triggerDate": "2018-10-10 10:32:50",
        "gIccid": "8986011805021000040",
        "triggerType": "SERVICE_PACKAGE_EXPIRED",
        "packageCode": "PRE-IND_60M",
        "packageName": "PRE-IND_60M",
        "activateDate": "2018-10-10T10:32:50+0000",
        "validThru": "2020-10-10T10:32:50+0000"
    }
}`

func TestDecodeVendorExample(t *testing.T) {
	ev, err := Decode([]byte(vendorExample))
	if err != nil {
		t.Fatal(err)
	}
	if !ev.IsPackageExpired() || ev.Data.GIccid != "8986011805021000040" || ev.Data.PackageCode != "PRE-IND_60M" {
		t.Fatalf("event = %+v", ev)
	}
	if !ev.ValidThru.Equal(time.Date(2020, 10, 10, 10, 32, 50, 0, time.UTC)) || !ev.PushedAt.Equal(time.Date(2019, 5, 16, 10, 59, 29, 789e6, time.UTC)) {
		t.Fatalf("times = %s, %s", ev.ValidThru, ev.PushedAt)
	}
}

func TestTimeFormats(t *testing.T) {
	want := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	for _, v := range []string{"2026-11-01T16:00:00+0800", "2026-11-01T16:00:00+08:00", "2026-11-01T08:00:00Z", "2026-11-01 08:00:00", "2026-11-01T08:00:00.000Z"} {
		got, err := ParseTime(v)
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: %s, %v", v, got, err)
		}
	}
	if _, err := ParseTime("01/11/2026"); err == nil {
		t.Error("accepted 01/11/2026")
	}
}

func TestDecodeNamesTheField(t *testing.T) {
	cases := map[string]string{
		`not json`:                     "JSON",
		`{"data":{}}`:                  "eventId",
		`{"eventId":"e1"}`:             "data",
		`{"eventId":"e1","data":null}`: "data",
		`{"eventId":"e 1","data":{}}`:  "eventId",
		`{"eventId":"e1","datePush":"yesterday","data":{}}`:                                                "datePush",
		`{"eventId":"e1","data":[]}`:                                                                       "data",
		`{"eventId":"e1","data":{"triggerType":"SERVICE_PACKAGE_EXPIRED","packageCode":"P"}}`:              "data.gIccid",
		`{"eventId":"e1","data":{"triggerType":"SERVICE_PACKAGE_EXPIRED","gIccid":"1"}}`:                   "data.packageCode",
		`{"eventId":"e1","data":{"triggerType":"SERVICE_PACKAGE_EXPIRED","gIccid":"1","packageCode":"P"}}`: "data.validThru",
		`{"eventId":"e1","data":{"gIccid":5}}`:                                                             "data",
		`{"eventId":"e1","data":{}} {}`:                                                                    "after",
	}
	for body, field := range cases {
		_, err := Decode([]byte(body))
		var fe *FieldError
		if !errors.As(err, &fe) || !strings.Contains(fe.Error(), field) {
			t.Errorf("%s: %v, want it to name %s", body, err, field)
		}
	}
	if _, err := Decode([]byte(strings.Repeat(" ", MaxBodyBytes+1))); err == nil {
		t.Error("accepted an oversized body")
	}
	if _, err := Decode([]byte("{\"eventId\":\"e1\",\"data\":{\"ruleName\":\"\xff\"}}")); err == nil {
		t.Error("accepted invalid UTF-8")
	}
}

func TestAPIKeyAndSignature(t *testing.T) {
	if !ValidAPIKey("k", "k") || ValidAPIKey("k", "K") || ValidAPIKey("", "") {
		t.Fatal("API key comparison is wrong")
	}
	env := Envelope{EventID: "e1", DatePush: "2026-11-01T08:00:00Z"}
	env.Signature = Sign("k", env.EventID, env.DatePush)
	if len(env.Signature) != 64 || !VerifySignature("k", env) || VerifySignature("other", env) {
		t.Fatal("signature round trip failed")
	}
	env.Signature = strings.ToUpper(env.Signature)
	if !VerifySignature("k", env) {
		t.Fatal("upper-case hex refused")
	}
	for _, v := range []string{"", "log", "LOG", "off", "enforce"} {
		if _, err := ParseSignatureMode(v); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
	if _, err := ParseSignatureMode("strict"); err == nil {
		t.Error("accepted mode strict")
	}
}

// FuzzDecode: no input panics, and every refusal is a *FieldError (answered with 400).
func FuzzDecode(f *testing.F) {
	f.Add([]byte(vendorExample))
	f.Add([]byte(`{"eventId":"e1","data":{}}`))
	f.Add([]byte(`{"eventId":"e1","data":{"triggerType":"SERVICE_PACKAGE_EXPIRED","gIccid":"1","packageCode":"P","validThru":"2026-11-01 08:00:00"}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"eventId":1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := Decode(body)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FieldError", err)
			}
			return
		}
		if ev.EventID == "" || len(ev.Data.GIccid) > 64 {
			t.Fatalf("accepted an invalid event: %+v", ev)
		}
		if ev.IsPackageExpired() && ev.ValidThru.IsZero() {
			t.Fatalf("expiry without validThru: %+v", ev)
		}
	})
}
