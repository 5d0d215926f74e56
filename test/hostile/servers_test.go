//go:build linux

package hostile_test

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
)

// oneGiB is the size of the oversized answers.
const oneGiB = 1 << 30

// hostileServers are token services run by someone hostile, each over TLS
// on loopback with one CA that the manager trusts.
type hostileServers struct {
	// Tarpit accepts requests and never answers.
	Tarpit *httptest.Server
	// Huge answers every request with a 1 GiB body, for the generic path
	// and for MSAL (whose first request is the authority's metadata).
	Huge *httptest.Server
	// GzipBomb answers with a small gzip body that inflates to 1 GiB.
	GzipBomb *httptest.Server
	// RandomCodes refuses every token request with a new random error code.
	RandomCodes *httptest.Server
	// PlainHTTP is a plain-http service on loopback, like a sidecar's admin port.
	PlainHTTP *httptest.Server

	// Codes are the error codes RandomCodes has sent.
	codesMu sync.Mutex
	Codes   []string
	// PlainHTTPCalls counts requests that reached PlainHTTP.
	PlainHTTPCalls atomic.Int64
	// tarpitInFlight counts the requests Tarpit holds; tarpitPeak is its
	// high-water mark, tarpitCalls all it has received.
	tarpitInFlight, tarpitPeak, tarpitCalls atomic.Int64

	release chan struct{}
}

func startHostileServers() *hostileServers {
	h := &hostileServers{release: make(chan struct{})}
	h.Tarpit = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the (small) form first: only then does the server watch the
		// connection and end r.Context() when the client gives up.
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<16))
		h.tarpitCalls.Add(1)
		n := h.tarpitInFlight.Add(1)
		defer h.tarpitInFlight.Add(-1)
		for peak := h.tarpitPeak.Load(); n > peak && !h.tarpitPeak.CompareAndSwap(peak, n); peak = h.tarpitPeak.Load() {
		}
		select {
		case <-h.release:
		case <-r.Context().Done():
		}
	}))
	h.Huge = httptest.NewTLSServer(http.HandlerFunc(serveHuge))
	bomb := gzipBomb()
	h.GzipBomb = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = w.Write(bomb)
	}))
	h.RandomCodes = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := "x_" + randomHex(8)
		h.codesMu.Lock()
		h.Codes = append(h.Codes, code)
		h.codesMu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":%q,"error_description":"line one\u0007\nline two","error_codes":[1,2,3,4,5,6,7,8,9,10],"trace_id":%q}`, code, strings.Repeat("t", 500))
	}))
	h.PlainHTTP = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.PlainHTTPCalls.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	return h
}

func (h *hostileServers) Close() {
	close(h.release)
	for _, s := range []*httptest.Server{h.Tarpit, h.Huge, h.GzipBomb, h.RandomCodes, h.PlainHTTP} {
		s.CloseClientConnections()
		s.Close()
	}
}

// caPEM is the certificate the TLS servers present (httptest's own).
func (h *hostileServers) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.Huge.Certificate().Raw})
}

func (h *hostileServers) codes() []string {
	h.codesMu.Lock()
	defer h.codesMu.Unlock()
	return append([]string(nil), h.Codes...)
}

// serveHuge streams a JSON document of 1 GiB without holding it.
func serveHuge(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"token_endpoint":"`)
	chunk := bytes.Repeat([]byte("a"), 64<<10)
	for sent := 0; sent < oneGiB; sent += len(chunk) {
		if _, err := w.Write(chunk); err != nil {
			return // the client hung up, as it should
		}
	}
	_, _ = io.WriteString(w, `"}`)
}

// gzipBomb is a JSON document of 1 GiB, gzip-compressed to about a megabyte.
func gzipBomb() []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = io.WriteString(zw, `{"access_token":"`)
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = 'a'
	}
	for sent := 0; sent < oneGiB; sent += len(chunk) {
		_, _ = zw.Write(chunk)
	}
	_, _ = io.WriteString(zw, `","token_type":"Bearer","expires_in":3600}`)
	_ = zw.Close()
	return buf.Bytes()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
