package interop_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/hydra"
	"github.com/token-operator/token-operator/internal/testing/kube"
	"github.com/token-operator/token-operator/internal/testing/testcert"
	"github.com/token-operator/token-operator/internal/testing/zitadelop"
)

// The same operator against a second, independent OAuth2 server: one built
// on github.com/zitadel/oidc's op package (hack/tools/zitadelop), which
// authenticates each client only by the method it was registered with.

var (
	zsrv *zitadelop.Server
	// zHost is the server's host:port, the consent annotation's value.
	zHost string
	// zCerts holds the certificate and key of each private_key_jwt client,
	// registered with the server at start.
	zCerts = map[string]zCert{}
)

type zCert struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// zMethod is a client authentication method and the credential for it.
type zMethod struct {
	name, authMethod string
	// key makes a certificate client's key; nil for a client secret.
	key  func() (crypto.Signer, error)
	alg  string
	cred func(name string) *v1.Credential
}

// zOddSecret only works when the operator form-url-encodes it for Basic.
const zOddSecret = "100% real+secret: with spaces"

func zMethods() []zMethod {
	return []zMethod{
		{name: "basic", authMethod: "client_secret_basic", cred: func(n string) *v1.Credential {
			return &v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: n}}
		}},
		{name: "post", authMethod: "client_secret_post", cred: func(n string) *v1.Credential {
			return &v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: n, AuthMethod: v1.ClientSecretPost}}
		}},
		{name: "rs256", authMethod: "private_key_jwt", alg: "RS256",
			key: func() (crypto.Signer, error) { return testcert.NewRSA(2048) },
			cred: func(n string) *v1.Credential {
				return &v1.Credential{Certificate: &v1.CertificateCredential{SecretName: n}}
			}},
		{name: "es256", authMethod: "private_key_jwt", alg: "ES256",
			key: func() (crypto.Signer, error) { return testcert.NewEC() },
			cred: func(n string) *v1.Credential {
				return &v1.Credential{Certificate: &v1.CertificateCredential{SecretName: n, SigningAlgorithm: "ES256"}}
			}},
	}
}

// zEndpoints are the two ways a TokenRequest names the server.
func zEndpoints() []endpoint {
	return []endpoint{
		{"issuer", func(s *v1.TokenRequestSpec) { s.IssuerURL = zsrv.IssuerURL() }},
		{"token", func(s *v1.TokenRequestSpec) { s.TokenURL = zsrv.TokenURL() }},
	}
}

// zClientID names the client for one method and endpoint: each pair has
// its own client, so no case can pass on a token another case got.
func zClientID(m zMethod, ep endpoint) string { return "z-" + m.name + "-" + ep.name }

const (
	zRefusedClient = "z-refused"
	zRightSecret   = "the-right-secret"
)

// startZitadelOP starts the server with every client the tests use. A
// missing binary is a failure, as for Hydra.
func startZitadelOP(ctx context.Context, apiServer *rest.Config) (stop func(), err error) {
	bin, err := zitadelop.BinaryPath()
	if err != nil {
		return nil, fmt.Errorf("no zitadelop binary: %w", err)
	}
	clients := []zitadelop.Client{{ID: zRefusedClient, Secret: zRightSecret, AuthMethod: "client_secret_basic", Scopes: []string{"read"}},
		{ID: zExchanger, Secret: zRightSecret, AuthMethod: "client_secret_basic", Scopes: []string{"read"}, Audiences: []string{zAllowedAudience}},
		{ID: zAudienceExchanger, Secret: zRightSecret, AuthMethod: "client_secret_basic", Scopes: []string{"read"}}}
	subjects, err := apiServerSubjectIssuer(ctx, apiServer)
	if err != nil {
		return nil, err
	}
	for _, m := range zMethods() {
		for _, ep := range []string{"issuer", "token"} {
			id := zClientID(m, endpoint{name: ep})
			c := zitadelop.Client{ID: id, AuthMethod: m.authMethod, Scopes: []string{"read", "write"}}
			if m.key == nil {
				c.Secret = zOddSecret
			} else {
				key, err := m.key()
				if err != nil {
					return nil, err
				}
				cert, err := testcert.NewSelfSigned(key, "token-operator interop client", testcert.WithKeyUsage(x509.KeyUsageDigitalSignature))
				if err != nil {
					return nil, err
				}
				zCerts[id] = zCert{cert: cert, key: key}
				c.Keys = []jose.JSONWebKey{hydra.VerificationKey(cert, m.alg)}
			}
			clients = append(clients, c)
		}
	}
	// op checks a client assertion's aud against its issuer; the operator
	// sends the token endpoint URL (RFC 7523 §3, OpenID Connect Core §9).
	zsrv, err = zitadelop.Start(ctx, bin, zitadelop.Options{Clients: clients, AssertionAudienceIsTokenURL: true, SubjectIssuers: subjects})
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(zsrv.URL)
	if err != nil {
		_ = zsrv.Stop()
		return nil, err
	}
	zHost = u.Host
	return func() { _ = zsrv.Stop() }, nil
}

// operatorRoots trusts both servers' CAs.
func operatorRoots() *x509.CertPool {
	pool := srv.RootCAs.Clone()
	pool.AddCert(zsrv.CA)
	return pool
}

