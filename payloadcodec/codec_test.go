package payloadcodec

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
)

// expirationInput has the shape and typical contents of an expiration workflow's input.
type expirationInput struct {
	Source, Subject, Period    string
	SubscriptionID             int64
	InstanceID, CarrierUserID  string
	PackageID, GIccid, OrderID string
	Test                       bool
}

var sampleInput = expirationInput{
	Source: "smarthub", Subject: "89860123456789012345/PK-GOLD-200", Period: "2026-11-30T16:00:00Z",
	SubscriptionID: 4711, InstanceID: "inst-7f3a9c2e-5b1d-4e8f-a0c6-2d9b8e7f6a51",
	CarrierUserID: "carrier-user-0042-secret", PackageID: "pkg-koodrive-200g-annual",
	GIccid: "89860123456789012345", OrderID: "order-2026-000123456",
}

// keyEntry returns an id:base64key entry whose key bytes are all b.
func keyEntry(id string, b byte) string {
	return id + ":" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, KeySize))
}

func mustKeys(t testing.TB, s string) *Codec {
	t.Helper()
	ring, err := ParseKeys(s)
	if err != nil {
		t.Fatal(err)
	}
	return NewCodec(ring)
}

func TestParseKeysErrorsAreSpecificAndNeverEchoKeys(t *testing.T) {
	short := base64.StdEncoding.EncodeToString([]byte("sixteen-byte-key"))
	cases := []struct{ in, want, secret string }{
		{"", "entry 1 is empty", ""},
		{keyEntry("a", 1) + ",", "entry 2 is empty", ""},
		{"nokeyhere", "no ':' found", ""},
		{"bad id:" + short, "outside A-Z", ""},
		{":" + short, "key id is empty", ""},
		{strings.Repeat("x", 65) + ":" + short, "at most 64", ""},
		{"k1:" + short, `key "k1" is 16 bytes; AES-256 needs 32`, short},
		{"k1:not*base64!!", `key "k1" is not valid standard base64`, "not*base64!!"},
		{keyEntry("k1", 1) + "," + keyEntry("k1", 2), `key id "k1" appears twice`, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, KeySize))},
	}
	for _, c := range cases {
		_, err := ParseKeys(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseKeys(%q) = %v, want error containing %q", c.in, err, c.want)
			continue
		}
		if c.secret != "" && strings.Contains(err.Error(), c.secret) {
			t.Errorf("error %q echoes key material", err)
		}
	}
	ring, err := ParseKeys(" new:" + base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{7}, KeySize)) + " , " + keyEntry("old", 8))
	if err != nil {
		t.Fatal(err)
	}
	if ring.EncryptionKeyID() != "new" || strings.Join(ring.KeyIDs(), ",") != "new,old" {
		t.Errorf("ids %v, encryption key %q", ring.KeyIDs(), ring.EncryptionKeyID())
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys")
	content := "# rotated 2026-11\n\n" + keyEntry("b", 2) + "\n  " + keyEntry("a", 1) + "  \n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	ring, err := ReadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ring.KeyIDs(), ","); got != "b,a" {
		t.Errorf("ids %q, want b,a", got)
	}
	os.WriteFile(path, []byte("# c\n"+keyEntry("a", 1)+"\nb:AAAA\n"), 0o600)
	if _, err := ReadKeyFile(path); err == nil || !strings.Contains(err.Error(), `line 3: key "b" is 3 bytes`) {
		t.Errorf("bad line: %v", err)
	}
	os.WriteFile(path, []byte("# only comments\n"), 0o600)
	if _, err := ReadKeyFile(path); err == nil || !strings.Contains(err.Error(), "no keys") {
		t.Errorf("empty file: %v", err)
	}
	os.WriteFile(path, []byte(keyEntry("a", 1)), 0o600)
	os.Chmod(path, 0o644)
	if _, err := ReadKeyFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable file: %v", err)
	}
}

