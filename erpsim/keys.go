package erpsim

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// keyRing holds the identity server's RSA signing keys. The newest key signs;
// every key ever created stays published in the JWKS and keeps verifying, as
// after a key rollover on the real identity server.
type keyRing struct {
	mu      sync.RWMutex
	signing jwk.Key // private key of the newest kid
	public  jwk.Set // all public keys, oldest first
}

func newKeyRing() (*keyRing, error) {
	kr := &keyRing{public: jwk.NewSet()}
	if _, err := kr.rotate(); err != nil {
		return nil, err
	}
	return kr, nil
}

// rotate creates a new RS256 key, makes it the signing key and publishes it.
func (kr *keyRing) rotate() (string, error) {
	raw, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", fmt.Errorf("erpsim: generate signing key: %w", err)
	}
	var kidBytes [16]byte
	if _, err := rand.Read(kidBytes[:]); err != nil {
		return "", fmt.Errorf("erpsim: generate key id: %w", err)
	}
	// ERP.net's identity server uses 32 upper-case hex digits as kid.
	kid := strings.ToUpper(hex.EncodeToString(kidBytes[:]))
	priv, err := jwk.FromRaw(raw)
	if err != nil {
		return "", fmt.Errorf("erpsim: wrap signing key: %w", err)
	}
	pub, err := jwk.FromRaw(&raw.PublicKey)
	if err != nil {
		return "", fmt.Errorf("erpsim: wrap public key: %w", err)
	}
	for _, k := range []jwk.Key{priv, pub} {
		for name, v := range map[string]any{jwk.KeyIDKey: kid, jwk.AlgorithmKey: jwa.RS256, jwk.KeyUsageKey: "sig"} {
			if err := k.Set(name, v); err != nil {
				return "", fmt.Errorf("erpsim: set key %s: %w", name, err)
			}
		}
	}
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if err := kr.public.AddKey(pub); err != nil {
		return "", fmt.Errorf("erpsim: publish key: %w", err)
	}
	kr.signing = priv
	return kid, nil
}

// sign serializes claims as the JWS payload and signs it with the current key.
// typ is the JOSE header type ("at+jwt" for access tokens, "JWT" for id_tokens).
func (kr *keyRing) sign(typ string, claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("erpsim: encode claims: %w", err)
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.TypeKey, typ); err != nil {
		return "", fmt.Errorf("erpsim: set typ: %w", err)
	}
	kr.mu.RLock()
	key := kr.signing
	kr.mu.RUnlock()
	out, err := jws.Sign(payload, jws.WithKey(jwa.RS256, key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("erpsim: sign token: %w", err)
	}
	return string(out), nil
}

// keySet returns a snapshot of the published public keys.
func (kr *keyRing) keySet() (jwk.Set, error) {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	set, err := kr.public.Clone()
	if err != nil {
		return nil, fmt.Errorf("erpsim: copy key set: %w", err)
	}
	return set, nil
}

// jwksJSON is the JWKS document.
func (kr *keyRing) jwksJSON() ([]byte, error) {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	b, err := json.Marshal(kr.public)
	if err != nil {
		return nil, fmt.Errorf("erpsim: encode jwks: %w", err)
	}
	return b, nil
}

// verify checks the signature of a compact JWS against the published keys
// (kid must match one of them) and returns its protected typ header and payload.
func (kr *keyRing) verify(raw string) (typ string, payload []byte, err error) {
	msg, err := jws.ParseString(raw)
	if err != nil {
		return "", nil, fmt.Errorf("erpsim: parse token: %w", err)
	}
	sigs := msg.Signatures()
	if len(sigs) != 1 {
		return "", nil, fmt.Errorf("erpsim: token has %d signatures", len(sigs))
	}
	// jwk.Set is safe for concurrent use, so verification does not hold kr.mu.
	payload, err = jws.Verify([]byte(raw), jws.WithKeySet(kr.public, jws.WithRequireKid(true)))
	if err != nil {
		return "", nil, fmt.Errorf("erpsim: verify token: %w", err)
	}
	return sigs[0].ProtectedHeaders().Type(), payload, nil
}
