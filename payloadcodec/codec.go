package payloadcodec

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

const (
	// MetadataEncoding is the value of an encrypted payload's "encoding" metadata.
	MetadataEncoding = "binary/encrypted"
	// MetadataKeyID is the metadata entry that names the key a payload is encrypted under.
	MetadataKeyID = "encryption-key-id"
	// MetadataCipher is the metadata entry that names the cipher, for future formats.
	MetadataCipher = "encryption-cipher"
	// CipherAES256GCM is the only cipher this codec writes and reads.
	CipherAES256GCM = "AES256-GCM"
)

// aadPrefix binds a ciphertext to its format and key id, so that the key-id metadata
// cannot be swapped without decryption failing.
const aadPrefix = "kooflow-payload-v1:"

// Codec is a converter.PayloadCodec that encrypts each payload (marshalled whole, its
// metadata included) with AES-256-GCM under the keyring's first key and a random nonce.
// Decode accepts any key of the keyring and passes payloads without MetadataEncoding
// through unchanged. It is safe for concurrent use.
type Codec struct {
	ring *Keyring
}

var _ converter.PayloadCodec = (*Codec)(nil)

// NewCodec returns the codec for ring.
func NewCodec(ring *Keyring) *Codec { return &Codec{ring: ring} }

// Keyring is the codec's keyring.
func (c *Codec) Keyring() *Keyring { return c.ring }

// UnknownKeyError is returned when a payload is encrypted under a key id that is not in
// the keyring, typically because a key was dropped from KOOFLOW_PAYLOAD_KEYS while
// histories still use it.
type UnknownKeyError struct {
	// KeyID is the id found in the payload's metadata.
	KeyID string
	// Known lists the keyring's ids.
	Known []string
}

func (e *UnknownKeyError) Error() string {
	return fmt.Sprintf("payload is encrypted under key id %q, which is not among the configured payload keys (%s); add it back to KOOFLOW_PAYLOAD_KEYS to decrypt",
		e.KeyID, strings.Join(e.Known, ", "))
}

// Encode encrypts every payload under the encryption key.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	id := c.ring.EncryptionKeyID()
	aead := c.ring.aeads[id]
	aad := []byte(aadPrefix + id)
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("encrypt payload: marshal: %w", err)
		}
		ns := aead.NonceSize()
		buf := make([]byte, ns, ns+len(plain)+aead.Overhead())
		if _, err := rand.Read(buf); err != nil {
			return payloads, fmt.Errorf("encrypt payload: nonce: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(MetadataEncoding),
				MetadataKeyID:              []byte(id),
				MetadataCipher:             []byte(CipherAES256GCM),
			},
			Data: aead.Seal(buf, buf[:ns], plain, aad),
		}
	}
	return out, nil
}

// Decode decrypts the payloads this codec (or an earlier key) encrypted and passes every
// other payload through unchanged. A payload under a key id missing from the keyring
// fails with an *UnknownKeyError naming the id.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != MetadataEncoding {
			out[i] = p
			continue
		}
		d, err := c.decrypt(p)
		if err != nil {
			return payloads, err
		}
		out[i] = d
	}
	return out, nil
}

func (c *Codec) decrypt(p *commonpb.Payload) (*commonpb.Payload, error) {
	md := p.GetMetadata()
	if ciph, ok := md[MetadataCipher]; ok && string(ciph) != CipherAES256GCM {
		return nil, fmt.Errorf("decrypt payload: cipher %q is not supported (only %s)", truncate(string(ciph)), CipherAES256GCM)
	}
	raw, ok := md[MetadataKeyID]
	if !ok {
		return nil, errors.New("decrypt payload: encrypted payload has no " + MetadataKeyID + " metadata")
	}
	id := string(raw)
	if ValidKeyID(id) != nil {
		return nil, fmt.Errorf("decrypt payload: malformed key id %q in metadata", truncate(id))
	}
	aead, ok := c.ring.aeads[id]
	if !ok {
		return nil, &UnknownKeyError{KeyID: id, Known: c.ring.KeyIDs()}
	}
	data := p.GetData()
	ns := aead.NonceSize()
	if len(data) < ns+aead.Overhead() {
		return nil, fmt.Errorf("decrypt payload under key %q: ciphertext is %d bytes, too short", id, len(data))
	}
	plain, err := aead.Open(nil, data[:ns], data[ns:], []byte(aadPrefix+id))
	if err != nil {
		return nil, fmt.Errorf("decrypt payload under key %q: authentication failed (wrong key material for this id, or the payload was altered)", id)
	}
	var orig commonpb.Payload
	if err := proto.Unmarshal(plain, &orig); err != nil {
		return nil, fmt.Errorf("decrypt payload under key %q: unmarshal: %w", id, err)
	}
	return &orig, nil
}

// truncate shortens untrusted metadata before it is quoted in an error.
func truncate(s string) string {
	if len(s) > maxKeyIDLen {
		return s[:maxKeyIDLen] + "…"
	}
	return s
}
