package entraserver

import (
	"bytes"
	"crypto/sha1" //nolint:gosec // x5t is a SHA-1 thumbprint by definition (RFC 7515 §4.1.7)
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"time"
)

// trustedChain checks subject name and issuer authentication: the x5c
// header carries the signing certificate and every intermediate, and the
// chain must build from them alone up to a trusted CA, for a leaf whose
// subject is trusted under that CA. Entra does not fetch missing
// intermediates, so a chain without them fails.
func trustedChain(trusted []TrustedSubject, raw map[string]any, now time.Time) (*x509.Certificate, *entraError) {
	chain, present, ok := x5cChain(raw)
	if !present {
		return nil, fail(http.StatusUnauthorized, "invalid_client", 700027, "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found; subject name and issuer authentication needs the certificate chain in the x5c header.]")
	}
	if !ok {
		return nil, fail(http.StatusUnauthorized, "invalid_client", 50027, "JWT token is invalid or malformed. [Reason - The x5c header is not a list of base64 DER certificates.]")
	}
	leaf := chain[0]
	if !thumbprintsMatch(leaf, raw) {
		return nil, fail(http.StatusUnauthorized, "invalid_client", 700027, "Client assertion failed signature validation. [Reason - The thumbprint does not name the first x5c certificate.]")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	for _, ts := range trusted {
		if leaf.Subject.String() != ts.Subject {
			continue
		}
		roots := x509.NewCertPool()
		roots.AddCert(ts.CA)
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if err == nil {
			return leaf, nil
		}
	}
	return nil, fail(http.StatusUnauthorized, "invalid_client", 700027, "Client assertion failed signature validation. [Reason - The certificate chain in x5c does not lead to a trusted issuer for subject '%s'.]", leaf.Subject.String())
}

// x5cChain decodes the x5c header: whether it was sent and whether every
// entry is a certificate.
func x5cChain(raw map[string]any) (chain []*x509.Certificate, present, ok bool) {
	v, present := raw["x5c"]
	if !present {
		return nil, false, false
	}
	list, _ := v.([]any)
	for _, e := range list {
		s, _ := e.(string)
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, true, false
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, true, false
		}
		chain = append(chain, c)
	}
	return chain, true, len(chain) > 0
}

// thumbprintsMatch: each thumbprint header sent names leaf.
func thumbprintsMatch(leaf *x509.Certificate, raw map[string]any) bool {
	s1 := sha1.Sum(leaf.Raw) //nolint:gosec // thumbprint, not a signature
	s256 := sha256.Sum256(leaf.Raw)
	if t := decodeThumb(raw["x5t"]); raw["x5t"] != nil && !bytes.Equal(t, s1[:]) {
		return false
	}
	if t := decodeThumb(raw["x5t#S256"]); raw["x5t#S256"] != nil && !bytes.Equal(t, s256[:]) {
		return false
	}
	return true
}
