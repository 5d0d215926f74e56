package hydra_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/token-operator/token-operator/internal/credential"
	"github.com/token-operator/token-operator/internal/testing/hydra"
	"github.com/token-operator/token-operator/internal/testing/testcert"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// srv is one Hydra for the whole package; every test registers its own
// clients. Tests do not run in parallel so that the request log can show
// which requests a test caused.
var srv *hydra.Server

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// No Hydra is a failure, never a skip: these tests are the proof that
	// the engine talks to a real, certified OAuth2 server.
	bin, err := hydra.BinaryPath()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: no Hydra binary:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err = hydra.Start(ctx, bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: starting Hydra:", err)
		return 1
	}
	code := m.Run()
	if err := srv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping Hydra:", err)
	}
	return code
}

// endpoint is how a request names the server: its token URL, or its issuer
// with discovery.
type endpoint struct {
	name string
	set  func(r *tokensource.Request)
}

func endpoints() []endpoint {
	return []endpoint{
		{"through the token URL", func(r *tokensource.Request) { r.TokenURL = srv.TokenURL() }},
		{"through the issuer URL and discovery", func(r *tokensource.Request) { r.IssuerURL = srv.IssuerURL() }},
	}
}

func newEngine() *tokensource.Engine {
	return tokensource.New(tokensource.Options{RootCAs: srv.RootCAs, Timeout: 10 * time.Second})
}

// certificate is a self-signed certificate with the JWK Hydra needs to
// verify assertions signed with its key.
func certificate(t *testing.T, key crypto.Signer, alg string) (*credential.Certificate, jose.JSONWebKey) {
	t.Helper()
	cert := testcert.SelfSigned(t, key, "token-operator interop client", testcert.WithKeyUsage(x509.KeyUsageDigitalSignature))
	return &credential.Certificate{Chain: []*x509.Certificate{cert}, Key: key}, hydra.VerificationKey(cert, alg)
}

// assertIssuedBy checks that Hydra knows tok as an active token of clientID.
func assertIssuedBy(t *testing.T, tok tokensource.Token, clientID string) {
	t.Helper()
	active, got, err := srv.Introspect(context.Background(), tok.AccessToken)
	if err != nil {
		t.Fatalf("introspection: %v", err)
	}
	if !active || got != clientID {
		t.Fatalf("introspection says active=%v client_id=%q, want active for %q", active, got, clientID)
	}
}

