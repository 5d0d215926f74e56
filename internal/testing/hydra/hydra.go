// Package hydra runs Ory Hydra, a certified OAuth2 server, on loopback for
// interoperability tests of the token engine.
//
// The binary is built from the Go module proxy by hack/setup-hydra.sh (see
// BinaryPath). Start runs it with a throwaway SQLite store and a fresh TLS
// certificate, on free loopback ports, and manages clients through the
// admin API.
package hydra

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/token-operator/token-operator/internal/testing/toolbin"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/token-operator/token-operator/internal/testing/syncbuf"
	"github.com/token-operator/token-operator/internal/testing/testcert"
)

// Version is the Hydra release hack/setup-hydra.sh builds.
const Version = "v2.3.0"

// Server is a running Hydra. Both interfaces serve HTTPS with a certificate
// that RootCAs trusts.
type Server struct {
	PublicURL string // https://127.0.0.1:<port>
	AdminURL  string // https://127.0.0.1:<port>
	// RootCAs trusts the server's certificate; give it to the token engine.
	RootCAs *x509.CertPool

	client *http.Client
	cmd    *exec.Cmd
	logs   *syncbuf.Buffer
	exited chan struct{}
	waitEr error

	stopOnce sync.Once
	stopErr  error
	dataDir  string
}

// Client is an OAuth2 client registered for the client credentials grant.
type Client struct {
	ID     string
	Secret string // for client_secret_basic and client_secret_post
	// AuthMethod is client_secret_basic (default), client_secret_post or
	// private_key_jwt.
	AuthMethod string
	Scopes     []string
	// JWKS are the public keys that verify private_key_jwt assertions. Hydra
	// picks the key by the assertion's kid and wants use "sig".
	JWKS []jose.JSONWebKey
	// SigningAlg is the only JWS algorithm Hydra accepts for this client's
	// assertions (token_endpoint_auth_signing_alg); Hydra's default is RS256.
	SigningAlg string
	Audience   []string
}

// Start runs binary on free loopback ports and waits until both interfaces
// are ready. ctx bounds the start only; Stop ends the process.
func Start(ctx context.Context, binary string) (*Server, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := start(ctx, binary)
		if err == nil {
			return s, nil
		}
		lastErr = err
		// A port taken between picking and binding is worth another try;
		// anything else is not.
		if ctx.Err() != nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, lastErr
}

func start(ctx context.Context, binary string) (*Server, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, pool, err := newTLSMaterial()
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	public := "https://127.0.0.1:" + strconv.Itoa(ports[0])
	admin := "https://127.0.0.1:" + strconv.Itoa(ports[1])

	// A file store in WAL mode, not DSN=memory: the in-memory store's shared
	// cache refuses client reads during concurrent client writes, which
	// Hydra reports as invalid_client.
	dataDir, err := os.MkdirTemp("", "hydra-")
	if err != nil {
		return nil, err
	}
	dsn := "DSN=sqlite://" + filepath.Join(dataDir, "db.sqlite") + "?_fk=true&_journal_mode=WAL&_busy_timeout=10000"
	migrate := exec.CommandContext(ctx, binary, "migrate", "sql", "up", "-e", "--yes")
	migrate.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), dsn, "SQA_OPT_OUT=true"}
	if out, err := migrate.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dataDir)
		return nil, fmt.Errorf("hydra migrate: %w\n%s", err, tail(string(out), 2000))
	}

	cmd := exec.Command(binary, "serve", "all", "--dev", "--sqa-opt-out")
	// A clean environment: Hydra reads its whole configuration from
	// variables, and the caller's (DSN, LOG_LEVEL, ...) must not leak in.
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.TempDir(),
		dsn,
		"LOG_LEVEL=info",
		"LOG_LEAK_SENSITIVE_VALUES=false",
		"SQA_OPT_OUT=true",
		"SERVE_PUBLIC_HOST=127.0.0.1",
		"SERVE_PUBLIC_PORT=" + strconv.Itoa(ports[0]),
		"SERVE_ADMIN_HOST=127.0.0.1",
		"SERVE_ADMIN_PORT=" + strconv.Itoa(ports[1]),
		"SERVE_TLS_ENABLED=true",
		"SERVE_TLS_CERT_BASE64=" + base64.StdEncoding.EncodeToString(certPEM),
		"SERVE_TLS_KEY_BASE64=" + base64.StdEncoding.EncodeToString(keyPEM),
		"URLS_SELF_ISSUER=" + public,
		"SECRETS_SYSTEM=" + hex.EncodeToString(secret),
	}
	logs := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dataDir)
		return nil, fmt.Errorf("starting hydra %s: %w", binary, err)
	}
	s := &Server{
		PublicURL: public,
		AdminURL:  admin,
		RootCAs:   pool,
		client: &http.Client{
			Timeout: 10 * time.Second,
			Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			},
		},
		cmd:     cmd,
		logs:    logs,
		exited:  make(chan struct{}),
		dataDir: dataDir,
	}
	go func() {
		s.waitEr = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(ctx); err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("%w\nhydra log:\n%s", err, tail(logs.String(), 4000))
	}
	return s, nil
}

