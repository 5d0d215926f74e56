// Package credential turns the raw material of a credential Secret into a
// typed credential that the token engine can use. It has no Kubernetes client.
package credential

import (
	"context"
	"crypto"
	"crypto/x509"
)

// Credential is the proof of identity a client presents to a token service.
type Credential interface {
	// Fingerprint is a stable hash of the credential material. Two
	// credentials share a fingerprint only when they hold the same material,
	// so a rotated secret or certificate yields a new fingerprint.
	Fingerprint() string
}

// ClientAuthMethod says how a client secret travels to a generic OAuth2 server.
type ClientAuthMethod string

const (
	// ClientSecretBasic sends the id and secret form-url-encoded in an HTTP Basic header (RFC 6749 §2.3.1).
	ClientSecretBasic ClientAuthMethod = "client_secret_basic"
	// ClientSecretPost sends the id and secret as form fields.
	ClientSecretPost ClientAuthMethod = "client_secret_post"
)

// ClientSecret is a shared secret.
type ClientSecret struct {
	Secret     string
	AuthMethod ClientAuthMethod // empty means ClientSecretBasic
}

// Certificate is a certificate chain (leaf first) with its private key, used
// to sign client assertions (RFC 7523 private_key_jwt).
type Certificate struct {
	Chain   []*x509.Certificate
	Key     crypto.Signer
	SendX5C bool
	// Algorithm is the JWS algorithm (RS256, PS256, ES256); empty picks one from the key.
	Algorithm string
	// KeyID is the kid header; empty sends the SHA-256 thumbprint.
	KeyID string
}

// Assertion is a client assertion obtained from elsewhere at call time, such
// as a Kubernetes service account token (workload identity federation).
type Assertion struct {
	// ID identifies the source of the assertion (for example namespace/name
	// and audience of a service account); it takes the place of a fingerprint.
	ID string
	// Provide returns a fresh assertion.
	Provide func(ctx context.Context) (string, error)
}
