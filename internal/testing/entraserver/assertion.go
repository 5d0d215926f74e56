package entraserver

import (
	"bytes"
	"crypto/sha1" //nolint:gosec // x5t is a SHA-1 thumbprint by definition (RFC 7515 §4.1.7)
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

var assertionAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256}

// Assertion time limits: the clock skew allowed, and the longest lifetime
// accepted (Entra's documented bound for external tokens, 1 day and 1 hour).
const (
	skew                 = time.Minute
	maxAssertionLifetime = 25 * time.Hour
)

// checkAssertion validates a client assertion as Entra does: a certificate
// registered by thumbprint (x5t or x5t#S256) or trusted by subject name and
// issuer through the x5c chain, its signature, then the required claims:
// iss = sub = client, aud = this token endpoint, jti, nbf and exp within
// their window, and single use of jti.
func (s *Server) checkAssertion(app App, assertion, endpoint string) *entraError {
	tok, err := jwt.ParseSigned(assertion, assertionAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return fail(http.StatusUnauthorized, "invalid_client", 50027, "JWT token is invalid or malformed.")
	}
	if iss := federatedIssuer(tok); iss != "" && iss != app.ClientID {
		return s.checkFederated(app, tok, iss)
	}
	s.mu.Lock()
	now := s.clock.Now()
	s.mu.Unlock()
	raw := rawHeader(assertion)
	info := assertionInfo(tok.Headers[0], raw)
	cert, e := signingCert(app, raw, now)
	if e != nil {
		return e
	}
	var c jwt.Claims
	if err := tok.Claims(cert.PublicKey, &c); err != nil {
		return fail(http.StatusUnauthorized, "invalid_client", 700027, "Client assertion failed signature validation.")
	}
	info.Audience = c.Audience
	s.mu.Lock()
	s.assertions[app.ClientID] = info
	s.mu.Unlock()
	if e := checkClaims(c, app.ClientID, endpoint); e != nil {
		return e
	}
	if e := checkTimes(c, now); e != nil {
		return e
	}
	if e := checkLifetime(c, now); e != nil {
		return e
	}
	return s.useJTI(c, now)
}

// signingCert finds the certificate whose key must have signed the
// assertion: registered by thumbprint, or else trusted by subject and CA.
func signingCert(app App, raw map[string]any, now time.Time) (*x509.Certificate, *entraError) {
	if cert := registeredCert(app.Certificates, raw); cert != nil {
		return cert, checkX5C(app, cert, raw)
	}
	if len(app.TrustedSubjects) > 0 {
		return trustedChain(app.TrustedSubjects, raw, now)
	}
	return nil, fail(http.StatusUnauthorized, "invalid_client", 700027, "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found.]")
}

// checkClaims requires the claims Entra documents for a certificate
// assertion: aud, exp, iss, jti, nbf, sub.
func checkClaims(c jwt.Claims, clientID, endpoint string) *entraError {
	for _, claim := range []struct {
		name    string
		missing bool
	}{
		{"aud", len(c.Audience) == 0}, {"exp", c.Expiry == nil}, {"iss", c.Issuer == ""},
		{"jti", c.ID == ""}, {"nbf", c.NotBefore == nil}, {"sub", c.Subject == ""},
	} {
		if claim.missing {
			return fail(http.StatusUnauthorized, "invalid_client", 50027, "Invalid JWT token. The client assertion has no '%s' claim, which is required.", claim.name)
		}
	}
	if c.Issuer != clientID || c.Subject != clientID {
		return fail(http.StatusUnauthorized, "invalid_client", 700021, "Client assertion application identifier doesn't match 'client_id' parameter.")
	}
	if !c.Audience.Contains(endpoint) {
		return fail(http.StatusUnauthorized, "invalid_client", 700023, "Client assertion audience claim does not match Realm issuer. Expected '%s'.", endpoint)
	}
	return nil
}

// checkLifetime refuses an assertion that stays valid too long.
func checkLifetime(c jwt.Claims, now time.Time) *entraError {
	if c.Expiry.Time().Sub(now) > maxAssertionLifetime {
		return fail(http.StatusUnauthorized, "invalid_client", 700024, "Client assertion is not within its valid time range: its expiry %s is more than %s away. Current time: %s.",
			timeOf(c.Expiry), maxAssertionLifetime, now.UTC().Format(time.RFC3339))
	}
	return nil
}

