// Package zitadelop runs the zitadelop test server (an OAuth2 server built on
// github.com/zitadel/oidc's op package, hack/tools/zitadelop) on loopback for
// interoperability tests: a second implementation beside Ory Hydra.
//
// The binary is built from the Go module proxy by hack/setup-zitadelop.sh
// (see BinaryPath). Start runs it over TLS with a fresh test CA and the
// clients given; they cannot change while it runs. Besides the client
// credentials grant it does token exchange (RFC 8693) for access tokens.
package zitadelop

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/token-operator/token-operator/internal/testing/toolbin"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/token-operator/token-operator/internal/testing/syncbuf"
	"github.com/token-operator/token-operator/internal/testing/testcert"
)

// Client is a client registered at start for the client credentials grant.
type Client struct {
	ID     string `json:"id"`
	Secret string `json:"secret,omitempty"`
	// AuthMethod is client_secret_basic, client_secret_post or
	// private_key_jwt; the server refuses any other method for the client.
	AuthMethod string   `json:"auth_method"`
	Scopes     []string `json:"scopes"`
	// Keys verify private_key_jwt assertions; the server picks one by kid.
	Keys []jose.JSONWebKey `json:"keys,omitempty"`
	// TokenLifetime in seconds; 0 is one hour.
	TokenLifetime int `json:"token_lifetime,omitempty"`
	// Audiences, when set, are the only audiences a token exchange of
	// this client may ask for; the server answers invalid_target otherwise.
	Audiences []string `json:"audiences,omitempty"`
}

// Options are what the server is started with.
type Options struct {
	Clients []Client
	// AssertionAudienceIsTokenURL makes the server want the token endpoint
	// URL in a client assertion's aud instead of op's default, the issuer.
	AssertionAudienceIsTokenURL bool
	// SubjectIssuers are trusted for RFC 8693 subject and actor tokens,
	// besides the server's own access tokens.
	SubjectIssuers []SubjectIssuer
}

// SubjectIssuer is an issuer whose JWTs (for the audience given, signed
// with one of the keys) the server exchanges for its own access tokens.
type SubjectIssuer struct {
	Issuer   string            `json:"issuer"`
	Audience string            `json:"audience"`
	Keys     []jose.JSONWebKey `json:"keys"`
}

type config struct {
	Issuer            string          `json:"issuer"`
	Listen            string          `json:"listen"`
	TLSCert           string          `json:"tls_cert"`
	TLSKey            string          `json:"tls_key"`
	AssertionAudience string          `json:"assertion_audience,omitempty"`
	Clients           []Client        `json:"clients"`
	SubjectIssuers    []SubjectIssuer `json:"subject_issuers,omitempty"`
}

// Server is a running zitadelop.
type Server struct {
	URL string // https://127.0.0.1:<port>, the issuer
	// RootCAs trusts the server's certificate; CA is its only certificate.
	RootCAs *x509.CertPool
	CA      *x509.Certificate

	client  *http.Client
	cmd     *exec.Cmd
	logs    *syncbuf.Buffer
	exited  chan struct{}
	waitErr error
	dir     string

	stopOnce sync.Once
	stopErr  error
}

// IssuerURL is the issuer; discovery is at /.well-known/openid-configuration.
func (s *Server) IssuerURL() string { return s.URL }

// TokenURL is the token endpoint.
func (s *Server) TokenURL() string { return s.URL + "/oauth/token" }

// Logs returns everything the server wrote so far.
func (s *Server) Logs() string { return s.logs.String() }

// TokenCalls counts the token requests the server has answered, of every
// grant.
func (s *Server) TokenCalls() int {
	return strings.Count(s.logs.String(), "request method=POST path=/oauth/token ")
}

// Start runs binary on a free loopback port and waits until discovery
// answers. ctx bounds the start only; Stop ends the process.
func Start(ctx context.Context, binary string, o Options) (*Server, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := start(ctx, binary, o)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if ctx.Err() != nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, lastErr
}