func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, u := range []string{s.PublicURL + "/health/ready", s.AdminURL + "/health/ready"} {
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			resp, err := s.client.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-s.exited:
				return fmt.Errorf("hydra exited before it was ready: %v", s.waitEr)
			case <-ctx.Done():
				return fmt.Errorf("hydra not ready at %s: %w (last error: %v)", u, ctx.Err(), err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// Stop ends the process Start began and waits for it. It is safe to call
// more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.stopErr = toolbin.Stop(s.cmd.Process, s.exited, "hydra")
		s.client.CloseIdleConnections()
	})
	_ = os.RemoveAll(s.dataDir)
	return s.stopErr
}

// Logs returns everything Hydra wrote so far, for debugging and for checking
// which requests reached it.
func (s *Server) Logs() string { return s.logs.String() }

// HTTPClient returns a client that trusts the server's certificate.
func (s *Server) HTTPClient() *http.Client { return s.client }

// TokenURL is the token endpoint.
func (s *Server) TokenURL() string { return s.PublicURL + "/oauth2/token" }

// IssuerURL is the issuer; discovery is at /.well-known/openid-configuration.
func (s *Server) IssuerURL() string { return s.PublicURL }

// clientBody is the admin API's OAuth2 client (Hydra client.Client).
type clientBody struct {
	ID                      string              `json:"client_id"`
	Secret                  string              `json:"client_secret,omitempty"`
	GrantTypes              []string            `json:"grant_types"`
	ResponseTypes           []string            `json:"response_types"`
	Scope                   string              `json:"scope"`
	Audience                []string            `json:"audience"`
	TokenEndpointAuthMethod string              `json:"token_endpoint_auth_method,omitempty"`
	TokenEndpointSigningAlg string              `json:"token_endpoint_auth_signing_alg,omitempty"`
	JWKS                    *jose.JSONWebKeySet `json:"jwks,omitempty"`
}

var clientSeq atomic.Int64

// ClientID returns a client ID unique to the process: prefix, a dash and a
// number.
func ClientID(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, clientSeq.Add(1))
}

// CreateClient registers c for the client credentials grant.
func (s *Server) CreateClient(ctx context.Context, c Client) error {
	if c.ID == "" {
		return errors.New("hydra: client ID is required")
	}
	body := clientBody{
		ID:                      c.ID,
		Secret:                  c.Secret,
		GrantTypes:              []string{"client_credentials"},
		ResponseTypes:           []string{"token"},
		Scope:                   strings.Join(c.Scopes, " "),
		Audience:                c.Audience,
		TokenEndpointAuthMethod: c.AuthMethod,
		TokenEndpointSigningAlg: c.SigningAlg,
	}
	if body.Audience == nil {
		body.Audience = []string{}
	}
	if len(c.JWKS) > 0 {
		body.JWKS = &jose.JSONWebKeySet{Keys: c.JWKS}
	}
	return s.admin(ctx, http.MethodPost, "/admin/clients", body, http.StatusCreated, nil)
}

