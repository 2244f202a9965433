package payloadcodec

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
)

// Environment variables read by FromEnv and ForDev.
const (
	// EnvKeys holds the payload keys inline: `id:base64key[,id:base64key…]`.
	EnvKeys = "KOOFLOW_PAYLOAD_KEYS"
	// EnvKeysFile names a file of payload keys, one `id:base64key` a line.
	EnvKeysFile = "KOOFLOW_PAYLOAD_KEYS_FILE"
	// EnvEncryption set to "off" runs without payload encryption when no keys are given.
	EnvEncryption = "KOOFLOW_PAYLOAD_ENCRYPTION"
)

// DevKeyFile is the name of the key file `kooflow dev` keeps in its data directory.
const DevKeyFile = "payload-keys"

// OffWarning is the message a process logs (at warning level) when FromEnv returns no
// codec because KOOFLOW_PAYLOAD_ENCRYPTION=off.
const OffWarning = "payload encryption is OFF (KOOFLOW_PAYLOAD_ENCRYPTION=off): workflow inputs, results and memos, with carrier user IDs and ICCIDs, are stored in Temporal in clear text"

// FromEnv decides payload encryption for a production process from the environment
// (getenv is usually os.Getenv):
//
//   - KOOFLOW_PAYLOAD_KEYS or KOOFLOW_PAYLOAD_KEYS_FILE set: the codec for those keys;
//   - neither set and KOOFLOW_PAYLOAD_ENCRYPTION=off: nil codec and nil error — the
//     caller must log OffWarning and run unencrypted;
//   - neither set otherwise: an error telling the operator what to set.
//
// Both variables set, or keys together with KOOFLOW_PAYLOAD_ENCRYPTION=off, is refused
// as ambiguous. No error carries key material.
func FromEnv(getenv func(string) string) (*Codec, error) {
	ring, err := keyringFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	off, err := encryptionOff(getenv)
	if err != nil {
		return nil, err
	}
	switch {
	case ring != nil && off:
		return nil, fmt.Errorf("%s=off but payload keys are configured; unset one of them", EnvEncryption)
	case ring != nil:
		return NewCodec(ring), nil
	case off:
		return nil, nil
	}
	return nil, fmt.Errorf("payload encryption needs keys: set %s=id:base64key (32 random bytes, e.g. `openssl rand -base64 32`; list several as new,old to rotate) or %s=/path/to/key-file, or set %s=off explicitly to store payloads in clear text",
		EnvKeys, EnvKeysFile, EnvEncryption)
}

// ForDev decides payload encryption for `kooflow dev`: keys from the environment when
// given (as FromEnv), none when KOOFLOW_PAYLOAD_ENCRYPTION=off, and otherwise the dev
// key kept in dataDir (see EnsureDevKey), created on the first start.
func ForDev(getenv func(string) string, dataDir string) (*Codec, error) {
	return withDevKey(getenv, dataDir, true)
}

// ForOperator decides payload decoding for an operator command (kooflow retry,
// reconcile, schedule …), which must read what the processes encrypted: keys from the
// environment when given (as FromEnv), none when KOOFLOW_PAYLOAD_ENCRYPTION=off, else
// the dev key file in dataDir when `kooflow dev` made one (it is never created here),
// else an error saying what to set.
func ForOperator(getenv func(string) string, dataDir string) (*Codec, error) {
	return withDevKey(getenv, dataDir, false)
}

// withDevKey is FromEnv when the environment configures keys or turns encryption off;
// otherwise the codec of dataDir's dev key file, which is created when create is set and
// else used only if it exists (without it, FromEnv's error says what to set).
func withDevKey(getenv func(string) string, dataDir string, create bool) (*Codec, error) {
	ring, err := keyringFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	off, err := encryptionOff(getenv)
	if err != nil {
		return nil, err
	}
	if ring != nil || off || dataDir == "" {
		return FromEnv(getenv)
	}
	path := filepath.Join(dataDir, DevKeyFile)
	if create {
		if path, err = EnsureDevKey(dataDir); err != nil {
			return nil, err
		}
	} else if _, statErr := os.Stat(path); statErr != nil {
		return FromEnv(getenv)
	}
	if ring, err = ReadKeyFile(path); err != nil {
		return nil, err
	}
	return NewCodec(ring), nil
}

func keyringFromEnv(getenv func(string) string) (*Keyring, error) {
	inline, file := strings.TrimSpace(getenv(EnvKeys)), strings.TrimSpace(getenv(EnvKeysFile))
	switch {
	case inline != "" && file != "":
		return nil, fmt.Errorf("both %s and %s are set; use one", EnvKeys, EnvKeysFile)
	case inline != "":
		ring, err := ParseKeys(inline)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvKeys, err)
		}
		return ring, nil
	case file != "":
		ring, err := ReadKeyFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvKeysFile, err)
		}
		return ring, nil
	}
	return nil, nil
}

func encryptionOff(getenv func(string) string) (bool, error) {
	switch v := strings.ToLower(strings.TrimSpace(getenv(EnvEncryption))); v {
	case "off":
		return true, nil
	case "", "on":
		return false, nil
	default:
		return false, fmt.Errorf("%s=%q: expected on or off", EnvEncryption, truncate(v))
	}
}

// EnsureDevKey returns the path of dataDir's dev key file (DevKeyFile), creating it
// with mode 0600 and one freshly generated key the first time; later calls reuse it so
// workflows survive restarts.
func EnsureDevKey(dataDir string) (string, error) {
	path := filepath.Join(dataDir, DevKeyFile)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("dev payload key: %w", err)
	}
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		return "", fmt.Errorf("dev payload key: %w", err)
	}
	entry, err := NewKeyEntry("dev-" + hex.EncodeToString(suffix))
	if err != nil {
		return "", fmt.Errorf("dev payload key: %w", err)
	}
	content := "# kooflow dev payload key, generated once. Keep it: payloads encrypted under it\n" +
		"# cannot be read without it. To rotate, put a new id:base64key line first.\n" + entry + "\n"
	if err := writeNewSecret(path, content); err != nil {
		return "", fmt.Errorf("dev payload key: %w", err)
	}
	return path, nil
}

// writeNewSecret creates path (mode 0600, refusing to overwrite) and writes content to
// it durably. If another process created it first, its file is kept.
func writeNewSecret(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// DataConverter returns the data converter kooflow's clients, workers and replayers use:
// the SDK's default converter with codec applied, or the default converter alone when
// codec is nil (encryption off).
func DataConverter(codec *Codec) converter.DataConverter {
	if codec == nil {
		return converter.GetDefaultDataConverter()
	}
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), codec)
}

// FailureConverter returns the failure converter to pair with DataConverter: with a
// codec, error messages and stack traces are moved into the failure's encoded
// attributes and so encrypted too (the UI shows them through the codec server); nil
// codec gives the SDK's default.
func FailureConverter(codec *Codec) converter.FailureConverter {
	if codec == nil {
		return temporal.GetDefaultFailureConverter()
	}
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          DataConverter(codec),
		EncodeCommonAttributes: true,
	})
}

// Configure is the one call the wiring makes before client.Dial (workers inherit the
// client's converters): it sets opts.DataConverter and opts.FailureConverter for codec
// (nil codec: encryption off, the SDK defaults).
func Configure(opts *client.Options, codec *Codec) {
	opts.DataConverter = DataConverter(codec)
	opts.FailureConverter = FailureConverter(codec)
}
