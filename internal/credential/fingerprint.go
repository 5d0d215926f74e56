package credential

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"hash"
)

// Kind prefixes keep fingerprints of different credential kinds apart even
// when their raw material happens to be equal.
const (
	kindClientSecret = "client-secret"
	kindCertificate  = "certificate"
	kindAssertion    = "assertion"
)

var (
	_ Credential = (*ClientSecret)(nil)
	_ Credential = (*Certificate)(nil)
	_ Credential = (*Assertion)(nil)
)

// Fingerprint hashes the secret and how it is sent: basic and post
// authentication are different cache keys for the same secret.
func (c *ClientSecret) Fingerprint() string {
	method := c.AuthMethod
	if method == "" {
		method = ClientSecretBasic
	}
	return fingerprint(kindClientSecret, []byte(method), []byte(c.Secret))
}

// Fingerprint hashes the chain, the private key and the signing options,
// since each changes the assertion a token service sees.
func (c *Certificate) Fingerprint() string {
	parts := [][]byte{keyMaterial(c)}
	for _, cert := range c.Chain {
		parts = append(parts, cert.Raw)
	}
	sendX5C := []byte("x5c=false")
	if c.SendX5C {
		sendX5C = []byte("x5c=true")
	}
	parts = append(parts, sendX5C, []byte(c.Algorithm), []byte("kid="+c.KeyID))
	return fingerprint(kindCertificate, parts...)
}

// Fingerprint is derived from the ID: the assertion itself is short-lived
// and fetched at call time, so its source is what identifies it.
func (a *Assertion) Fingerprint() string {
	return fingerprint(kindAssertion, []byte(a.ID))
}

// keyMaterial returns the PKCS#8 encoding of the key. A key that cannot be
// exported (an external signer) is identified by its public key instead.
func keyMaterial(c *Certificate) []byte {
	if c.Key == nil {
		return nil
	}
	if der, err := x509.MarshalPKCS8PrivateKey(c.Key); err == nil {
		return der
	}
	if der, err := x509.MarshalPKIXPublicKey(c.Key.Public()); err == nil {
		return append([]byte("public:"), der...)
	}
	return nil
}

// fingerprint is the hex sha256 of the kind and the length-prefixed parts;
// the length prefix keeps ("ab","c") and ("a","bc") apart.
func fingerprint(kind string, parts ...[]byte) string {
	h := sha256.New()
	writePart(h, []byte(kind))
	for _, p := range parts {
		writePart(h, p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func writePart(h hash.Hash, p []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(p)))
	h.Write(n[:])
	h.Write(p)
}
