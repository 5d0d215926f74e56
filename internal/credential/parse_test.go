package credential

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

const p12Password = "correct-horse-battery-staple"

// material is generated once: RSA key generation dominates test time,
// especially under -race.
type material struct {
	rsaKey, smallRSAKey   *rsa.PrivateKey
	ecKey, otherEC, caKey *ecdsa.PrivateKey
	edKey                 ed25519.PrivateKey

	rsaCert, smallRSACert, ecCert, caCert, edCert *x509.Certificate
}

var (
	materialOnce sync.Once
	mat          material
)

func testMaterial(t testing.TB) *material {
	t.Helper()
	materialOnce.Do(func() { mat = newMaterial(t) })
	if mat.rsaKey == nil {
		t.Fatal("test material could not be generated")
	}
	return &mat
}

func newMaterial(t testing.TB) material {
	var (
		m   material
		err error
	)
	m.rsaKey, err = rsa.GenerateKey(rand.Reader, 2048)
	fatalIf(t, err)
	m.smallRSAKey, err = rsa.GenerateKey(rand.Reader, 1024)
	fatalIf(t, err)
	m.ecKey = newECKey(t)
	m.otherEC = newECKey(t)
	m.caKey = newECKey(t)
	_, m.edKey, err = ed25519.GenerateKey(rand.Reader)
	fatalIf(t, err)

	m.caCert = newCert(t, "ca", m.caKey.Public(), nil, m.caKey)
	m.rsaCert = newCert(t, "rsa-client", m.rsaKey.Public(), m.caCert, m.caKey)
	m.ecCert = newCert(t, "ec-client", m.ecKey.Public(), m.caCert, m.caKey)
	m.smallRSACert = newCert(t, "small-rsa", m.smallRSAKey.Public(), nil, m.smallRSAKey)
	m.edCert = newCert(t, "ed25519", m.edKey.Public(), nil, m.edKey)
	return m
}

func newECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	fatalIf(t, err)
	return key
}

func newCert(t testing.TB, cn string, pub crypto.PublicKey, parent *x509.Certificate, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  parent == nil,
		BasicConstraintsValid: true,
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	fatalIf(t, err)
	cert, err := x509.ParseCertificate(der)
	fatalIf(t, err)
	return cert
}

func fatalIf(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func encodeP12(t testing.TB, key any, leaf *x509.Certificate, cas []*x509.Certificate) []byte {
	t.Helper()
	data, err := pkcs12.Modern.Encode(key, leaf, cas, p12Password)
	fatalIf(t, err)
	return data
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func certPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pemOf("CERTIFICATE", c.Raw)...)
	}
	return out
}

func pkcs8PEM(t testing.TB, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	fatalIf(t, err)
	return pemOf("PRIVATE KEY", der)
}

