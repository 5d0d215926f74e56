package credential

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"regexp"
	"strings"
	"testing"
)

// safeMessage lists every message the parsers may produce. A message outside
// it could echo input: add new reasons here only when they quote nothing
// from the material.
var safeMessage = regexp.MustCompile(`^invalid credential: (` + strings.Join([]string{
	`the PKCS#12 password is incorrect`,
	`the PKCS#12 archive is larger than 1 MiB`,
	`the PKCS#12 archive asks for more than 1000000 key derivation iterations in total; export it again with the tool's default iteration count`,
	`the data is not a readable PKCS#12 archive with one private key and certificate`,
	`certificate \d+ in the PEM data is not a valid X\.509 certificate`,
	`no PEM CERTIFICATE block found`,
	`no PEM private key block found`,
	`more than one private key found in the PEM data`,
	`the private key is encrypted; store it unencrypted in the Secret or use PKCS#12 with a password`,
	`the (RSA PRIVATE KEY|PRIVATE KEY|EC PRIVATE KEY) block is not a valid private key`,
	`unsupported key: RSA keys must have at least 2048 bits, this one has \d+`,
	`unsupported key type ed25519: use an RSA or EC \(P-256, P-384, P-521\) key`,
	`unsupported key type [*\w.]+: use an RSA or EC \(P-256, P-384, P-521\) key`,
	`unsupported key type [*\w.]+`,
	`the private key does not match any certificate`,
}, "|") + `)$`)

// checkParsed asserts what every parse result must satisfy: an error is an
// *InvalidError with a known message; a certificate has a key matching its leaf.
func checkParsed(t *testing.T, got *Certificate, err error) {
	t.Helper()
	if err != nil {
		var inv *InvalidError
		if !errors.As(err, &inv) {
			t.Fatalf("error %v (%T) is not an *InvalidError", err, err)
		}
		if !safeMessage.MatchString(err.Error()) {
			t.Fatalf("unexpected message %q: it may quote the input", err.Error())
		}
		return
	}
	if got == nil || got.Key == nil || len(got.Chain) == 0 {
		t.Fatalf("no error and an incomplete certificate: %+v", got)
	}
	pub, ok := got.Key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(got.Chain[0].PublicKey) {
		t.Fatal("the leaf does not match the key")
	}
	if got.Fingerprint() == "" {
		t.Fatal("empty fingerprint")
	}
}

func FuzzParseCertificate(f *testing.F) {
	m := testMaterial(f)
	rsaKey := pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(m.rsaKey))
	ecKey := sec1PEM(f, m.ecKey)
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1, 2, 3}})
	for _, seed := range []struct{ cert, key []byte }{
		{certPEM(m.rsaCert), rsaKey},
		{certPEM(m.rsaCert), pkcs8PEM(f, m.rsaKey)},
		{certPEM(m.ecCert, m.caCert), ecKey},
		{certPEM(m.caCert, m.ecCert), pkcs8PEM(f, m.ecKey)},
		{join(certPEM(m.ecCert), ecKey), nil},
		{certPEM(m.edCert), pkcs8PEM(f, m.edKey)},
		{certPEM(m.smallRSACert), pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(m.smallRSAKey))},
		{certPEM(m.ecCert), join(ecKey, sec1PEM(f, m.otherEC))},
		{certPEM(m.rsaCert), encrypted},
		{pemOf("CERTIFICATE", []byte{0x30, 0x03, 0x02, 0x01, 0x01}), pemOf("EC PRIVATE KEY", []byte{0x30, 0x00})},
		{[]byte("not pem at all"), nil},
		{nil, nil},
	} {
		f.Add(seed.cert, seed.key)
	}
	f.Fuzz(func(t *testing.T, cert, key []byte) {
		got, err := ParseCertificate(cert, key)
		checkParsed(t, got, err)
	})
}

func FuzzParsePKCS12(f *testing.F) {
	m := testMaterial(f)
	for _, seed := range []struct {
		data     []byte
		password string
	}{
		{encodeP12(f, m.rsaKey, m.rsaCert, []*x509.Certificate{m.caCert}), p12Password},
		{encodeP12(f, m.ecKey, m.ecCert, nil), p12Password},
		{encodeP12(f, m.ecKey, m.ecCert, nil), "wrong-password"},
		{encodeP12(f, m.edKey, m.edCert, nil), p12Password},
		{encodeP12(f, m.smallRSAKey, m.smallRSACert, nil), p12Password},
		{hideKey(f, encodeP12(f, m.ecKey, m.ecCert, nil), 0), p12Password},
		{hideKey(f, encodeP12(f, m.ecKey, m.ecCert, nil), hugeIterations), p12Password},
		{certPEM(m.rsaCert), ""},
		{[]byte{0x30, 0x80, 0x02, 0x01, 0x03}, ""},
		{nil, ""},
	} {
		f.Add(seed.data, seed.password)
	}
	f.Fuzz(func(t *testing.T, data []byte, password string) {
		got, err := ParsePKCS12(data, password)
		checkParsed(t, got, err)
		if err != nil && len(password) >= 4 && strings.Contains(err.Error(), password) && !strings.Contains(safeMessage.String(), password) {
			t.Fatalf("message %q holds the password", err)
		}
	})
}
