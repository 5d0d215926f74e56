package tokensource

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/token-operator/token-operator/internal/credential"
)

// answerTransport answers tenant discovery with a fixed document and every
// other request with one fuzzed answer, without a network.
type answerTransport struct {
	status int
	header http.Header
	body   []byte
}

func (a answerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	resp := &http.Response{StatusCode: a.status, Header: a.header.Clone(), Body: io.NopCloser(bytes.NewReader(a.body)), ContentLength: -1, Request: r}
	if strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration") {
		base := "https://" + r.URL.Host + "/t"
		doc := `{"issuer":"` + base + `/v2.0","authorization_endpoint":"` + base + `/oauth2/v2.0/authorize","token_endpoint":"` + base + `/oauth2/v2.0/token"}`
		resp.StatusCode, resp.Header, resp.Body = 200, http.Header{"Content-Type": {"application/json"}}, io.NopCloser(strings.NewReader(doc))
	}
	return resp, nil
}

// FuzzTokenResponse feeds arbitrary token answers (status, headers, body)
// to the error classifier and to both flows end to end: nothing panics,
// and no error carries a secret, a JWT or unbounded server text.
func FuzzTokenResponse(f *testing.F) {
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
	for _, s := range []struct {
		status                          int
		contentType, retry, name, value string
		body                            string
	}{
		{200, "application/json", "", "", "", `{"access_token":"opaque","token_type":"Bearer","expires_in":3600,"refresh_in":1800}`},
		{200, "application/json", "", "", "", `{"access_token":"opaque","expires_in":3600,"scope":"a b"}`},
		{200, "application/json", "", "", "", `{"access_token":"opaque","expires_in":"1e308"}`},
		{200, "text/plain", "", "", "", `access_token=opaque&token_type=bearer&expires_in=60`},
		{200, "application/json", "", "", "", `{"access_token":"` + jwt + `","expires_in":-1}`},
		{400, "application/json", "", "x-ms-request-id", "0a1b-2c3d", `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid secret s3cr%t+with:colon and spaces~\r\nTrace ID: x","error_codes":[7000215],"trace_id":"t-1","correlation_id":"c-1"}`},
		{401, "application/json", "", "", "", `{"error":"s3cr%25t%2Bwith%3Acolon+and+spaces~","error_description":"hunter2-hunter2 ` + jwt + `\u0000\u202e"}`},
		{429, "application/json", "120", "client-request-id", "c-2", `{"error":"temporarily_unavailable","error_codes":[90055,1,2,3,4,5,6]}`},
		{503, "text/html", "Wed, 21 Oct 2099 07:28:00 GMT", "", "", `<html>bad gateway</html>`},
		{307, "", "", "Location", "https://elsewhere.example.com/token", ``},
		{200, "application/json", "", "", "", `{"access_token":"` + strings.Repeat("a", 600) + `","expires_in":10}`},
	} {
		f.Add(s.status, s.contentType, s.retry, s.name, s.value, []byte(s.body))
	}
	secrets := []string{weirdSecret, "hunter2-hunter2"}
	cred := &credential.ClientSecret{Secret: weirdSecret}
	reqs := []Request{
		{TokenURL: "https://idp.example.com/t/oauth2/v2.0/token", ClientID: "app", Scopes: []string{graphScope}, Credential: cred},
		{Authority: "https://login.example.com/t", ClientID: "app", Scopes: []string{graphScope}, Credential: cred},
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, contentType, retry, name, value string, body []byte) {
		status = 100 + int(uint(status)%900)
		h := http.Header{}
		h.Set("Content-Type", contentType)
		h.Set("Retry-After", retry)
		if name != "" {
			h.Set(name, value)
		}
		checkSafe(t, httpError(status, h, body, now, secrets), secrets)

		eng := New(Options{Timeout: 5 * time.Second, MaxResponseBytes: 512, HTTPClient: &http.Client{Transport: answerTransport{status, h, body}}})
		for _, req := range reqs {
			tok, err := eng.Fetch(context.Background(), req, nil)
			checkSafe(t, err, []string{weirdSecret})
			if err == nil && (tok.AccessToken == "" || !tok.ExpiresAt.After(tok.IssuedAt) || tok.TokenType == "") {
				t.Fatalf("token %+v", tok)
			}
		}
	})
}

// FuzzErrorAnswer fuzzes the error classifier alone, much faster than the
// flows, against secrets of every shape the scrubber must handle.
func FuzzErrorAnswer(f *testing.F) {
	secrets := []string{weirdSecret, "hunter2-hunter2", `q"uo\te-d`, "pässwörd-ß", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"}
	f.Add(400, "0a1b-2c3d", "120", []byte(`{"error":"invalid_client","error_description":"AADSTS7000215: bad s3cr%t+with:colon and spaces~\r\nTrace ID: x","error_codes":[7000215],"trace_id":"t-1","correlation_id":"c-1"}`))
	f.Add(401, "c-1", "", []byte(`{"error":"q\"uo\\te-d","error_description":"p\u00e4ssw\u00f6rd-\u00df hunter2\u0000-hunter2 eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"}`))
	f.Add(503, "", "Wed, 21 Oct 2099 07:28:00 GMT", []byte(`<html>down</html>`))
	f.Add(429, "x", "99999999999999999999999", []byte(`{"error":"temporarily_unavailable","error_codes":[1,2,3,4,5,6,-1,99999999999]}`))
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, requestID, retry string, body []byte) {
		h := http.Header{"Retry-After": {retry}, "X-Ms-Request-Id": {requestID}, "Client-Request-Id": {requestID}}
		checkSafe(t, httpError(status, h, body, now, secrets), secrets)
	})
}
