package entraserver

import (
	"crypto/tls"
	"crypto/x509"

	"github.com/token-operator/token-operator/internal/testing/testcert"
)

// newTLSMaterial makes a CA and a server certificate valid for 127.0.0.1,
// ::1 and localhost, so tests can use two host names for one server.
func newTLSMaterial() (*x509.Certificate, *tls.Config) {
	ca, err := testcert.NewCA("entraserver test CA")
	if err != nil {
		panic(err)
	}
	leaf, err := ca.Server("localhost", "127.0.0.1", "::1")
	if err != nil {
		panic(err)
	}
	return ca.Cert, &tls.Config{Certificates: []tls.Certificate{leaf.TLSCertificate()}}
}
