package tokensource

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/token-operator/token-operator/internal/credential"
	"github.com/token-operator/token-operator/internal/testing/entraserver"
	"github.com/token-operator/token-operator/internal/testing/testcert"
)

// errorCase is one failure the engine must classify.
type errorCase struct {
	name      string
	req       func(f *fixture) Request
	faults    []entraserver.Fault
	status    int
	code      string
	aadsts    int
	retryable bool
	after     time.Duration
}

// errorCases covers each flow and credential kind against each error class.
func errorCases(t *testing.T) []errorCase {
	good, other := rsaCert(t, 0), rsaCert(t, 1)
	past := time.Now().Add(-time.Hour)
	secret := &credential.ClientSecret{Secret: weirdSecret}
	both := func(name string, mk func(f *fixture, r func(string, credential.Credential) Request) Request, e errorCase) []errorCase {
		a, b := e, e
		a.name, b.name = "Entra: "+name, "generic: "+name
		a.req = func(f *fixture) Request { return mk(f, f.entraReq) }
		b.req = func(f *fixture) Request { return mk(f, f.tokenReq) }
		return []errorCase{a, b}
	}
	withSecret := func(id string) func(*fixture, func(string, credential.Credential) Request) Request {
		return func(f *fixture, r func(string, credential.Credential) Request) Request { return r(id, secret) }
	}
	var cases []errorCase
	cases = append(cases, both("an unknown client is unauthorized", withSecret("nobody"), errorCase{status: 400, code: "unauthorized_client", aadsts: 700016})...)
	cases = append(cases, both("a resource unknown in the tenant is refused for good", func(f *fixture, r func(string, credential.Credential) Request) Request {
		req := r("app", secret)
		req.Scopes = []string{"api://nothing-here/.default"}
		return req
	}, errorCase{status: 400, code: "invalid_resource", aadsts: 500011})...)
	otherTenant := func(req Request) Request {
		req.Authority = strings.Replace(req.Authority, "/"+tenant, "/fabrikam", 1)
		req.TokenURL = strings.Replace(req.TokenURL, "/"+tenant+"/", "/fabrikam/", 1)
		return req
	}
	cases = append(cases, errorCase{name: "Entra: an unknown tenant is refused for good at discovery", req: func(f *fixture) Request {
		return otherTenant(f.entraReq("app", secret))
	}, status: 400, code: "invalid_tenant", aadsts: 90002})
	cases = append(cases, errorCase{name: "generic: an unknown tenant is refused for good", req: func(f *fixture) Request {
		return otherTenant(f.tokenReq("app", secret))
	}, status: 400, code: "invalid_request", aadsts: 90002})
	cases = append(cases, both("a wrong secret is an invalid client", func(f *fixture, r func(string, credential.Credential) Request) Request {
		return r("app", &credential.ClientSecret{Secret: weirdSecret + "-wrong"})
	}, errorCase{status: 401, code: "invalid_client", aadsts: 7000215})...)
	cases = append(cases, both("an unregistered certificate is an invalid client", func(f *fixture, r func(string, credential.Credential) Request) Request {
		return r("app", other)
	}, errorCase{status: 401, code: "invalid_client", aadsts: 700027})...)
	cases = append(cases, both("an expired assertion is refused", func(f *fixture, r func(string, credential.Credential) Request) Request {
		return r("app", &credential.Assertion{ID: "x", Provide: func(context.Context) (string, error) {
			return signAssertion(good, "app", f.srv.TokenURL(tenant), past)
		}})
	}, errorCase{status: 401, code: "invalid_client", aadsts: 700024})...)
	cases = append(cases, both("throttling is retried after the seconds given", withSecret("app"), errorCase{faults: []entraserver.Fault{{Status: 429, RetryAfter: "7"}}, status: 429, code: "temporarily_unavailable", aadsts: 90055, retryable: true, after: 7 * time.Second})...)
	cases = append(cases, both("unavailability is retried after the date given", withSecret("app"), errorCase{faults: []entraserver.Fault{{Status: 503, RetryAfter: time.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat)}}, status: 503, code: "temporarily_unavailable", aadsts: 90033, retryable: true, after: 2 * time.Minute})...)
	cases = append(cases, both("a server error is retried", withSecret("app"), errorCase{faults: []entraserver.Fault{{Status: 500}}, status: 500, code: "temporarily_unavailable", aadsts: 90033, retryable: true})...)
	cases = append(cases, both("an HTML page from a 502 is a retryable malformed response", withSecret("app"), errorCase{faults: []entraserver.Fault{{Status: 502, Body: "<html>bad gateway " + weirdSecret + "</html>"}}, status: 502, code: "malformed_response", retryable: true})...)
	cases = append(cases, both("broken JSON in a 200 is a retryable malformed response", withSecret("app"), errorCase{faults: []entraserver.Fault{{Body: `{"access_token":"eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl", "expires_in":`}}, status: 200, code: "malformed_response", retryable: true})...)
	cases = append(cases, both("a token without expires_in is refused for good", withSecret("app"), errorCase{faults: []entraserver.Fault{{Body: `{"access_token":"opaque-no-expiry","token_type":"Bearer"}`}}, status: 200, code: "malformed_response"})...)
	cases = append(cases, errorCase{name: "generic against Entra: a scope without .default is refused by the service", req: func(f *fixture) Request {
		r := f.tokenReq("app", secret)
		r.Scopes = []string{"User.Read"}
		return r
	}, status: 400, code: "invalid_scope", aadsts: 1002012})
	cases = append(cases, errorCase{name: "generic: a replayed assertion is refused", req: func(f *fixture) Request {
		a, err := signAssertion(good, "app", f.srv.TokenURL(tenant), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return f.tokenReq("app", &credential.Assertion{ID: "x", Provide: func(context.Context) (string, error) { return a, nil }})
	}, status: 401, code: "invalid_client", aadsts: 50012})
	return cases
}

