package testcert_test

import (
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/token-operator/token-operator/internal/testing/testcert"
)

func TestServerCertificateIsTrustedForEachHost(t *testing.T) {
	ca, err := testcert.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Server("localhost", "127.0.0.1", "::1")
	if err != nil {
		t.Fatal(err)
	}
	if leaf.Cert.Subject.CommonName != "localhost" || len(leaf.Cert.DNSNames) != 1 || len(leaf.Cert.IPAddresses) != 2 {
		t.Errorf("CN %q, DNS %v, IP %v", leaf.Cert.Subject.CommonName, leaf.Cert.DNSNames, leaf.Cert.IPAddresses)
	}
	if leaf.Cert.SerialNumber.Cmp(ca.Cert.SerialNumber) == 0 {
		t.Error("the leaf has the CA's serial number")
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		_, err := leaf.Cert.Verify(x509.VerifyOptions{DNSName: host, Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if leaf.Cert.VerifyHostname("127.0.0.2") == nil {
		t.Error("valid for a host it was not made for")
	}
	if c := leaf.TLSCertificate(); c.Leaf != leaf.Cert || c.PrivateKey != leaf.Key {
		t.Error("TLS certificate does not hold the leaf and its key")
	}
}

func TestSelfSigned(t *testing.T) {
	key := testcert.EC(t)
	c := testcert.SelfSigned(t, key, "client", testcert.WithSerial(1), testcert.WithKeyUsage(x509.KeyUsageDigitalSignature))
	if c.Subject.CommonName != "client" || c.SerialNumber.Int64() != 1 || c.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("CN %q, serial %v, key usage %v", c.Subject.CommonName, c.SerialNumber, c.KeyUsage)
	}
	if err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
		t.Error(err)
	}
	if now := time.Now(); c.NotBefore.After(now) || c.NotAfter.Before(now) || c.NotAfter.Sub(c.NotBefore) != 2*time.Hour {
		t.Errorf("valid %v to %v", c.NotBefore, c.NotAfter)
	}
	if b, _ := pem.Decode(testcert.PKCS8PEM(t, key)); b == nil || b.Type != "PRIVATE KEY" {
		t.Error("not a PKCS#8 PRIVATE KEY block")
	}
	if b, _ := pem.Decode(testcert.CertPEM(c)); b == nil || b.Type != "CERTIFICATE" || string(b.Bytes) != string(c.Raw) {
		t.Error("not the certificate")
	}
}

func TestAClientCertificateChainsThroughItsIntermediateOnly(t *testing.T) {
	root, err := testcert.NewCA("test root")
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.Intermediate("test issuing CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := inter.Client(testcert.EC(t), "client")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(inter.Cert)
	opts := x509.VerifyOptions{Roots: root.Pool(), Intermediates: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := leaf.Verify(opts); err != nil {
		t.Fatalf("leaf with its intermediate: %v", err)
	}
	opts.Intermediates = nil
	if _, err := leaf.Verify(opts); err == nil {
		t.Fatal("the leaf verified without its intermediate")
	}
}
