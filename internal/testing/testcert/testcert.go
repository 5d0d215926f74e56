// Package testcert makes keys and certificates for tests: client
// certificates signed by their own key, and a CA with server certificates
// for test TLS servers on loopback.
//
// The functions that take a TB stop the test on error; the others return
// it, for servers that start outside a test.
package testcert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"time"
)

// TB is the part of testing.TB the helpers use.
type TB interface {
	Helper()
	Fatal(args ...any)
}

// NewRSA makes an RSA key of the given size.
func NewRSA(bits int) (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, bits)
}

// NewEC makes a P-256 key.
func NewEC() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// RSA makes an RSA key of the given size or stops the test.
func RSA(t TB, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := NewRSA(bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// EC makes a P-256 key or stops the test.
func EC(t TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := NewEC()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Option changes the template of a self-signed certificate.
type Option func(*x509.Certificate)

// WithSerial sets the serial number, which is otherwise the current time
// in nanoseconds.
func WithSerial(n int64) Option {
	return func(c *x509.Certificate) { c.SerialNumber = big.NewInt(n) }
}

// WithKeyUsage sets the key usage, which is otherwise empty.
func WithKeyUsage(u x509.KeyUsage) Option {
	return func(c *x509.Certificate) { c.KeyUsage = u }
}

// WithValidity makes the certificate valid until d from now, for
// long-running programs such as the demo.
func WithValidity(d time.Duration) Option {
	return func(c *x509.Certificate) { c.NotAfter = time.Now().Add(d) }
}

// NewSelfSigned makes a certificate for key signed by key itself, with the
// common name cn, valid from an hour ago to an hour from now.
func NewSelfSigned(key crypto.Signer, cn string, opts ...Option) (*x509.Certificate, error) {
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
	}
	for _, o := range opts {
		o(tmpl)
	}
	return create(tmpl, tmpl, key.Public(), key)
}

// SelfSigned is NewSelfSigned that stops the test on error.
func SelfSigned(t TB, key crypto.Signer, cn string, opts ...Option) *x509.Certificate {
	t.Helper()
	c, err := NewSelfSigned(key, cn, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// CertPEM encodes certificates as CERTIFICATE blocks, in order.
func CertPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// NewPKCS8PEM encodes key as a PKCS#8 PRIVATE KEY block.
func NewPKCS8PEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// PKCS8PEM is NewPKCS8PEM that stops the test on error.
func PKCS8PEM(t TB, key crypto.Signer) []byte {
	t.Helper()
	b, err := NewPKCS8PEM(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// CA is a certificate authority for test servers, valid from an hour ago
// for a day.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey

	serial int64
}

// NewCA makes a CA with a P-256 key and the common name cn.
func NewCA(cn string) (*CA, error) {
	key, err := NewEC()
	if err != nil {
		return nil, err
	}
	ca := &CA{Key: key, serial: 1}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(ca.serial),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	if ca.Cert, err = create(tmpl, tmpl, &key.PublicKey, key); err != nil {
		return nil, err
	}
	return ca, nil
}

// Intermediate makes a CA signed by ca with the common name cn, for chains
// of three (root, intermediate, leaf).
func (ca *CA) Intermediate(cn string) (*CA, error) {
	key, err := NewEC()
	if err != nil {
		return nil, err
	}
	ca.serial++
	sub := &CA{Key: key, serial: ca.serial * 1000}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(ca.serial),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	if sub.Cert, err = create(tmpl, ca.Cert, &key.PublicKey, ca.Key); err != nil {
		return nil, err
	}
	return sub, nil
}

// Client makes a client certificate for key with the common name cn,
// signed by ca, valid from an hour ago for a day.
func (ca *CA) Client(key crypto.Signer, cn string) (*x509.Certificate, error) {
	ca.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return create(tmpl, ca.Cert, key.Public(), ca.Key)
}

// Pool is a pool that trusts the CA alone.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

// Leaf is a server certificate and its key.
type Leaf struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// Server makes a server certificate with a P-256 key, valid for hosts (DNS
// names and IP addresses, in order) from an hour ago for a day. The first
// host is its common name.
func (ca *CA) Server(hosts ...string) (*Leaf, error) {
	key, err := NewEC()
	if err != nil {
		return nil, err
	}
	ca.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if len(hosts) > 0 {
		tmpl.Subject.CommonName = hosts[0]
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	cert, err := create(tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, err
	}
	return &Leaf{Cert: cert, Key: key}, nil
}

// TLSCertificate is the leaf for a tls.Config.
func (l *Leaf) TLSCertificate() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{l.Cert.Raw}, PrivateKey: l.Key, Leaf: l.Cert}
}

func create(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}
