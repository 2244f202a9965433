package koogallery

import (
	"errors"
	"testing"
	"time"
)

func TestV2SignatureMatchesSpecVector(t *testing.T) {
	body := []byte(`{"activity":"updateInstanceStatus","instanceId":"inst-0001","status":"FREEZE","testFlag":"1"}`)
	const want = "A353B0C6B859972F8DBF2A14A4951BAB014DCB2920EA899C338B155E23D0C2DF"
	if got := V2Signature(specKey, "A1B2C3D4E5F6", "1710491400123", body); got != want {
		t.Fatalf("V2Signature = %s, want %s", got, want)
	}
	now := time.UnixMilli(1710491400123).Add(10 * time.Second)
	auth := V2Auth{Signature: "a353b0c6b859972f8dbf2a14a4951bab014dcb2920ea899c338b155e23d0c2df", Timestamp: "1710491400123", Nonce: "A1B2C3D4E5F6"}
	if err := VerifyV2(specKey, auth, body, now); err != nil {
		t.Fatalf("lower-case signature: %v", err)
	}
	if err := VerifyV2(specKey, auth, append(body, ' '), now); !errors.Is(err, ErrBadToken) {
		t.Fatalf("changed body: %v", err)
	}
	if err := VerifyV2(specKey, auth, body, now.Add(2*time.Minute)); !errors.Is(err, ErrStale) {
		t.Fatalf("stale: %v", err)
	}
	if err := VerifyV2(specKey, V2Auth{Timestamp: "1", Nonce: "n"}, body, now); !errors.Is(err, ErrBadToken) {
		t.Fatalf("missing signature: %v", err)
	}
}

func TestV2Timestamps(t *testing.T) {
	ms, err := ParseV2Timestamp("1710491400123")
	if err != nil || ms.UnixMilli() != 1710491400123 {
		t.Fatalf("ms: %v %v", ms, err)
	}
	s, err := ParseV2Timestamp("1710491400")
	if err != nil || s.Unix() != 1710491400 {
		t.Fatalf("s: %v %v", s, err)
	}
	for _, bad := range []string{"", "abc", "171049140012", "-1710491400123"} {
		if _, err := ParseV2Timestamp(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDecodeV2(t *testing.T) {
	req, err := DecodeV2([]byte(`{"activity":"refreshInstance","instanceId":"i","expireTime":"20270101000000","extra":"kept out"}`))
	if err != nil || req.Activity != "refreshInstance" || req.ExpireTime != "20270101000000" {
		t.Fatalf("%+v %v", req, err)
	}
	for _, bad := range []string{`[]`, `{"activity":1}`, `{}`, `{"activity":"x"`} {
		if _, err := DecodeV2([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