func runErrorCase(t *testing.T, f *fixture, tc errorCase) error {
	t.Helper()
	f.srv.InjectFaults(tc.faults...)
	req := tc.req(f)
	if tc.code == "invalid_client" && tc.aadsts == 50012 {
		// use the assertion once so that the second use is a replay
		if _, err := f.eng.Fetch(context.Background(), req, nil); err != nil {
			t.Fatalf("first use: %v", err)
		}
	}
	_, err := f.eng.Fetch(context.Background(), req, nil)
	return err
}

func newErrorFixture(t *testing.T) *fixture {
	f := newFixture(t, Options{})
	f.srv.AddApp(entraserver.App{ClientID: "app", Secrets: []string{weirdSecret}, Certificates: []*x509.Certificate{rsaCert(t, 0).Chain[0]}})
	return f
}

func TestFetchClassifiesServiceErrors(t *testing.T) {
	f := newErrorFixture(t)
	for _, tc := range errorCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			e := asError(t, runErrorCase(t, f, tc))
			if e.StatusCode != tc.status || e.Code != tc.code || e.Retryable != tc.retryable {
				t.Errorf("got status %d code %q retryable %v; want %d %q %v (%v)", e.StatusCode, e.Code, e.Retryable, tc.status, tc.code, tc.retryable, e)
			}
			if tc.aadsts != 0 && !slices.Contains(e.ErrorCodes, tc.aadsts) {
				t.Errorf("AADSTS codes %v, want %d", e.ErrorCodes, tc.aadsts)
			}
			if d := e.RetryAfter - tc.after; d < -2*time.Second || d > 2*time.Second {
				t.Errorf("RetryAfter = %v, want %v", e.RetryAfter, tc.after)
			}
			if tc.aadsts != 0 && (e.CorrelationID == "" || !strings.Contains(e.Error(), "correlation_id=")) {
				t.Errorf("no correlation id in %v", e)
			}
		})
	}
}