func TestEngineGetsTokensFromHydraWithEachClientAuthentication(t *testing.T) {
	// Hydra URL-decodes Basic credentials (RFC 6749 §2.3.1), so these only
	// pass when the engine form-url-encodes them first.
	const oddSecret = "100% real+secret: with spaces"
	cases := []struct {
		name string
		// client returns the Hydra registration and the engine's credential.
		client func(t *testing.T, id string) (hydra.Client, credential.Credential)
		// fetches > 1 proves each assertion has a fresh jti: Hydra refuses
		// a replayed one.
		fetches int
	}{
		{
			name: "client_secret_basic with a secret holding %, +, : and spaces",
			client: func(t *testing.T, id string) (hydra.Client, credential.Credential) {
				return hydra.Client{ID: id, Secret: oddSecret, AuthMethod: "client_secret_basic", Scopes: []string{"read", "write"}},
					&credential.ClientSecret{Secret: oddSecret}
			},
			fetches: 1,
		},
		{
			name: "client_secret_basic with a client ID holding :, %, + and a space",
			client: func(t *testing.T, id string) (hydra.Client, credential.Credential) {
				return hydra.Client{ID: "odd:id%+ " + id, Secret: "plain-secret-123", AuthMethod: "client_secret_basic", Scopes: []string{"read", "write"}},
					&credential.ClientSecret{Secret: "plain-secret-123", AuthMethod: credential.ClientSecretBasic}
			},
			fetches: 1,
		},
		{
			name: "client_secret_post",
			client: func(t *testing.T, id string) (hydra.Client, credential.Credential) {
				return hydra.Client{ID: id, Secret: oddSecret, AuthMethod: "client_secret_post", Scopes: []string{"read", "write"}},
					&credential.ClientSecret{Secret: oddSecret, AuthMethod: credential.ClientSecretPost}
			},
			fetches: 1,
		},
		{
			name: "private_key_jwt with an RS256 certificate",
			client: func(t *testing.T, id string) (hydra.Client, credential.Credential) {
				cert, jwk := certificate(t, testcert.RSA(t, 2048), "RS256")
				cert.Algorithm = "RS256"
				return hydra.Client{ID: id, AuthMethod: "private_key_jwt", SigningAlg: "RS256", JWKS: []jose.JSONWebKey{jwk}, Scopes: []string{"read", "write"}}, cert
			},
			fetches: 2,
		},
		{
			name: "private_key_jwt with a PS256 certificate",
			client: func(t *testing.T, id string) (hydra.Client, credential.Credential) {
				cert, jwk := certificate(t, testcert.RSA(t, 2048), "PS256")
				cert.Algorithm = "PS256"
				return hydra.Client{ID: id, AuthMethod: "private_key_jwt", SigningAlg: "PS256", JWKS: []jose.JSONWebKey{jwk}, Scopes: []string{"read", "write"}}, cert
			},
			fetches: 2,
		},
		{
			name: "private_key_jwt with an ES256 certificate and the algorithm picked from the key",
			client: func(t *testing.T, id string) (hydra.Client, credential.Credential) {
				cert, jwk := certificate(t, testcert.EC(t), "ES256")
				return hydra.Client{ID: id, AuthMethod: "private_key_jwt", SigningAlg: "ES256", JWKS: []jose.JSONWebKey{jwk}, Scopes: []string{"read", "write"}}, cert
			},
			fetches: 2,
		},
	}
	for _, tc := range cases {
		for _, ep := range endpoints() {
			t.Run(tc.name+" "+ep.name, func(t *testing.T) {
				ctx := context.Background()
				hc, cred := tc.client(t, hydra.ClientID("auth"))
				if err := srv.CreateClient(ctx, hc); err != nil {
					t.Fatal(err)
				}
				req := tokensource.Request{ClientID: hc.ID, Scopes: []string{"read"}, Credential: cred}
				ep.set(&req)
				eng := newEngine()
				var tokens []string
				for i := 0; i < tc.fetches; i++ {
					tok, err := eng.Fetch(ctx, req, nil)
					if err != nil {
						t.Fatalf("fetch %d: %v\nhydra log tail:\n%s", i+1, err, logTail(2000))
					}
					if tok.AccessToken == "" || !strings.EqualFold(tok.TokenType, "bearer") {
						t.Fatalf("fetch %d: token type %q, token empty: %v", i+1, tok.TokenType, tok.AccessToken == "")
					}
					if life := tok.ExpiresAt.Sub(tok.IssuedAt); life < 59*time.Minute || life > time.Hour {
						t.Errorf("fetch %d: lifetime %v, want Hydra's default of 1h", i+1, life)
					}
					if strings.Join(tok.Scopes, " ") != "read" {
						t.Errorf("fetch %d: scopes %q, want [read]", i+1, tok.Scopes)
					}
					assertIssuedBy(t, tok, hc.ID)
					tokens = append(tokens, tok.AccessToken)
				}
				if len(tokens) == 2 && tokens[0] == tokens[1] {
					t.Error("two fetches returned the same token")
				}
			})
		}
	}
}

func TestEngineReadsTheClientsAccessTokenLifespanFromHydra(t *testing.T) {
	for _, ep := range endpoints() {
		t.Run(ep.name, func(t *testing.T) {
			ctx := context.Background()
			id := hydra.ClientID("lifespan")
			if err := srv.CreateClient(ctx, hydra.Client{ID: id, Secret: "lifespan-secret", Scopes: []string{"read"}}); err != nil {
				t.Fatal(err)
			}
			if err := srv.SetAccessTokenLifespan(ctx, id, 90*time.Second); err != nil {
				t.Fatal(err)
			}
			req := tokensource.Request{ClientID: id, Scopes: []string{"read"}, Credential: &credential.ClientSecret{Secret: "lifespan-secret"}}
			ep.set(&req)
			tok, err := newEngine().Fetch(ctx, req, nil)
			if err != nil {
				t.Fatal(err)
			}
			if life := tok.ExpiresAt.Sub(tok.IssuedAt); life < 85*time.Second || life > 90*time.Second {
				t.Fatalf("lifetime %v, want about 90s", life)
			}
			assertIssuedBy(t, tok, id)
		})
	}
}