func start(ctx context.Context, binary string, o Options) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	ca, err := testcert.NewCA("zitadelop test CA")
	if err != nil {
		return nil, err
	}
	leaf, err := ca.Server("127.0.0.1", "localhost")
	if err != nil {
		return nil, err
	}
	keyPEM, err := testcert.NewPKCS8PEM(leaf.Key)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "zitadelop-")
	if err != nil {
		return nil, err
	}
	url := "https://127.0.0.1:" + strconv.Itoa(port)
	c := config{
		Issuer:         url,
		Listen:         "127.0.0.1:" + strconv.Itoa(port),
		TLSCert:        filepath.Join(dir, "tls.crt"),
		TLSKey:         filepath.Join(dir, "tls.key"),
		Clients:        o.Clients,
		SubjectIssuers: o.SubjectIssuers,
	}
	if o.AssertionAudienceIsTokenURL {
		c.AssertionAudience = url + "/oauth/token"
	}
	cfg, err := json.Marshal(c)
	if err == nil {
		err = errors.Join(
			os.WriteFile(c.TLSCert, testcert.CertPEM(leaf.Cert), 0o600),
			os.WriteFile(c.TLSKey, keyPEM, 0o600),
			os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o600))
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}

	cmd := exec.Command(binary, "-config", filepath.Join(dir, "config.json"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}
	logs := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("starting %s: %w", binary, err)
	}
	s := &Server{
		URL:     url,
		RootCAs: ca.Pool(),
		CA:      ca.Cert,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12},
		}},
		cmd:    cmd,
		logs:   logs,
		exited: make(chan struct{}),
		dir:    dir,
	}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(ctx); err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("%w\nzitadelop log:\n%s", err, logs.String())
	}
	return s, nil
}

func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		_, err := s.discovery(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("zitadelop exited before it was ready: %v", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("zitadelop not ready: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Discovery is the part of the server's discovery document the tests read.
type Discovery struct {
	Issuer            string   `json:"issuer"`
	TokenEndpoint     string   `json:"token_endpoint"`
	JWKSURI           string   `json:"jwks_uri"`
	GrantTypes        []string `json:"grant_types_supported"`
	TokenAuthMethods  []string `json:"token_endpoint_auth_methods_supported"`
	TokenAuthSignAlgs []string `json:"token_endpoint_auth_signing_alg_values_supported"`
}

func (s *Server) discovery(ctx context.Context) (*Discovery, error) {
	var d Discovery
	return &d, s.getJSON(ctx, s.URL+"/.well-known/openid-configuration", &d)
}

// Discovery reads the server's discovery document.
func (s *Server) Discovery(ctx context.Context) (*Discovery, error) { return s.discovery(ctx) }

func (s *Server) getJSON(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %s", u, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

// AccessTokenClaims are the claims of a verified access token.
type AccessTokenClaims struct {
	jwt.Claims
	ClientID string `json:"client_id"`
}

// VerifyAccessToken checks token's signature against the keys the server
// publishes at its discovered jwks_uri, and its issuer and expiry.
func (s *Server) VerifyAccessToken(ctx context.Context, token string) (*AccessTokenClaims, error) {
	d, err := s.discovery(ctx)
	if err != nil {
		return nil, err
	}
	var keys jose.JSONWebKeySet
	if err := s.getJSON(ctx, d.JWKSURI, &keys); err != nil {
		return nil, err
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, err
	}
	var c AccessTokenClaims
	if err := tok.Claims(keys, &c); err != nil {
		return nil, fmt.Errorf("access token signature: %w", err)
	}
	if err := c.Validate(jwt.Expected{Issuer: s.URL, Time: time.Now()}); err != nil {
		return nil, err
	}
	return &c, nil
}

// Stop ends the process and waits for it. Safe to call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.stopErr = toolbin.Stop(s.cmd.Process, s.exited, "zitadelop")
		s.client.CloseIdleConnections()
		_ = os.RemoveAll(s.dir)
	})
	return s.stopErr
}

// BinaryPath returns the server binary: ZITADELOP_BINARY if set, else the
// one hack/setup-zitadelop.sh builds (about a minute and a half the first
// time, then cached outside the clone).
var BinaryPath = sync.OnceValues(func() (string, error) {
	return toolbin.Path("ZITADELOP_BINARY", "setup-zitadelop.sh", "Go module proxy access")
})

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