func sec1PEM(t testing.TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	fatalIf(t, err)
	return pemOf("EC PRIVATE KEY", der)
}

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestParseCertificate(t *testing.T) {
	m := testMaterial(t)
	ecParams := pemOf("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})
	legacyEncrypted := pem.EncodeToMemory(&pem.Block{
		Type:    "RSA PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00112233445566778899AABBCCDDEEFF"},
		Bytes:   x509.MarshalPKCS1PrivateKey(m.rsaKey),
	})

	tests := []struct {
		name      string
		cert, key []byte
		wantLeaf  *x509.Certificate
		wantChain int
		wantErr   string
	}{
		{
			name: "RSA 2048 with a PKCS#1 key", cert: certPEM(m.rsaCert),
			key: pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(m.rsaKey)), wantLeaf: m.rsaCert, wantChain: 1,
		},
		{
			name: "RSA 2048 with a PKCS#8 key", cert: certPEM(m.rsaCert),
			key: pkcs8PEM(t, m.rsaKey), wantLeaf: m.rsaCert, wantChain: 1,
		},
		{
			name: "EC P-256 with a SEC1 key", cert: certPEM(m.ecCert),
			key: sec1PEM(t, m.ecKey), wantLeaf: m.ecCert, wantChain: 1,
		},
		{
			name: "EC P-256 with a PKCS#8 key", cert: certPEM(m.ecCert),
			key: pkcs8PEM(t, m.ecKey), wantLeaf: m.ecCert, wantChain: 1,
		},
		{
			name: "EC parameters block before the key is skipped", cert: certPEM(m.ecCert),
			key: join(ecParams, sec1PEM(t, m.ecKey)), wantLeaf: m.ecCert, wantChain: 1,
		},
		{
			name: "Combined PEM with no separate key", cert: join(certPEM(m.ecCert, m.caCert), sec1PEM(t, m.ecKey)),
			wantLeaf: m.ecCert, wantChain: 2,
		},
		{
			name: "Combined PEM with the key first", cert: join(pkcs8PEM(t, m.rsaKey), certPEM(m.rsaCert)),
			key: []byte{}, wantLeaf: m.rsaCert, wantChain: 1,
		},
		{
			name: "Chain with the leaf first keeps its order", cert: certPEM(m.ecCert, m.caCert),
			key: sec1PEM(t, m.ecKey), wantLeaf: m.ecCert, wantChain: 2,
		},
		{
			name: "Chain with the CA first finds the leaf matching the key", cert: certPEM(m.caCert, m.ecCert),
			key: sec1PEM(t, m.ecKey), wantLeaf: m.ecCert, wantChain: 2,
		},
		{
			name: "Ed25519 key is refused", cert: certPEM(m.edCert),
			key: pkcs8PEM(t, m.edKey), wantErr: "unsupported key type ed25519",
		},
		{
			name: "RSA key shorter than 2048 bits is refused", cert: certPEM(m.smallRSACert),
			key: pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(m.smallRSAKey)), wantErr: "at least 2048 bits",
		},
		{
			name: "Key that matches no certificate is refused", cert: certPEM(m.ecCert, m.caCert),
			key: sec1PEM(t, m.otherEC), wantErr: "does not match any certificate",
		},
		{
			name: "Encrypted PKCS#8 key is refused", cert: certPEM(m.rsaCert),
			key: pemOf("ENCRYPTED PRIVATE KEY", x509.MarshalPKCS1PrivateKey(m.rsaKey)), wantErr: "private key is encrypted",
		},
		{
			name: "Legacy encrypted PEM key is refused", cert: certPEM(m.rsaCert),
			key: legacyEncrypted, wantErr: "private key is encrypted",
		},
		{
			name: "Two keys are refused", cert: certPEM(m.ecCert),
			key: join(sec1PEM(t, m.ecKey), sec1PEM(t, m.otherEC)), wantErr: "more than one private key",
		},
		{
			name: "Missing key is refused", cert: certPEM(m.ecCert), wantErr: "no PEM private key",
		},
		{
			name: "Missing certificate is refused", cert: []byte("not pem at all"),
			key: sec1PEM(t, m.ecKey), wantErr: "no PEM CERTIFICATE",
		},
		{
			name: "Corrupt certificate body is refused", cert: pemOf("CERTIFICATE", x509.MarshalPKCS1PrivateKey(m.rsaKey)),
			key: pkcs8PEM(t, m.rsaKey), wantErr: "certificate 1 in the PEM data is not a valid X.509 certificate",
		},
		{
			name: "Key block with the wrong content is refused", cert: certPEM(m.rsaCert),
			key: pemOf("EC PRIVATE KEY", x509.MarshalPKCS1PrivateKey(m.rsaKey)), wantErr: "EC PRIVATE KEY block is not a valid private key",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCertificate(tt.cert, tt.key)
			if tt.wantErr != "" {
				checkInvalid(t, err, tt.wantErr, "", tt.cert, tt.key)
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			checkCertificate(t, got, tt.wantLeaf, tt.wantChain)
		})
	}
}