// zCredential creates the credential Secret name for client id.
func zCredential(t *testing.T, ns, name, id, secret string) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
		Annotations: map[string]string{v1.AnnotationAllowedIssuers: zHost}}}
	if c, ok := zCerts[id]; ok {
		s.Type = corev1.SecretTypeTLS
		s.Data = map[string][]byte{corev1.TLSCertKey: testcert.CertPEM(c.cert), corev1.TLSPrivateKeyKey: testcert.PKCS8PEM(t, c.key)}
	} else {
		s.StringData = map[string]string{"clientSecret": secret}
	}
	k8s.MustCreate(t, s)
}

func zCreateTokenRequest(t *testing.T, tr *v1.TokenRequest) {
	t.Helper()
	createTokenRequest(t, tr)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("zitadelop log tail:\n%s", tail(zsrv.Logs(), 3000))
		}
	})
}

func TestZitadelOPDiscoveryOffersWhatTheseTestsUse(t *testing.T) {
	d, err := zsrv.Discovery(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.Issuer != zsrv.IssuerURL() || d.TokenEndpoint != zsrv.TokenURL() {
		t.Errorf("discovery says issuer %q, token endpoint %q; want %q, %q", d.Issuer, d.TokenEndpoint, zsrv.IssuerURL(), zsrv.TokenURL())
	}
	if !slices.Contains(d.GrantTypes, "client_credentials") {
		t.Errorf("grant types %v lack client_credentials", d.GrantTypes)
	}
	for _, m := range []string{"client_secret_basic", "client_secret_post", "private_key_jwt"} {
		if !slices.Contains(d.TokenAuthMethods, m) {
			t.Errorf("token endpoint auth methods %v lack %s", d.TokenAuthMethods, m)
		}
	}
}

func TestEachClientAuthenticationGetsATokenFromZitadelOP(t *testing.T) {
	ns := k8s.NewNamespace(t)
	for _, m := range zMethods() {
		for _, ep := range zEndpoints() {
			t.Run(m.authMethod+" "+m.name+" through the "+ep.name+" URL", func(t *testing.T) {
				t.Parallel()
				id := zClientID(m, ep)
				zCredential(t, ns, id+"-cred", id, zOddSecret)
				tr := &v1.TokenRequest{
					ObjectMeta: metav1.ObjectMeta{Name: id, Namespace: ns},
					Spec:       v1.TokenRequestSpec{ClientID: id, Scopes: []string{"read"}, Credential: m.cred(id + "-cred")},
				}
				ep.set(&tr.Spec)
				zCreateTokenRequest(t, tr)

				tr = k8s.WaitReady(t, ns, id)
				if c := kube.Condition(tr, v1.ConditionReady); c.Reason != v1.ReasonIssued {
					t.Errorf("Ready reason %q, want %q", c.Reason, v1.ReasonIssued)
				}
				if got := strings.Join(tr.Status.Scopes, " "); got != "read" {
					t.Errorf("granted scopes %q, want read", got)
				}
				s := k8s.GetSecret(t, ns, id)
				claims, err := zsrv.VerifyAccessToken(context.Background(), string(s.Data[v1.KeyAccessToken]))
				if err != nil {
					t.Fatalf("the Secret's access token does not verify with the server's JWKS: %v", err)
				}
				if claims.Subject != id || claims.ClientID != id {
					t.Errorf("token for sub %q client_id %q, want %q", claims.Subject, claims.ClientID, id)
				}
				expires, err := time.Parse(time.RFC3339, string(s.Data[v1.KeyExpiresAt]))
				if err != nil {
					t.Fatalf("expires_at: %v", err)
				}
				if d := expires.Sub(claims.Expiry.Time()); d < -time.Second || d > time.Second {
					t.Errorf("expires_at %s, the token's exp %s", expires, claims.Expiry.Time())
				}
			})
		}
	}
}

func TestAWrongSecretIsRefusedByZitadelOP(t *testing.T) {
	ns := k8s.NewNamespace(t)
	const wrong = "a-wrong-secret"
	zCredential(t, ns, "refused-cred", zRefusedClient, wrong)
	before := zsrv.TokenCalls()
	zCreateTokenRequest(t, &v1.TokenRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "refused", Namespace: ns},
		Spec: v1.TokenRequestSpec{IssuerURL: zsrv.IssuerURL(), ClientID: zRefusedClient, Scopes: []string{"read"},
			Credential: &v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: "refused-cred"}}},
	})

	tr := k8s.WaitReason(t, ns, "refused", v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonTokenServiceRejected)
	msg := kube.Condition(tr, v1.ConditionStalled).Message
	if !strings.Contains(msg, "invalid_client") {
		t.Errorf("Stalled message lacks invalid_client: %s", msg)
	}
	if strings.Contains(msg, wrong) {
		t.Errorf("Stalled message shows the client secret: %s", msg)
	}
	if c := kube.Condition(tr, v1.ConditionReady); c == nil || c.Status != metav1.ConditionFalse || c.Reason != v1.ReasonTokenServiceRejected {
		t.Errorf("Ready %s, want False %s", kube.Describe(c), v1.ReasonTokenServiceRejected)
	}
	if s := k8s.FindSecret(t, ns, "refused"); s != nil {
		t.Error("a refused client got a Secret")
	}
	if zsrv.TokenCalls() == before || !strings.Contains(zsrv.Logs(), "path=/oauth/token status=400") {
		t.Errorf("the server refused no token request")
	}
}