func TestErrorTextFollowsTheStatusFormat(t *testing.T) {
	e := &Error{StatusCode: 401, Code: "invalid_client", ErrorCodes: []int{7000215}, Description: "Invalid client secret provided.", CorrelationID: "c-1"}
	want := "token service answered 401 invalid_client (AADSTS7000215): Invalid client secret provided. [correlation_id=c-1]"
	if e.Error() != want {
		t.Errorf("got %q\nwant %q", e.Error(), want)
	}
}

func TestErrorMessagesNeverContainCredentialsOrTokens(t *testing.T) {
	f := newErrorFixture(t)
	f.srv.EchoCredentials(true)
	var msgs []string
	var assertions []string
	for _, tc := range errorCases(t) {
		req := tc.req(f)
		if a, ok := req.Credential.(*credential.Assertion); ok {
			inner := a.Provide
			a.Provide = func(ctx context.Context) (string, error) {
				s, err := inner(ctx)
				assertions = append(assertions, s)
				return s, err
			}
		}
		tc.req = func(*fixture) Request { return req }
		if err := runErrorCase(t, f, tc); err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) < 20 {
		t.Fatalf("only %d errors collected", len(msgs))
	}
	forbidden := append([]string{weirdSecret, weirdSecret + "-wrong", "eyJ", "opaque-no-expiry", "PRIVATE KEY", string(testcert.PKCS8PEM(t, testRSAKey(t, 0)))[40:80]}, encodings(weirdSecret)...)
	forbidden = append(forbidden, assertions...)
	forbidden = append(forbidden, f.srv.IssuedTokens()...)
	for _, m := range msgs {
		t.Log(m)
		for _, s := range forbidden {
			if s != "" && strings.Contains(m, s) {
				t.Errorf("message %q contains %q", m, s)
			}
		}
	}
}

func TestCallerCancellationIsReturnedAsIs(t *testing.T) {
	f := newErrorFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.eng.Fetch(ctx, f.tokenReq("app", &credential.ClientSecret{Secret: weirdSecret}), nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func TestSlowAnswersHitThePerCallTimeout(t *testing.T) {
	f := newFixture(t, Options{Timeout: 150 * time.Millisecond})
	f.srv.AddApp(entraserver.App{ClientID: "app", Secrets: []string{"a-good-secret"}})
	for _, mk := range []func(string, credential.Credential) Request{f.entraReq, f.tokenReq} {
		f.srv.InjectFaults(entraserver.Fault{Delay: 2 * time.Second})
		_, err := f.eng.Fetch(context.Background(), mk("app", &credential.ClientSecret{Secret: "a-good-secret"}), nil)
		if e := asError(t, err); e.Code != "timeout" || !e.Retryable {
			t.Errorf("got %v", e)
		}
	}
}

func TestAnAssertionSourceFailureIsRetryable(t *testing.T) {
	f := newErrorFixture(t)
	src := &credential.Assertion{ID: "x", Provide: func(context.Context) (string, error) { return "", errors.New("service account token unavailable") }}
	for _, req := range []Request{f.entraReq("app", src), f.tokenReq("app", src)} {
		e := asError(t, func() error { _, err := f.eng.Fetch(context.Background(), req, nil); return err }())
		if e.Code != "credential_unavailable" || !e.Retryable {
			t.Errorf("got %v", e)
		}
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakePassiveClock(now)
	for _, tc := range []struct {
		name, in string
		want     time.Duration
	}{
		{"seconds", "120", 2 * time.Minute},
		{"an HTTP date", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"a date in the past gives nothing", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"garbage gives nothing", "soon", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := retryAfter(tc.in, clk.Now()); got != tc.want {
				t.Errorf("got %v want %v", got, tc.want)
			}
		})
	}
}
