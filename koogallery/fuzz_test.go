package koogallery

import (
	"errors"
	"testing"
	"time"
)

// FuzzV1Query: parsing and verifying any query string never panics, refusals are
// ParamErrors or ErrBadToken, and nothing verifies without the key.
func FuzzV1Query(f *testing.F) {
	f.Add("activity=expireInstance&instanceId=inst-0001&orderId=CS2403150001ABCDE&testFlag=1&timeStamp=20240315083000123&authToken=uVvBo5USGllbIs/tvqxxwOM1LalW+UEi/2f834oOUC0=")
	f.Add("instanceId=a&instanceId=b")
	f.Add("a=%zz&authToken=x")
	f.Add("authToken=a+b%2Bc&timeStamp=1")
	f.Add("=&&=x&\xff=\xfe")
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := ParseQuery(raw)
		if err != nil {
			var pe *ParamError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a ParamError", err)
			}
			return
		}
		if err := VerifyAuthToken(specKey, p); err == nil && p["authToken"] != AuthToken(specKey, p) {
			t.Fatal("verified a token that does not match")
		}
		if err := CheckV1Common(p); err != nil {
			var pe *ParamError
			if !errors.As(err, &pe) {
				t.Fatalf("CheckV1Common error %v is not a ParamError", err)
			}
		}
	})
}

// FuzzV2Body: any body and auth parameters are either verified and decoded, or refused
// with ErrBadToken/ErrStale/ParamError; never a panic.
func FuzzV2Body(f *testing.F) {
	f.Add([]byte(`{"activity":"updateInstanceStatus","instanceId":"inst-0001","status":"FREEZE","testFlag":"1"}`), "A1B2C3D4E5F6", "1710491400123", "A353B0C6B859972F8DBF2A14A4951BAB014DCB2920EA899C338B155E23D0C2DF")
	f.Add([]byte(`{"activity":1}`), "n", "1710491400", "00")
	f.Add([]byte("\xff\xfe"), "", "", "")
	f.Fuzz(func(t *testing.T, body []byte, nonce, ts, sig string) {
		err := VerifyV2(specKey, V2Auth{Signature: sig, Timestamp: ts, Nonce: nonce}, body, time.UnixMilli(1710491400123))
		if err != nil && !errors.Is(err, ErrBadToken) && !errors.Is(err, ErrStale) {
			t.Fatalf("unexpected error %v", err)
		}
		if err == nil && V2Signature(specKey, nonce, ts, body) == "" {
			t.Fatal("verified without a signature")
		}
		if _, err := DecodeV2(body); err != nil {
			var pe *ParamError
			if !errors.As(err, &pe) {
				t.Fatalf("DecodeV2 error %v is not a ParamError", err)
			}
		}
	})
}