func TestParsePKCS12(t *testing.T) {
	m := testMaterial(t)
	rsaP12 := encodeP12(t, m.rsaKey, m.rsaCert, []*x509.Certificate{m.caCert})
	ecP12 := encodeP12(t, m.ecKey, m.ecCert, nil)
	edP12 := encodeP12(t, m.edKey, m.edCert, nil)

	tests := []struct {
		name      string
		data      []byte
		password  string
		wantLeaf  *x509.Certificate
		wantChain int
		wantErr   string
	}{
		{name: "RSA key with its CA chain", data: rsaP12, password: p12Password, wantLeaf: m.rsaCert, wantChain: 2},
		{name: "EC P-256 key without a chain", data: ecP12, password: p12Password, wantLeaf: m.ecCert, wantChain: 1},
		{name: "Wrong password is refused", data: rsaP12, password: "wrong-password", wantErr: "password is incorrect"},
		{name: "Ed25519 key is refused", data: edP12, password: p12Password, wantErr: "unsupported key type ed25519"},
		{name: "Data that is not PKCS#12 is refused", data: certPEM(m.rsaCert), password: p12Password, wantErr: "not a readable PKCS#12 archive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePKCS12(tt.data, tt.password)
			if tt.wantErr != "" {
				checkInvalid(t, err, tt.wantErr, tt.password, tt.data)
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			checkCertificate(t, got, tt.wantLeaf, tt.wantChain)
		})
	}
}

func TestWrongPKCS12PasswordUnwrapsToTheLibraryError(t *testing.T) {
	m := testMaterial(t)
	data := encodeP12(t, m.ecKey, m.ecCert, nil)
	_, err := ParsePKCS12(data, "nope")
	if !errors.Is(err, pkcs12.ErrIncorrectPassword) {
		t.Fatalf("errors.Is(err, ErrIncorrectPassword) = false for %v", err)
	}
}

func checkCertificate(t *testing.T, got *Certificate, leaf *x509.Certificate, chainLen int) {
	t.Helper()
	if len(got.Chain) != chainLen {
		t.Fatalf("chain length = %d, want %d", len(got.Chain), chainLen)
	}
	if !got.Chain[0].Equal(leaf) {
		t.Errorf("leaf = %q, want %q", got.Chain[0].Subject.CommonName, leaf.Subject.CommonName)
	}
	if got.Key == nil {
		t.Error("key is nil")
	}
	if got.Algorithm != "" || got.SendX5C {
		t.Errorf("parser set signing options: Algorithm=%q SendX5C=%v", got.Algorithm, got.SendX5C)
	}
}

// checkInvalid asserts the error type and reason, and that the message
// quotes neither the password, nor the inputs, nor any test key, in raw,
// base64 or hex form.
func checkInvalid(t *testing.T, err error, wantReason, password string, inputs ...[]byte) {
	t.Helper()
	var inv *InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("error = %v (%T), want *InvalidError", err, err)
	}
	msg := err.Error()
	if !strings.Contains(msg, wantReason) {
		t.Errorf("message %q does not contain %q", msg, wantReason)
	}
	if password != "" && strings.Contains(msg, password) {
		t.Errorf("message %q contains the password", msg)
	}
	if strings.Contains(msg, "-----") {
		t.Errorf("message %q contains PEM armor", msg)
	}
	for _, text := range secretTexts(t, inputs) {
		if frag, ok := sharedWindow(msg, text, 12); ok {
			t.Fatalf("message %q contains input material %q", msg, frag)
		}
	}
}

// secretTexts renders every input, every PEM block in it and every test
// key as raw bytes, base64 and hex: the ways material could leak.
func secretTexts(t *testing.T, inputs [][]byte) []string {
	m := testMaterial(t)
	var blobs [][]byte
	for _, key := range []any{m.rsaKey, m.smallRSAKey, m.ecKey, m.otherEC, m.caKey, m.edKey} {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		fatalIf(t, err)
		blobs = append(blobs, der)
	}
	// PEM input is checked block by block: its armor names the key type,
	// which messages may legitimately mention.
	for _, in := range inputs {
		if !bytes.Contains(in, []byte("-----BEGIN")) {
			blobs = append(blobs, in)
		}
		for block, rest := pem.Decode(in); block != nil; block, rest = pem.Decode(rest) {
			blobs = append(blobs, block.Bytes)
		}
	}
	var out []string
	for _, b := range blobs {
		out = append(out, string(b), base64.StdEncoding.EncodeToString(b), hex.EncodeToString(b))
	}
	return out
}

// sharedWindow reports a substring of msg of length n that occurs in text.
func sharedWindow(msg, text string, n int) (string, bool) {
	for i := 0; i+n <= len(msg); i++ {
		if strings.Contains(text, msg[i:i+n]) {
			return msg[i : i+n], true
		}
	}
	return "", false
}
