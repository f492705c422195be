package session

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// Keys seal tokens before they reach the store: XChaCha20-Poly1305
// (golang.org/x/crypto), whose 192-bit random nonces never repeat in practice
// however many tokens one key seals. The first key seals; every key opens,
// so a key is rotated by putting the new one first and dropping the old one
// once the longest session lifetime has passed.
type Keys struct {
	aeads []cipher.AEAD
	ids   []string // 4-byte key ids, the first bytes of SHA-256(key)
}

// KeySize is the length of one key in bytes.
const KeySize = chacha20poly1305.KeySize

const sealVersion = 1

// NewKeys builds a key ring; keys[0] seals.
func NewKeys(keys ...[]byte) (*Keys, error) {
	if len(keys) == 0 {
		return nil, errors.New("session: at least one key is required")
	}
	k := &Keys{}
	for i, raw := range keys {
		if len(raw) != KeySize {
			return nil, fmt.Errorf("session: key %d has %d bytes, want %d", i+1, len(raw), KeySize)
		}
		a, err := chacha20poly1305.NewX(raw)
		if err != nil {
			return nil, fmt.Errorf("session: key %d: %w", i+1, err)
		}
		sum := sha256.Sum256(raw)
		id := string(sum[:4])
		for _, have := range k.ids {
			if have == id {
				return nil, fmt.Errorf("session: key %d is listed twice", i+1)
			}
		}
		k.aeads, k.ids = append(k.aeads, a), append(k.ids, id)
	}
	return k, nil
}

// ParseKeys reads a comma-separated list of base64 (standard or URL
// alphabet, padded or not) keys of KeySize bytes, as ERPGRAPH_SESSION_KEYS
// holds them.
func ParseKeys(s string) ([][]byte, error) {
	var out [][]byte
	for i, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		var b []byte
		var err error
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err = enc.DecodeString(f); err == nil {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("key %d is not base64", i+1)
		}
		if len(b) != KeySize {
			return nil, fmt.Errorf("key %d has %d bytes, want %d (openssl rand -base64 32)", i+1, len(b), KeySize)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errors.New("no key")
	}
	return out, nil
}

// RandomKey returns a fresh key (dev mode, where sessions need not outlive the process).
func RandomKey() []byte {
	b := make([]byte, KeySize)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return b
}

// Seal encrypts plaintext bound to ad: version | key id | nonce | ciphertext.
func (k *Keys) Seal(plaintext, ad []byte) []byte {
	a := k.aeads[0]
	out := make([]byte, 0, 1+4+a.NonceSize()+len(plaintext)+a.Overhead())
	out = append(out, sealVersion)
	out = append(out, k.ids[0]...)
	nonce := make([]byte, a.NonceSize())
	_, _ = rand.Read(nonce)
	out = append(out, nonce...)
	return a.Seal(out, nonce, plaintext, ad)
}

// errOpen is every failure to open: the reason is not worth telling apart.
var errOpen = errors.New("session: sealed value does not open with any key")

// Open decrypts what Seal produced with any key of the ring.
func (k *Keys) Open(sealed, ad []byte) ([]byte, error) {
	const head = 1 + 4
	if len(sealed) < head || sealed[0] != sealVersion {
		return nil, errOpen
	}
	id := string(sealed[1:head])
	for i, a := range k.aeads {
		if k.ids[i] != id {
			continue
		}
		rest := sealed[head:]
		if len(rest) < a.NonceSize() {
			return nil, errOpen
		}
		pt, err := a.Open(nil, rest[:a.NonceSize()], rest[a.NonceSize():], ad)
		if err != nil {
			return nil, errOpen
		}
		return pt, nil
	}
	return nil, errOpen
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func unb64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