func TestCodecEncryptsAndRoundTrips(t *testing.T) {
	codec := mustKeys(t, keyEntry("k1", 1))
	dc := DataConverter(codec)
	p, err := dc.ToPayload(sampleInput)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.Metadata[converter.MetadataEncoding]); got != MetadataEncoding {
		t.Errorf("encoding %q", got)
	}
	if got := string(p.Metadata[MetadataKeyID]); got != "k1" {
		t.Errorf("key id %q", got)
	}
	for _, pii := range []string{sampleInput.CarrierUserID, sampleInput.GIccid, sampleInput.OrderID, sampleInput.PackageID, "json/plain"} {
		if bytes.Contains(p.Data, []byte(pii)) {
			t.Errorf("ciphertext contains %q", pii)
		}
	}
	var back expirationInput
	if err := dc.FromPayload(p, &back); err != nil {
		t.Fatal(err)
	}
	if back != sampleInput {
		t.Errorf("round trip: %+v", back)
	}
	// A fresh nonce each time: the same value never encrypts to the same bytes.
	p2, _ := dc.ToPayload(sampleInput)
	if bytes.Equal(p.Data, p2.Data) {
		t.Error("two encryptions of the same value are identical")
	}
}

func TestDecodePassesUnencryptedPayloadsThrough(t *testing.T) {
	plain, err := converter.GetDefaultDataConverter().ToPayload(sampleInput)
	if err != nil {
		t.Fatal(err)
	}
	var back expirationInput
	if err := DataConverter(mustKeys(t, keyEntry("k1", 1))).FromPayload(plain, &back); err != nil {
		t.Fatal(err)
	}
	if back != sampleInput {
		t.Errorf("pass-through: %+v", back)
	}
}