// VerificationKey is the JWK a Client needs in JWKS to verify
// private_key_jwt assertions signed with cert's key: the token engine names
// the key (kid) by the certificate's SHA-256 thumbprint, and Hydra wants use
// "sig".
func VerificationKey(cert *x509.Certificate, alg string) jose.JSONWebKey {
	sum := sha256.Sum256(cert.Raw)
	return jose.JSONWebKey{
		Key:       cert.PublicKey,
		KeyID:     base64.RawURLEncoding.EncodeToString(sum[:]),
		Algorithm: alg,
		Use:       "sig",
	}
}

// SetAccessTokenLifespan sets the lifetime of the client's client
// credentials access tokens. Other lifespans go back to Hydra's defaults.
func (s *Server) SetAccessTokenLifespan(ctx context.Context, clientID string, d time.Duration) error {
	body := map[string]string{"client_credentials_grant_access_token_lifespan": d.String()}
	return s.admin(ctx, http.MethodPut, "/admin/clients/"+url.PathEscape(clientID)+"/lifespans", body, http.StatusOK, nil)
}

// DeleteClient removes the client.
func (s *Server) DeleteClient(ctx context.Context, clientID string) error {
	return s.admin(ctx, http.MethodDelete, "/admin/clients/"+url.PathEscape(clientID), nil, http.StatusNoContent, nil)
}

// Introspect asks Hydra whether token is an active access token and for
// which client (RFC 7662).
func (s *Server) Introspect(ctx context.Context, token string) (active bool, clientID string, err error) {
	var out struct {
		Active   bool   `json:"active"`
		ClientID string `json:"client_id"`
	}
	form := url.Values{"token": {token}}
	if err := s.admin(ctx, http.MethodPost, "/admin/oauth2/introspect", form, http.StatusOK, &out); err != nil {
		return false, "", err
	}
	return out.Active, out.ClientID, nil
}

// admin calls the admin API. in is JSON, or a form when it is url.Values.
// Hydra's SQLite store answers 500 when concurrent writers collide (a busy
// database is not retried inside Hydra), so 5xx answers are tried again.
func (s *Server) admin(ctx context.Context, method, path string, in any, want int, out any) error {
	var payload []byte
	var ctype string
	switch v := in.(type) {
	case nil:
	case url.Values:
		payload, ctype = []byte(v.Encode()), "application/x-www-form-urlencoded"
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		payload, ctype = b, "application/json"
	}
	var err error
	for attempt := 1; attempt <= adminAttempts; attempt++ {
		var status int
		status, err = s.adminOnce(ctx, method, path, payload, ctype, want, out)
		if err == nil || status < 500 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		}
	}
	return err
}

const adminAttempts = 6

func (s *Server) adminOnce(ctx context.Context, method, path string, payload []byte, ctype string, want int, out any) (int, error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.AdminURL+path, body)
	if err != nil {
		return 0, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("hydra admin %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		return resp.StatusCode, fmt.Errorf("hydra admin %s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("hydra admin %s %s: reading answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// BinaryPath returns the Hydra binary: HYDRA_BINARY if set, else the one
// hack/setup-hydra.sh builds (several minutes the first time on a machine,
// then cached outside the clone). Build progress goes to stderr.
var BinaryPath = sync.OnceValues(func() (string, error) {
	return toolbin.Path("HYDRA_BINARY", "setup-hydra.sh", "Go module proxy access and a C compiler")
})

// freePorts asks the kernel for n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// newTLSMaterial makes a CA and a server certificate for 127.0.0.1 and
// localhost, PEM-encoded for Hydra, and a pool that trusts the CA.
func newTLSMaterial() (certPEM, keyPEM []byte, pool *x509.CertPool, err error) {
	ca, err := testcert.NewCA("hydra test CA")
	if err != nil {
		return nil, nil, nil, err
	}
	leaf, err := ca.Server("127.0.0.1", "localhost")
	if err != nil {
		return nil, nil, nil, err
	}
	keyPEM, err = testcert.NewPKCS8PEM(leaf.Key)
	if err != nil {
		return nil, nil, nil, err
	}
	return testcert.CertPEM(leaf.Cert), keyPEM, ca.Pool(), nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
