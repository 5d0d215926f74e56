package tokensource

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is a SHA-1 thumbprint by definition (RFC 7515 §4.1.7)
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/token-operator/token-operator/internal/credential"
)

// assertionLifetime is short: the assertion is used once, right away.
const assertionLifetime = 5 * time.Minute

// signingAlgorithm picks the JWS algorithm: RS256 (or PS256 when asked) for
// RSA, ES256 for P-256.
func signingAlgorithm(c *credential.Certificate) (jose.SignatureAlgorithm, error) {
	switch k := c.Key.(type) {
	case *rsa.PrivateKey:
		switch c.Algorithm {
		case "", "RS256":
			return jose.RS256, nil
		case "PS256":
			return jose.PS256, nil
		}
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return "", errors.New("only P-256 EC keys are supported (ES256)")
		}
		if c.Algorithm == "" || c.Algorithm == "ES256" {
			return jose.ES256, nil
		}
	default:
		return "", fmt.Errorf("unsupported private key type %s", keyKind(c.Key))
	}
	return "", fmt.Errorf("algorithm %q does not fit a %s key", c.Algorithm, keyKind(c.Key))
}

// signAssertion builds a private_key_jwt client assertion (RFC 7523 §3).
// Both x5t and x5t#S256 are sent: Entra and AD FS look for x5t, newer
// servers for x5t#S256; kid repeats the SHA-256 thumbprint unless the
// credential names its own key ID.
func signAssertion(c *credential.Certificate, clientID, tokenURL string, now time.Time) (string, error) {
	alg, err := signingAlgorithm(c)
	if err != nil {
		return "", err
	}
	leaf := c.Chain[0].Raw
	s1, s256 := sha1.Sum(leaf), sha256.Sum256(leaf) //nolint:gosec // thumbprint
	thumb := base64.RawURLEncoding.EncodeToString(s256[:])
	kid := thumb
	if c.KeyID != "" {
		kid = c.KeyID
	}
	opts := (&jose.SignerOptions{}).WithType("JWT").
		WithHeader("kid", kid).
		WithHeader("x5t", base64.RawURLEncoding.EncodeToString(s1[:])).
		WithHeader("x5t#S256", thumb)
	if c.SendX5C {
		chain := make([]string, len(c.Chain))
		for i, cert := range c.Chain {
			chain[i] = base64.StdEncoding.EncodeToString(cert.Raw)
		}
		opts = opts.WithHeader("x5c", chain)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: c.Key}, opts)
	if err != nil {
		return "", fmt.Errorf("cannot sign the client assertion with this key (%s)", keyKind(c.Key))
	}
	claims := jwt.Claims{
		Issuer:    clientID,
		Subject:   clientID,
		Audience:  jwt.Audience{tokenURL},
		ID:        newJTI(),
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		Expiry:    jwt.NewNumericDate(now.Add(assertionLifetime)),
	}
	a, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", errors.New("signing the client assertion failed")
	}
	return a, nil
}

func newJTI() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
