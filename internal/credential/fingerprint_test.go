package credential

import (
	"crypto/x509"
	"testing"

	"github.com/token-operator/token-operator/internal/testing/testcert"
)

func TestFingerprint(t *testing.T) {
	cert := selfSignedForFingerprint(t)
	other := selfSignedForFingerprint(t)

	tests := []struct {
		name      string
		a, b      Credential
		wantEqual bool
	}{
		{"Same secret gives the same fingerprint", &ClientSecret{Secret: "s"}, &ClientSecret{Secret: "s"}, true},
		{"Empty auth method means basic", &ClientSecret{Secret: "s"}, &ClientSecret{Secret: "s", AuthMethod: ClientSecretBasic}, true},
		{"Rotated secret gives a new fingerprint", &ClientSecret{Secret: "s"}, &ClientSecret{Secret: "t"}, false},
		{"Basic and post are different keys", &ClientSecret{Secret: "s", AuthMethod: ClientSecretBasic}, &ClientSecret{Secret: "s", AuthMethod: ClientSecretPost}, false},
		{"Same certificate gives the same fingerprint", cert, &Certificate{Chain: cert.Chain, Key: cert.Key}, true},
		{"Another certificate and key give a new fingerprint", cert, other, false},
		{"Sending x5c changes the fingerprint", cert, &Certificate{Chain: cert.Chain, Key: cert.Key, SendX5C: true}, false},
		{"Algorithm changes the fingerprint", cert, &Certificate{Chain: cert.Chain, Key: cert.Key, Algorithm: "ES256"}, false},
		{"Same assertion ID gives the same fingerprint", &Assertion{ID: "ns/sa"}, &Assertion{ID: "ns/sa"}, true},
		{"Different assertion IDs differ", &Assertion{ID: "ns/a"}, &Assertion{ID: "ns/b"}, false},
		{"Kinds never collide", &ClientSecret{Secret: "ns/sa"}, &Assertion{ID: "ns/sa"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fa, fb := tt.a.Fingerprint(), tt.b.Fingerprint()
			if len(fa) != 64 {
				t.Fatalf("fingerprint %q is not hex sha256", fa)
			}
			if (fa == fb) != tt.wantEqual {
				t.Errorf("equal = %v, want %v", fa == fb, tt.wantEqual)
			}
		})
	}
}

func selfSignedForFingerprint(t *testing.T) *Certificate {
	t.Helper()
	key := testcert.EC(t)
	cert := testcert.SelfSigned(t, key, "client", testcert.WithSerial(1))
	return &Certificate{Chain: []*x509.Certificate{cert}, Key: key}
}
