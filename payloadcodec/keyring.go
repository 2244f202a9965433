// Package payloadcodec encrypts every Temporal payload kooflow writes (workflow and
// activity inputs and results, signals, queries, memos, user metadata and, through the
// failure converter, error messages and stack traces) with AES-256-GCM, so that
// subscriber data — carrier user IDs, ICCIDs, order and package IDs — never reaches
// Temporal's database, its backups or its UI in clear text.
//
// Keys come from KOOFLOW_PAYLOAD_KEYS (`id:base64key[,id:base64key…]`) or from a file
// named by KOOFLOW_PAYLOAD_KEYS_FILE (one `id:base64key` a line, `#` comments). The first
// key encrypts, every key decrypts, and the key id travels in the payload's metadata, so
// a key is rotated by putting the new one first (`B,A`) and dropping the old one only
// after every history that used it is past retention. Payloads without the codec's
// metadata pass through undecoded, so histories recorded before encryption still replay.
//
// The package also serves Temporal's remote codec protocol (see NewHandler) so that an
// authorised Temporal UI or CLI user sees decoded payloads.
package payloadcodec

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeySize is the length in bytes of an AES-256 key.
const KeySize = 32

// maxKeyIDLen bounds a key id; ids travel in every payload's metadata.
const maxKeyIDLen = 64

// Keyring holds the payload keys: the first encrypts, all decrypt.
type Keyring struct {
	ids   []string
	aeads map[string]cipher.AEAD
}

// ParseKeys parses the KOOFLOW_PAYLOAD_KEYS form: comma-separated `id:base64key` entries
// (spaces around entries are ignored), the first being the encryption key. Errors name
// the entry's position and id, never its key material.
func ParseKeys(s string) (*Keyring, error) {
	r := &Keyring{aeads: map[string]cipher.AEAD{}}
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return nil, fmt.Errorf("payload keys: entry %d is empty (expected id:base64key[,id:base64key…])", i+1)
		}
		if err := r.add(entry); err != nil {
			return nil, fmt.Errorf("payload keys: entry %d: %w", i+1, err)
		}
	}
	return r, nil
}

// ParseKeyFile parses the key-file form: one `id:base64key` a line, the first being the
// encryption key; blank lines and lines starting with `#` are ignored. Errors name the
// line and id, never key material.
func ParseKeyFile(data []byte) (*Keyring, error) {
	r := &Keyring{aeads: map[string]cipher.AEAD{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := r.add(line); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	if len(r.ids) == 0 {
		return nil, errors.New("no keys in the file (expected one id:base64key a line)")
	}
	return r, nil
}

// ReadKeyFile reads and parses a key file (see ParseKeyFile). It refuses a file that
// other users can read or write, as ssh does for private keys.
func ReadKeyFile(path string) (*Keyring, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("payload key file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("payload key file %s: permissions %04o let other users read it; chmod 600 it", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("payload key file: %w", err)
	}
	r, err := ParseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("payload key file %s: %w", path, err)
	}
	return r, nil
}

func (r *Keyring) add(entry string) error {
	id, b64, ok := strings.Cut(entry, ":")
	if !ok {
		return errors.New("expected id:base64key (no ':' found)")
	}
	id, b64 = strings.TrimSpace(id), strings.TrimSpace(b64)
	if err := ValidKeyID(id); err != nil {
		return err
	}
	if _, dup := r.aeads[id]; dup {
		return fmt.Errorf("key id %q appears twice", id)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		if key, err = base64.RawStdEncoding.DecodeString(b64); err != nil {
			return fmt.Errorf("key %q is not valid standard base64", id)
		}
	}
	if len(key) != KeySize {
		return fmt.Errorf("key %q is %d bytes; AES-256 needs %d (generate one with `openssl rand -base64 32`)", id, len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return fmt.Errorf("key %q: %w", id, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return fmt.Errorf("key %q: %w", id, err)
	}
	r.ids = append(r.ids, id)
	r.aeads[id] = aead
	return nil
}

// ValidKeyID reports whether id may name a key: 1 to 64 characters from A–Z, a–z, 0–9,
// '.', '_' and '-'.
func ValidKeyID(id string) error {
	if id == "" {
		return errors.New("key id is empty")
	}
	if len(id) > maxKeyIDLen {
		return fmt.Errorf("key id is %d characters; at most %d", len(id), maxKeyIDLen)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("key id %q has a character outside A-Z a-z 0-9 . _ -", id)
		}
	}
	return nil
}

// EncryptionKeyID is the id of the key new payloads are encrypted with.
func (r *Keyring) EncryptionKeyID() string { return r.ids[0] }

// KeyIDs lists every key id, the encryption key first. Ids are not secret.
func (r *Keyring) KeyIDs() []string { return append([]string(nil), r.ids...) }

// NewKeyEntry generates a random 32-byte key and returns it in the `id:base64key` form.
func NewKeyEntry(id string) (string, error) {
	if err := ValidKeyID(id); err != nil {
		return "", err
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("generate payload key: %w", err)
	}
	return id + ":" + base64.StdEncoding.EncodeToString(key), nil
}
