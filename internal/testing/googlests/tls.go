package googlests

import (
	"crypto/tls"
	"crypto/x509"

	"github.com/token-operator/token-operator/internal/testing/testcert"
)

func tlsConfig(leaf *testcert.Leaf) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{leaf.TLSCertificate()}, MinVersion: tls.VersionTLS12}
}

func clientTLS(roots *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}