func TestRotationAndUnknownKey(t *testing.T) {
	underA, err := mustKeys(t, keyEntry("A", 1)).Encode([]*commonpb.Payload{{Data: []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}
	rotated := mustKeys(t, keyEntry("B", 2)+","+keyEntry("A", 1))
	got, err := rotated.Decode(underA)
	if err != nil || string(got[0].Data) != "x" {
		t.Fatalf("B,A decoding A: %v, %v", got, err)
	}
	underB, _ := rotated.Encode([]*commonpb.Payload{{Data: []byte("y")}})
	if id := string(underB[0].Metadata[MetadataKeyID]); id != "B" {
		t.Errorf("rotated keyring encrypts under %q, want B", id)
	}
	_, err = mustKeys(t, keyEntry("C", 3)).Decode(underA)
	var unknown *UnknownKeyError
	if !errors.As(err, &unknown) || unknown.KeyID != "A" || !strings.Contains(err.Error(), `key id "A"`) {
		t.Errorf("unknown key: %v", err)
	}
	// The right id with the wrong key material, and altered ciphertext, are refused.
	if _, err := mustKeys(t, keyEntry("A", 9)).Decode(underA); err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Errorf("wrong key material: %v", err)
	}
	tampered := &commonpb.Payload{Metadata: underA[0].Metadata, Data: bytes.Clone(underA[0].Data)}
	tampered.Data[len(tampered.Data)-1] ^= 1
	if _, err := rotated.Decode([]*commonpb.Payload{tampered}); err == nil {
		t.Error("altered ciphertext decoded")
	}
	relabelled := &commonpb.Payload{Metadata: map[string][]byte{
		converter.MetadataEncoding: []byte(MetadataEncoding), MetadataKeyID: []byte("B")}, Data: underA[0].Data}
	if _, err := rotated.Decode([]*commonpb.Payload{relabelled}); err == nil {
		t.Error("payload relabelled with another key id decoded")
	}
}

func TestFromEnv(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	c, err := FromEnv(env(EnvKeys, keyEntry("prod-1", 1)))
	if err != nil || c == nil || c.Keyring().EncryptionKeyID() != "prod-1" {
		t.Errorf("keys: %v, %v", c, err)
	}
	if c, err := FromEnv(env(EnvEncryption, "off")); err != nil || c != nil {
		t.Errorf("off: %v, %v", c, err)
	}
	if _, err := FromEnv(env()); err == nil || !strings.Contains(err.Error(), EnvKeys+"=") || !strings.Contains(err.Error(), EnvEncryption+"=off") {
		t.Errorf("nothing set: %v", err)
	}
	if _, err := FromEnv(env(EnvKeys, keyEntry("a", 1), EnvEncryption, "off")); err == nil || !strings.Contains(err.Error(), "unset one") {
		t.Errorf("keys and off: %v", err)
	}
	if _, err := FromEnv(env(EnvEncryption, "maybe")); err == nil || !strings.Contains(err.Error(), "on or off") {
		t.Errorf("bad switch: %v", err)
	}
	if _, err := FromEnv(env(EnvKeys, keyEntry("a", 1), EnvKeysFile, "/x")); err == nil || !strings.Contains(err.Error(), "use one") {
		t.Errorf("both forms: %v", err)
	}
	if _, err := FromEnv(env(EnvKeys, "a:QUJD")); err == nil || !strings.HasPrefix(err.Error(), EnvKeys+": ") {
		t.Errorf("bad key names the variable: %v", err)
	}
}

// TestForOperator: an operator command decodes with the environment's keys, else with
// the key file kooflow dev left in the data directory — which it never creates — else
// it says what to set.
func TestForOperator(t *testing.T) {
	none := func(string) string { return "" }
	dir := t.TempDir()
	if _, err := ForOperator(none, dir); err == nil || !strings.Contains(err.Error(), EnvKeys+"=") {
		t.Fatalf("no keys anywhere: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, DevKeyFile)); !os.IsNotExist(err) {
		t.Fatalf("an operator command created a key file: %v", err)
	}
	if _, err := EnsureDevKey(dir); err != nil {
		t.Fatal(err)
	}
	dev, err := ForOperator(none, dir)
	if err != nil || dev == nil || !strings.HasPrefix(dev.Keyring().EncryptionKeyID(), "dev-") {
		t.Fatalf("the dev stack's key: %v, %v", dev, err)
	}
	prod, err := ForOperator(func(k string) string {
		if k == EnvKeys {
			return keyEntry("prod-1", 1)
		}
		return ""
	}, dir)
	if err != nil || prod.Keyring().EncryptionKeyID() != "prod-1" {
		t.Fatalf("the environment's keys win over the data directory's: %v, %v", prod, err)
	}
	off, err := ForOperator(func(k string) string {
		if k == EnvEncryption {
			return "off"
		}
		return ""
	}, t.TempDir())
	if err != nil || off != nil {
		t.Fatalf("off: %v, %v", off, err)
	}
}

func TestDevKeyIsCreatedOnceAndReused(t *testing.T) {
	dir := t.TempDir()
	noEnv := func(string) string { return "" }
	first, err := ForDev(noEnv, dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, DevKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("dev key file mode %04o", fi.Mode().Perm())
	}
	enc, err := first.Encode([]*commonpb.Payload{{Data: []byte("kept")}})
	if err != nil {
		t.Fatal(err)
	}
	second, err := ForDev(noEnv, dir)
	if err != nil {
		t.Fatal(err)
	}
	if first.Keyring().EncryptionKeyID() != second.Keyring().EncryptionKeyID() {
		t.Errorf("second start generated a new key: %s then %s", first.Keyring().EncryptionKeyID(), second.Keyring().EncryptionKeyID())
	}
	if dec, err := second.Decode(enc); err != nil || string(dec[0].Data) != "kept" {
		t.Errorf("second start cannot read the first's payloads: %v", err)
	}
	if c, err := ForDev(func(k string) string {
		if k == EnvEncryption {
			return "off"
		}
		return ""
	}, dir); err != nil || c != nil {
		t.Errorf("dev with encryption off: %v, %v", c, err)
	}
}

func TestFailureConverterEncryptsMessages(t *testing.T) {
	codec := mustKeys(t, keyEntry("k1", 1))
	fc := FailureConverter(codec)
	f := fc.ErrorToFailure(temporal.NewApplicationError("KooDrive rejected user "+sampleInput.CarrierUserID, "KooDriveRejected"))
	if strings.Contains(f.GetMessage(), sampleInput.CarrierUserID) {
		t.Errorf("failure message in clear: %q", f.GetMessage())
	}
	ea := f.GetEncodedAttributes()
	if ea == nil || string(ea.Metadata[converter.MetadataEncoding]) != MetadataEncoding {
		t.Fatalf("encoded attributes not encrypted: %v", ea)
	}
	back := fc.FailureToError(f)
	if !strings.Contains(back.Error(), sampleInput.CarrierUserID) {
		t.Errorf("decoded failure: %v", back)
	}
}