func TestEngineReportsHydraRefusalsAsTypedErrors(t *testing.T) {
	const secret = "refusal-secret"
	cases := []struct {
		name string
		// prepare registers what the case needs and returns the request's
		// client ID, scopes and secret.
		prepare       func(t *testing.T, ctx context.Context) (id string, scopes []string, secret string)
		wantCode      string
		wantStatus    int
		wantRetryable bool
	}{
		{
			name: "a deleted client is invalid_client and not retryable",
			prepare: func(t *testing.T, ctx context.Context) (string, []string, string) {
				id := hydra.ClientID("deleted")
				if err := srv.CreateClient(ctx, hydra.Client{ID: id, Secret: secret, Scopes: []string{"read"}}); err != nil {
					t.Fatal(err)
				}
				if err := srv.DeleteClient(ctx, id); err != nil {
					t.Fatal(err)
				}
				return id, []string{"read"}, secret
			},
			wantCode: "invalid_client", wantStatus: 401,
		},
		{
			name: "a wrong secret is invalid_client and not retryable",
			prepare: func(t *testing.T, ctx context.Context) (string, []string, string) {
				id := hydra.ClientID("wrong-secret")
				if err := srv.CreateClient(ctx, hydra.Client{ID: id, Secret: secret, Scopes: []string{"read"}}); err != nil {
					t.Fatal(err)
				}
				return id, []string{"read"}, secret + "-old"
			},
			wantCode: "invalid_client", wantStatus: 401,
		},
		{
			name: "a scope the client does not have is invalid_scope and not retryable",
			prepare: func(t *testing.T, ctx context.Context) (string, []string, string) {
				id := hydra.ClientID("scope")
				if err := srv.CreateClient(ctx, hydra.Client{ID: id, Secret: secret, Scopes: []string{"read"}}); err != nil {
					t.Fatal(err)
				}
				return id, []string{"read", "admin"}, secret
			},
			wantCode: "invalid_scope", wantStatus: 400,
		},
	}
	for _, tc := range cases {
		for _, ep := range endpoints() {
			t.Run(tc.name+" "+ep.name, func(t *testing.T) {
				ctx := context.Background()
				id, scopes, sec := tc.prepare(t, ctx)
				req := tokensource.Request{ClientID: id, Scopes: scopes, Credential: &credential.ClientSecret{Secret: sec}}
				ep.set(&req)
				_, err := newEngine().Fetch(ctx, req, nil)
				var te *tokensource.Error
				if !errors.As(err, &te) {
					t.Fatalf("error %T %v, want *tokensource.Error", err, err)
				}
				if te.Code != tc.wantCode || te.StatusCode != tc.wantStatus || te.Retryable != tc.wantRetryable {
					t.Fatalf("got code %q status %d retryable %v, want %q %d %v (%v)", te.Code, te.StatusCode, te.Retryable, tc.wantCode, tc.wantStatus, tc.wantRetryable, err)
				}
				if strings.Contains(err.Error(), sec) {
					t.Fatalf("error text holds the secret: %v", err)
				}
			})
		}
	}
}

func TestEngineSendsNothingToHydraWhenItsHostIsNotAllowed(t *testing.T) {
	u, err := url.Parse(srv.PublicURL)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "allowed-hosts-secret"
	id := hydra.ClientID("hosts")
	ctx := context.Background()
	if err := srv.CreateClient(ctx, hydra.Client{ID: id, Secret: secret, Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		allowed []string
	}{
		{"another host", []string{"login.example.com"}},
		{"the same host without its port, which means port 443 only", []string{u.Hostname()}},
		{"the same host on another port", []string{u.Hostname() + ":1"}},
	}
	for _, tc := range cases {
		for _, ep := range endpoints() {
			t.Run(tc.name+" "+ep.name, func(t *testing.T) {
				req := tokensource.Request{ClientID: id, Scopes: []string{"read"}, Credential: &credential.ClientSecret{Secret: secret}, AllowedHosts: tc.allowed}
				ep.set(&req)
				mark := len(srv.Logs())
				_, err := newEngine().Fetch(ctx, req, nil)
				var hn *tokensource.HostNotAllowedError
				if !errors.As(err, &hn) {
					t.Fatalf("error %T %v, want *tokensource.HostNotAllowedError", err, err)
				}
				if hn.Host != u.Host {
					t.Errorf("refused host %q, want %q", hn.Host, u.Host)
				}
				if reqs := publicRequests(srv.Logs()[mark:]); len(reqs) != 0 {
					t.Fatalf("Hydra saw requests although the host is not allowed: %q", reqs)
				}

				// The control: allowing host:port lets the same request
				// through, and the log then shows it.
				req.AllowedHosts = []string{u.Host}
				tok, err := newEngine().Fetch(ctx, req, nil)
				if err != nil {
					t.Fatal(err)
				}
				assertIssuedBy(t, tok, id)
				if reqs := publicRequests(srv.Logs()[mark:]); !containsPath(reqs, "/oauth2/token") {
					t.Fatalf("Hydra's log does not show the allowed token request; requests seen: %q", reqs)
				}
			})
		}
	}
}

// publicRequests lists the paths of requests Hydra's public interface
// started handling in log.
func publicRequests(log string) []string {
	var paths []string
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "msg=started handling request") {
			continue
		}
		i := strings.Index(line, " path:")
		if i < 0 {
			continue
		}
		p := line[i+len(" path:"):]
		if j := strings.IndexByte(p, ' '); j >= 0 {
			p = p[:j]
		}
		if !strings.HasPrefix(p, "/admin/") && p != "/health/ready" {
			paths = append(paths, p)
		}
	}
	return paths
}

func containsPath(paths []string, want string) bool {
	for _, p := range paths {
		if p == want {
			return true
		}
	}
	return false
}

func logTail(n int) string {
	l := srv.Logs()
	if len(l) > n {
		return "..." + l[len(l)-n:]
	}
	return l
}
