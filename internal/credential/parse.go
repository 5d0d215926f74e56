package credential

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"software.sslmate.com/src/go-pkcs12"
)

// minRSABits is the smallest RSA key accepted; token services such as
// Microsoft Entra ID refuse shorter keys, so failing early is clearer.
const minRSABits = 2048

// InvalidError reports credential material that cannot be used. Its message
// is written by this package and never quotes the material or a password,
// so it is safe to put into events, conditions and logs.
type InvalidError struct {
	// Reason says what is wrong, in words safe to show to users.
	Reason string
	// Err is the underlying error for errors.Is/As. It is deliberately left
	// out of Error() because parser errors may echo parts of the input.
	Err error
}

func (e *InvalidError) Error() string { return "invalid credential: " + e.Reason }

func (e *InvalidError) Unwrap() error { return e.Err }

func invalid(reason string, err error) *InvalidError {
	return &InvalidError{Reason: reason, Err: err}
}

// ParseCertificate reads a PEM certificate chain and its PEM private key.
// When keyPEM is empty the key is looked up in certPEM, so a combined
// cert+key blob works. The certificate matching the key becomes the leaf
// (Chain[0]); the others keep their order. Algorithm is left empty.
func ParseCertificate(certPEM, keyPEM []byte) (*Certificate, error) {
	if len(keyPEM) == 0 {
		keyPEM = certPEM
	}
	certs, err := parseCertificateBlocks(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := parseKeyBlocks(keyPEM)
	if err != nil {
		return nil, err
	}
	return certificateFor(certs, key)
}

// ParsePKCS12 reads a PKCS#12 (PFX) archive holding one private key, its
// certificate and optionally the CA chain. Algorithm is left empty.
// Archives over 1 MiB or asking for more than maxPKCS12Iterations of key
// derivation are refused before any key is derived.
func ParsePKCS12(data []byte, password string) (*Certificate, error) {
	if err := checkPKCS12Cost(data, password); err != nil {
		return nil, err
	}
	raw, leaf, cas, err := pkcs12.DecodeChain(data, password)
	if errors.Is(err, pkcs12.ErrIncorrectPassword) {
		return nil, invalid("the PKCS#12 password is incorrect", err)
	}
	if err != nil {
		return nil, invalid("the data is not a readable PKCS#12 archive with one private key and certificate", err)
	}
	key, err := checkKey(raw)
	if err != nil {
		return nil, err
	}
	return certificateFor(append([]*x509.Certificate{leaf}, cas...), key)
}

// certificateFor pairs the key with its chain, leaf first.
func certificateFor(certs []*x509.Certificate, key crypto.Signer) (*Certificate, error) {
	chain, err := leafFirst(certs, key)
	if err != nil {
		return nil, err
	}
	return &Certificate{Chain: chain, Key: key}, nil
}

// parseCertificateBlocks returns every CERTIFICATE block in order; other
// blocks (such as a key in a combined blob) are skipped.
func parseCertificateBlocks(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, invalid(fmt.Sprintf("certificate %d in the PEM data is not a valid X.509 certificate", len(certs)+1), err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, invalid("no PEM CERTIFICATE block found", nil)
	}
	return certs, nil
}

// parseKeyBlocks finds exactly one private key among the PEM blocks.
func parseKeyBlocks(data []byte) (crypto.Signer, error) {
	var key crypto.Signer
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		k, err := parseKeyBlock(block)
		if err != nil {
			return nil, err
		}
		if k == nil {
			continue
		}
		if key != nil {
			return nil, invalid("more than one private key found in the PEM data", nil)
		}
		key = k
	}
	if key == nil {
		return nil, invalid("no PEM private key block found", nil)
	}
	return key, nil
}

// parseKeyBlock decodes one PEM block; it returns nil, nil for blocks that
// are not private keys (certificates, EC PARAMETERS).
func parseKeyBlock(block *pem.Block) (crypto.Signer, error) {
	// Encrypted keys would need a passphrase the operator does not have;
	// an explicit refusal beats a confusing parse error.
	if block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] == "4,ENCRYPTED" {
		return nil, invalid("the private key is encrypted; store it unencrypted in the Secret or use PKCS#12 with a password", nil)
	}
	var (
		raw any
		err error
	)
	switch block.Type {
	case "RSA PRIVATE KEY":
		raw, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		raw, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		raw, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, nil
	}
	if err != nil {
		return nil, invalid(fmt.Sprintf("the %s block is not a valid private key", block.Type), err)
	}
	return checkKey(raw)
}

// checkKey accepts the key types a JWS client assertion can be signed with.
func checkKey(raw any) (crypto.Signer, error) {
	switch k := raw.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < minRSABits {
			return nil, invalid(fmt.Sprintf("unsupported key: RSA keys must have at least %d bits, this one has %d", minRSABits, k.N.BitLen()), nil)
		}
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey, *ed25519.PrivateKey:
		return nil, invalid("unsupported key type ed25519: use an RSA or EC (P-256, P-384, P-521) key", nil)
	default:
		return nil, invalid(fmt.Sprintf("unsupported key type %T: use an RSA or EC (P-256, P-384, P-521) key", raw), nil)
	}
}

// leafFirst moves the first certificate whose public key matches key to
// the front. Keys from the Go standard library implement Equal.
func leafFirst(certs []*x509.Certificate, key crypto.Signer) ([]*x509.Certificate, error) {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return nil, invalid(fmt.Sprintf("unsupported key type %T", key), nil)
	}
	for i, cert := range certs {
		if !pub.Equal(cert.PublicKey) {
			continue
		}
		chain := make([]*x509.Certificate, 0, len(certs))
		chain = append(chain, cert)
		chain = append(chain, certs[:i]...)
		return append(chain, certs[i+1:]...), nil
	}
	return nil, invalid("the private key does not match any certificate", nil)
}
