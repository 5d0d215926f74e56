// Command zitadelop is an OAuth2 authorization server for the interop tests:
// github.com/zitadel/oidc's op package (discovery, JWKS, token endpoint,
// client authentication, JWT access tokens) over an in-memory store of the
// clients given at start. Only the client credentials grant and token
// exchange (RFC 8693) are enabled.
//
// Usage: zitadelop -config file.json (see config). It serves HTTPS on
// config.listen until SIGTERM.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// config is the JSON file the tests write.
type config struct {
	Issuer string `json:"issuer"`
	Listen string `json:"listen"`
	// TLSCert and TLSKey are PEM files.
	TLSCert string `json:"tls_cert"`
	TLSKey  string `json:"tls_key"`
	// AssertionAudience is the aud a private_key_jwt assertion must
	// contain. op's own check wants the issuer; RFC 7523 §3 and OpenID
	// Connect Core §9 name the token endpoint URL, which some clients send.
	AssertionAudience string         `json:"assertion_audience"`
	Clients           []clientConfig `json:"clients"`
	// SubjectIssuers are trusted for token exchange subject tokens besides
	// this server's own access tokens.
	SubjectIssuers []subjectIssuer `json:"subject_issuers"`
}

func main() {
	path := flag.String("config", "", "JSON configuration file")
	flag.Parse()
	if err := run(*path); err != nil {
		log.Fatal(err)
	}
}

func run(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var c config
	if err := json.Unmarshal(b, &c); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	st, err := newStorage(c.Clients, c.SubjectIssuers, key)
	if err != nil {
		return err
	}
	opc := &op.Config{AuthMethodPost: true, AuthMethodPrivateKeyJWT: true}
	if _, err := rand.Read(opc.CryptoKey[:]); err != nil {
		return err
	}
	provider, err := op.NewProvider(opc, st, op.StaticIssuer(c.Issuer))
	if err != nil {
		return err
	}
	aud := c.AssertionAudience
	if aud == "" {
		aud = c.Issuer
	}
	endpoints := op.Endpoints{Token: op.NewEndpoint("oauth/token"), JwksURI: op.NewEndpoint("keys")}
	srv := &server{
		LegacyServer: op.NewLegacyServer(provider, endpoints),
		assertions:   assertionExchanger{Provider: provider, audience: aud},
		storage:      st,
	}
	h := op.RegisterServer(srv, endpoints, op.WithHTTPMiddleware(logRequests, op.NewIssuerInterceptor(provider.IssuerFromRequest).Handler))
	hs := &http.Server{Addr: c.Listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.ListenAndServeTLS(c.TLSCert, c.TLSKey) }()
	log.Printf("serving %s on %s", c.Issuer, c.Listen)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}

// server is op's LegacyServer with client authentication that honours each
// client's registered method. LegacyServer hands every client credentials
// request to ClientCredentialsStorage with the ID and secret only, so
// private_key_jwt never reaches op's assertion check and basic and post are
// not told apart.
type server struct {
	*op.LegacyServer
	assertions assertionExchanger
	storage    *storage
}

func (s *server) VerifyClient(ctx context.Context, r *op.Request[op.ClientCredentials]) (op.Client, error) {
	used := oidc.AuthMethodPost
	switch {
	case r.Data.ClientAssertionType == oidc.ClientAssertionTypeJWTAssertion:
		used = oidc.AuthMethodPrivateKeyJWT
	case r.Header.Get("Authorization") != "":
		used = oidc.AuthMethodBasic
	}
	if used == oidc.AuthMethodPrivateKeyJWT {
		c, err := op.AuthorizePrivateJWTKey(ctx, r.Data.ClientAssertion, s.assertions)
		if err != nil {
			return nil, oidc.ErrInvalidClient().WithDescription("client assertion refused").WithParent(err)
		}
		return c, nil
	}
	c, err := s.storage.client(r.Data.ClientID)
	if err != nil {
		return nil, err
	}
	if c.method != used {
		return nil, oidc.ErrInvalidClient().WithDescription("client %q authenticates with %s, not %s", c.id, c.method, used)
	}
	if err := op.AuthorizeClientIDSecret(ctx, r.Data.ClientID, r.Data.ClientSecret, s.storage); err != nil {
		return nil, err
	}
	return c, nil
}

// assertionExchanger is the provider with op's JWT profile verifier for
// client assertions, checking aud against the configured audience.
type assertionExchanger struct {
	*op.Provider
	audience string
}

func (a assertionExchanger) JWTProfileVerifier(context.Context) *op.JWTProfileVerifier {
	return op.NewJWTProfileVerifier(a.Storage(), a.audience, time.Hour, time.Second)
}

// logRequests logs each token request with its outcome, for the tests to
// count calls and read refusals.
func logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		log.Printf("request method=%s path=%s status=%d", r.Method, r.URL.Path, rec.status)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

var errNotSupported = errors.New("not supported by this server: client credentials and token exchange only")
