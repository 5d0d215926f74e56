package tokensource

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// memoryDuring runs f and reports how much the process allocated in all
// and how much its live heap grew. The test servers run in this process,
// so their buffers count too.
func memoryDuring(f func()) (allocated, grown int64) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return int64(after.TotalAlloc - before.TotalAlloc), int64(after.HeapAlloc) - int64(before.HeapAlloc)
}

func TestOversizedAnswersAreCutOffAtTheCap(t *testing.T) {
	bodies := []struct {
		name string
		mk   func(status int, prefix string) http.HandlerFunc
		gzip bool
	}{{"a 1 GiB answer", huge, false}, {"a gzip bomb", gzipBomb, true}}
	places := []struct {
		name string
		set  func(h *hostile, body func(int, string) http.HandlerFunc)
		req  func(h *hostile) Request
	}{
		{"MSAL: token answer", func(h *hostile, b func(int, string) http.HandlerFunc) {
			h.set(&h.token, b(200, `{"token_type":"Bearer","expires_in":3600,"access_token":"`))
		}, (*hostile).entraReq},
		{"MSAL: error answer", func(h *hostile, b func(int, string) http.HandlerFunc) {
			h.set(&h.token, b(400, `{"error":"invalid_client","error_description":"`))
		}, (*hostile).entraReq},
		{"MSAL: tenant metadata", func(h *hostile, b func(int, string) http.HandlerFunc) {
			h.set(&h.discovery, b(200, `{"issuer":"`))
		}, (*hostile).entraReq},
		{"generic: token URL answer", func(h *hostile, b func(int, string) http.HandlerFunc) {
			h.set(&h.token, b(200, `{"token_type":"Bearer","expires_in":3600,"access_token":"`))
		}, (*hostile).tokenReq},
		{"generic: token URL error answer", func(h *hostile, b func(int, string) http.HandlerFunc) {
			h.set(&h.token, b(503, `{"error":"temporarily_unavailable","error_description":"`))
		}, (*hostile).tokenReq},
		{"generic: issuer discovery document", func(h *hostile, b func(int, string) http.HandlerFunc) {
			h.set(&h.discovery, b(200, `{"token_endpoint":"`))
		}, (*hostile).issuerReq},
	}
	for _, body := range bodies {
		for _, place := range places {
			t.Run(place.name+" with "+body.name, func(t *testing.T) {
				h := newHostile(t, false)
				place.set(h, body.mk)
				eng := h.engine(Options{})
				var err error
				allocated, grown := memoryDuring(func() {
					_, err = eng.Fetch(context.Background(), place.req(h), nil)
				})
				e := asError(t, err)
				if e.Code != "malformed_response" || !e.Retryable || e.Description != "the token service's answer is larger than 1 MiB" {
					t.Errorf("got %+v", e)
				}
				if body.gzip && h.gzipAsked.Load() == 0 {
					t.Error("the client never offered gzip, so the bomb was not inflated")
				}
				const bound = 64 << 20
				if allocated > bound || grown > bound {
					t.Errorf("allocated %d MiB, heap grew %d MiB; want under 64 MiB", allocated>>20, grown>>20)
				}
				t.Logf("allocated %.1f MiB, heap grew %.1f MiB", float64(allocated)/(1<<20), float64(grown)/(1<<20))
			})
		}
	}
}

func TestAnswersUpToTheCapAreRead(t *testing.T) {
	h := newHostile(t, false)
	// A valid answer padded with spaces to exactly the cap.
	answer := `{"access_token":"opaque","token_type":"Bearer","expires_in":3600}`
	const limit = 4096
	h.set(&h.token, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(answer + strings.Repeat(" ", limit-len(answer))))
	})
	for _, req := range []Request{h.entraReq(), h.tokenReq()} {
		if _, err := h.engine(Options{MaxResponseBytes: limit}).Fetch(context.Background(), req, nil); err != nil {
			t.Errorf("%v", err)
		}
	}
	h.set(&h.token, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(answer + strings.Repeat(" ", limit+1-len(answer))))
	})
	for _, req := range []Request{h.entraReq(), h.tokenReq()} {
		_, err := h.engine(Options{MaxResponseBytes: limit}).Fetch(context.Background(), req, nil)
		if e := asError(t, err); e.Description != "the token service's answer is larger than 4 KiB" {
			t.Errorf("got %v", e)
		}
	}
}

// tarpit accepts connections and never answers; it returns the address.
func tarpit(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { <-done; _ = c.Close() }()
		}
	}()
	return l.Addr().String()
}

func TestSilentServersHitTheResponseHeaderTimeout(t *testing.T) {
	const header = 300 * time.Millisecond
	silent := newHostile(t, false)
	wait := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	silent.set(&silent.discovery, wait)
	silent.set(&silent.token, wait)
	addr := tarpit(t)
	for _, tc := range []struct {
		name string
		eng  *Engine
		req  Request
	}{
		{"generic: a tarpit over loopback http", New(Options{Timeout: time.Minute, ResponseHeaderTimeout: header, AllowHTTPLoopback: true}),
			Request{TokenURL: "http://" + addr + "/token", ClientID: "app", Credential: hostileSecret}},
		{"generic: an https server that never answers", silent.engine(Options{Timeout: time.Minute, ResponseHeaderTimeout: header}), silent.issuerReq()},
		{"MSAL: an https server that never answers", silent.engine(Options{Timeout: time.Minute, ResponseHeaderTimeout: header}), silent.entraReq()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := tc.eng.Fetch(context.Background(), tc.req, nil)
			took := time.Since(start)
			e := asError(t, err)
			if e.Code != "timeout" || !e.Retryable || e.Description != "no answer within 300ms" {
				t.Errorf("got %+v", e)
			}
			if took < header || took > 10*header {
				t.Errorf("the call took %v with a header timeout of %v", took, header)
			}
		})
	}
}

func TestTheEngineTransportBoundsHeaderWaits(t *testing.T) {
	custom := &http.Transport{ResponseHeaderTimeout: time.Second}
	for _, tc := range []struct {
		name string
		o    Options
		want time.Duration
	}{
		{"the default", Options{}, 10 * time.Second},
		{"never above the call timeout", Options{Timeout: 3 * time.Second}, 3 * time.Second},
		{"a longer option is cut to the call timeout", Options{ResponseHeaderTimeout: time.Hour}, 30 * time.Second},
		{"a given shorter option", Options{ResponseHeaderTimeout: 2 * time.Second}, 2 * time.Second},
		{"a given client's shorter timeout is kept", Options{HTTPClient: &http.Client{Transport: custom}}, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := New(tc.o).client.Transport.(guardTransport).base.(*http.Transport)
			if tr.ResponseHeaderTimeout != tc.want || tr == http.DefaultTransport || tr == custom {
				t.Errorf("ResponseHeaderTimeout = %v, want %v on a clone", tr.ResponseHeaderTimeout, tc.want)
			}
			if tr.MaxResponseHeaderBytes != DefaultMaxResponseBytes {
				t.Errorf("MaxResponseHeaderBytes = %d", tr.MaxResponseHeaderBytes)
			}
		})
	}
}
