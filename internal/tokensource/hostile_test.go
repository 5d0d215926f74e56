package tokensource

import (
	"compress/gzip"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/token-operator/token-operator/internal/credential"
)

// hostile is a token service under the test's control that speaks just
// enough of Entra's protocol for MSAL Go: tenant discovery at
// /t/v2.0/.well-known/openid-configuration (also the generic issuer's
// discovery) and a token endpoint at /t/oauth2/v2.0/token.
type hostile struct {
	srv       *httptest.Server
	mu        sync.Mutex
	discovery http.HandlerFunc // nil serves a normal document
	token     http.HandlerFunc // nil serves a normal token
	// gzipAsked counts requests whose client offered gzip, which is what
	// makes Go's transport undo a gzip answer.
	gzipAsked atomic.Int32
	calls     atomic.Int32
}

// newHostile starts an https server on 127.0.0.1, or plain http when
// plain is set.
func newHostile(t *testing.T, plain bool) *hostile {
	h := &hostile{}
	mux := http.NewServeMux()
	mux.HandleFunc("/t/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		h.count(r)
		if f := h.handler(&h.discovery); f != nil {
			f(w, r)
			return
		}
		writeDoc(w, h.srv.URL+"/t/oauth2/v2.0/token", h.srv.URL)
	})
	mux.HandleFunc("/t/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) {
		h.count(r)
		if f := h.handler(&h.token); f != nil {
			f(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"opaque","token_type":"Bearer","expires_in":3600}`)
	})
	if plain {
		h.srv = httptest.NewServer(mux)
	} else {
		h.srv = httptest.NewTLSServer(mux)
	}
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hostile) handler(f *http.HandlerFunc) http.HandlerFunc {
	h.mu.Lock()
	defer h.mu.Unlock()
	return *f
}

// set replaces a handler (h.discovery or h.token) while serving.
func (h *hostile) set(f *http.HandlerFunc, to http.HandlerFunc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	*f = to
}

func (h *hostile) count(r *http.Request) {
	h.calls.Add(1)
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.gzipAsked.Add(1)
	}
}

func writeDoc(w http.ResponseWriter, tokenEndpoint, base string) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer":                 base + "/t/v2.0",
		"authorization_endpoint": base + "/t/oauth2/v2.0/authorize",
		"token_endpoint":         tokenEndpoint,
	})
}

func (h *hostile) pool() *x509.CertPool {
	p := x509.NewCertPool()
	if h.srv.Certificate() != nil {
		p.AddCert(h.srv.Certificate())
	}
	return p
}

func (h *hostile) engine(o Options) *Engine {
	o.RootCAs = h.pool()
	return New(o)
}

func (h *hostile) host() string {
	return strings.TrimPrefix(strings.TrimPrefix(h.srv.URL, "https://"), "http://")
}

var hostileSecret = &credential.ClientSecret{Secret: "a-good-secret"}

func (h *hostile) entraReq() Request {
	return Request{Authority: h.srv.URL + "/t", ClientID: "app", Scopes: []string{graphScope}, Credential: hostileSecret, AllowedHosts: []string{h.host()}}
}

func (h *hostile) issuerReq() Request {
	return Request{IssuerURL: h.srv.URL + "/t/v2.0", ClientID: "app", Scopes: []string{graphScope}, Credential: hostileSecret, AllowedHosts: []string{h.host()}}
}

func (h *hostile) tokenReq() Request {
	return Request{TokenURL: h.srv.URL + "/t/oauth2/v2.0/token", ClientID: "app", Scopes: []string{graphScope}, Credential: hostileSecret, AllowedHosts: []string{h.host()}}
}

const gib = 1 << 30

// stream writes prefix and then a run of filler bytes, n in all, until the
// client goes away. The body is generated, never held.
func stream(w io.Writer, r *http.Request, prefix string, n int64) {
	chunk := []byte(strings.Repeat("0", 32<<10))
	_, _ = io.WriteString(w, prefix)
	for sent := int64(len(prefix)); sent < n && r.Context().Err() == nil; sent += int64(len(chunk)) {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

// huge answers with a 1 GiB body starting with prefix.
func huge(status int, prefix string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		stream(w, r, prefix, gib)
	}
}

// gzipBomb answers with a gzip body that inflates to 4 GiB, compressed as
// it is sent: about a thousand times smaller on the wire than inflated.
func gzipBomb(status int, prefix string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		w.WriteHeader(status)
		gz := gzip.NewWriter(w)
		stream(gz, r, prefix, 4*gib)
		_ = gz.Close()
	}
}