func checkTimes(c jwt.Claims, now time.Time) *entraError {
	if c.Expiry == nil {
		return fail(http.StatusUnauthorized, "invalid_client", 700024, "Client assertion contains no expiry.")
	}
	err := c.ValidateWithLeeway(jwt.Expected{Time: now}, skew)
	if errors.Is(err, jwt.ErrExpired) || errors.Is(err, jwt.ErrNotValidYet) || errors.Is(err, jwt.ErrIssuedInTheFuture) {
		return fail(http.StatusUnauthorized, "invalid_client", 700024, "Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s.",
			now.UTC().Format(time.RFC3339), timeOf(c.NotBefore), timeOf(c.Expiry))
	}
	if err != nil {
		return fail(http.StatusUnauthorized, "invalid_client", 50027, "JWT token is invalid or malformed.")
	}
	return nil
}

func timeOf(d *jwt.NumericDate) string {
	if d == nil {
		return "-"
	}
	return d.Time().UTC().Format(time.RFC3339)
}

// useJTI rejects a jti seen before while that assertion could still be valid.
func (s *Server) useJTI(c jwt.Claims, now time.Time) *entraError {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, until := range s.jtis {
		if now.After(until) {
			delete(s.jtis, k)
		}
	}
	key := c.Issuer + "\x00" + c.ID
	if _, seen := s.jtis[key]; seen {
		return fail(http.StatusUnauthorized, "invalid_client", 50012, "The client assertion has already been used (jti replay).")
	}
	s.jtis[key] = c.Expiry.Time().Add(time.Minute)
	return nil
}

func checkX5C(app App, cert *x509.Certificate, raw map[string]any) *entraError {
	leaf, present := x5cLeaf(raw)
	if !present {
		if app.RequireX5C {
			return fail(http.StatusUnauthorized, "invalid_client", 700027, "Client assertion must carry the x5c header for subject name and issuer authentication.")
		}
		return nil
	}
	if leaf == nil || !bytes.Equal(leaf.Raw, cert.Raw) {
		return fail(http.StatusUnauthorized, "invalid_client", 700027, "The x5c header does not start with the signing certificate.")
	}
	return nil
}

// rawHeader decodes the protected header of a compact JWS as plain JSON,
// since go-jose hides x5c unless it verifies the chain.
func rawHeader(compact string) map[string]any {
	seg, _, _ := strings.Cut(compact, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	m := map[string]any{}
	if err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

// x5cLeaf returns the first x5c certificate and whether x5c was sent.
func x5cLeaf(raw map[string]any) (*x509.Certificate, bool) {
	v, ok := raw["x5c"]
	if !ok {
		return nil, false
	}
	list, _ := v.([]any)
	if len(list) == 0 {
		return nil, true
	}
	s, _ := list[0].(string)
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, true
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, true
	}
	return c, true
}

func assertionInfo(h jose.Header, raw map[string]any) AssertionInfo {
	_, x5t := raw["x5t"]
	_, s256 := raw["x5t#S256"]
	_, x5c := raw["x5c"]
	return AssertionInfo{Algorithm: h.Algorithm, KeyID: h.KeyID, X5T: x5t, X5TS256: s256, X5C: x5c}
}

// registeredCert finds the registered certificate the thumbprint headers
// name; Entra accepts standard or URL-safe base64 (MSAL sends standard).
func registeredCert(certs []*x509.Certificate, raw map[string]any) *x509.Certificate {
	t1 := decodeThumb(raw["x5t"])
	t256 := decodeThumb(raw["x5t#S256"])
	for _, c := range certs {
		s1 := sha1.Sum(c.Raw) //nolint:gosec // thumbprint, not a signature
		s256 := sha256.Sum256(c.Raw)
		if (t1 != nil && bytes.Equal(t1, s1[:])) || (t256 != nil && bytes.Equal(t256, s256[:])) {
			return c
		}
	}
	return nil
}

func decodeThumb(v any) []byte {
	s, ok := v.(string)
	if !ok || s == "" {
		return nil
	}
	s = strings.TrimRight(s, "=")
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b
	}
	if b, err := base64.RawStdEncoding.DecodeString(s); err == nil {
		return b
	}
	return nil
}
