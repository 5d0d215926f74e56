//go:build linux

package scale_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// tokenServer is a plain OAuth2 client credentials service on loopback
// (RFC 6749 section 4.4) that remembers when each token call arrived.
type tokenServer struct {
	srv *httptest.Server

	mu        sync.Mutex
	clients   map[string]string // client ID to secret
	expiresIn int               // token lifetime in seconds
	size      int               // access token length in bytes
	calls     []time.Time       // accepted token calls
	refused   int
}

func newTokenServer(expiresIn, size int) *tokenServer {
	s := &tokenServer{clients: map[string]string{}, expiresIn: expiresIn, size: size}
	s.srv = httptest.NewServer(http.HandlerFunc(s.token))
	return s
}

func (s *tokenServer) Close() { s.srv.Close() }

// TokenURL is http://127.0.0.1:<port>/token.
func (s *tokenServer) TokenURL() string { return s.srv.URL + "/token" }

// Host is 127.0.0.1:<port>, for the credential's consent annotation.
func (s *tokenServer) Host() string { return strings.TrimPrefix(s.srv.URL, "http://") }

func (s *tokenServer) addClient(id, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[id] = secret
}

// Calls are the arrival times of the accepted token calls so far.
func (s *tokenServer) Calls() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.calls...)
}

// Refused counts token calls answered with an error.
func (s *tokenServer) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

func (s *tokenServer) token(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	if r.Method != http.MethodPost || r.URL.Path != "/token" || r.ParseForm() != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		s.fail(w, http.StatusBadRequest, "invalid_request")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	s.mu.Lock()
	want, known := s.clients[id]
	expiresIn := s.expiresIn
	if known && secret == want {
		s.calls = append(s.calls, now)
	}
	s.mu.Unlock()
	if !known || secret != want {
		s.fail(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": accessToken(s.size),
		"token_type":   "Bearer",
		"expires_in":   expiresIn,
	})
}

func (s *tokenServer) fail(w http.ResponseWriter, status int, code string) {
	s.mu.Lock()
	s.refused++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}

// defaultTokenSize is the length of the access tokens the benchmark hands
// out unless SCALE_TOKEN_BYTES says otherwise.
const defaultTokenSize = 51

// accessToken is a random token of size bytes: "at-" and hex digits.
func accessToken(size int) string {
	b := make([]byte, (max(size, 4)-3+1)/2)
	_, _ = rand.Read(b)
	return ("at-" + hex.EncodeToString(b))[:max(size, 4)]
}
