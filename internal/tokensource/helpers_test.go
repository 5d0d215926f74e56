package tokensource

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/token-operator/token-operator/internal/credential"
	"github.com/token-operator/token-operator/internal/testing/entraserver"
	"github.com/token-operator/token-operator/internal/testing/testcert"
)

const (
	tenant     = "contoso"
	graphScope = "https://graph.microsoft.com/.default"
	// weirdSecret exercises RFC 6749 §2.3.1 form-url-encoding in Basic.
	weirdSecret = "s3cr%t+with:colon and spaces~"
)

var (
	rsaOnce sync.Once
	rsaKeys []*rsa.PrivateKey
)

// testRSAKey returns one of a few RSA keys made once per test binary.
func testRSAKey(t *testing.T, i int) *rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() {
		for range 3 {
			k, err := testcert.NewRSA(2048)
			if err != nil {
				panic(err)
			}
			rsaKeys = append(rsaKeys, k)
		}
	})
	return rsaKeys[i]
}

var (
	certMu sync.Mutex
	certs  = map[int]*x509.Certificate{}
)

// rsaCert returns a fresh Certificate value around the same certificate for
// a given i, so tests may change its options.
func rsaCert(t *testing.T, i int) *credential.Certificate {
	k := testRSAKey(t, i)
	certMu.Lock()
	defer certMu.Unlock()
	if certs[i] == nil {
		certs[i] = testcert.SelfSigned(t, k, "app")
	}
	return &credential.Certificate{Chain: []*x509.Certificate{certs[i]}, Key: k}
}

func ecCert(t *testing.T) *credential.Certificate {
	k := testcert.EC(t)
	return &credential.Certificate{Chain: []*x509.Certificate{testcert.SelfSigned(t, k, "app-ec")}, Key: k}
}

type fixture struct {
	srv *entraserver.Server
	eng *Engine
}

func newFixture(t *testing.T, o Options) *fixture {
	t.Helper()
	srv := entraserver.New()
	t.Cleanup(srv.Close)
	o.RootCAs = srv.CertPool()
	return &fixture{srv: srv, eng: New(o)}
}

func (f *fixture) entraReq(clientID string, cred credential.Credential) Request {
	return Request{Authority: f.srv.Authority(tenant), ClientID: clientID, Scopes: []string{graphScope}, Credential: cred, AllowedHosts: []string{f.srv.Host()}}
}

func (f *fixture) issuerReq(clientID string, cred credential.Credential) Request {
	return Request{IssuerURL: f.srv.Issuer(tenant), ClientID: clientID, Scopes: []string{graphScope}, Credential: cred, AllowedHosts: []string{f.srv.Host()}}
}

func (f *fixture) tokenReq(clientID string, cred credential.Credential) Request {
	return Request{TokenURL: f.srv.TokenURL(tenant), ClientID: clientID, Scopes: []string{graphScope}, Credential: cred, AllowedHosts: []string{f.srv.Host()}}
}

// preSigned is an *Assertion whose source returns an assertion signed with
// cert, as a workload identity token would be.
func preSigned(t *testing.T, cert *credential.Certificate, clientID, aud string) *credential.Assertion {
	return &credential.Assertion{ID: "ns/sa", Provide: func(context.Context) (string, error) {
		return signAssertion(cert, clientID, aud, time.Now())
	}}
}

func asError(t *testing.T, err error) *Error {
	t.Helper()
	var te *Error
	if !errors.As(err, &te) {
		t.Fatalf("want *Error, got %T: %v", err, err)
	}
	return te
}
