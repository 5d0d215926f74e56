package tokenrequest_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/operator"
	"github.com/token-operator/token-operator/internal/testing/entraserver"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

const (
	exchangeGrant    = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeJWT     = "urn:ietf:params:oauth:token-type:jwt"
	tokenTypeAccess  = "urn:ietf:params:oauth:token-type:access_token"
	exchangeAudience = "exchange.test"
	exchangeClientID = "exchanger"
)

// rfc8693 is an RFC 8693 token endpoint on plain-http loopback. It checks
// what the RFC asks of a request (POST, grant_type, client authentication,
// subject_token and its type, the subject verified) and answers with
// issued_token_type, token_type and expires_in, or an RFC 6749 error. It
// can answer 503 (down) or stop listening (refused), and be restarted on
// the same address.
type rfc8693 struct {
	URL, addr   string
	secret      string
	subjectType string
	// verify checks a subject token and returns when it expires.
	verify func(token string) (time.Time, error)

	mu       sync.Mutex
	lifetime time.Duration
	down     bool
	srv      *http.Server
	issued   []exchanged
	failed   int
}

// exchanged is one exchange the server answered.
type exchanged struct {
	subject        string
	subjectExpires time.Time
	token          string
}

func newRFC8693(t *testing.T, subjectType string, lifetime time.Duration, verify func(string) (time.Time, error)) *rfc8693 {
	t.Helper()
	x := &rfc8693{secret: "exchange-s3cret:" + randomHex(8), subjectType: subjectType, lifetime: lifetime, verify: verify}
	secretsUsed.Store(x.secret, true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	x.addr = ln.Addr().String()
	x.URL = "http://" + x.addr
	x.serve(ln)
	t.Cleanup(func() {
		x.refuse()
		for _, e := range x.exchanges() {
			secretsUsed.Store(e.token, true) // the package's last test looks for them
		}
	})
	return x
}

func (x *rfc8693) serve(ln net.Listener) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.srv = &http.Server{Handler: http.HandlerFunc(x.token), ReadHeaderTimeout: 5 * time.Second}
	go func(s *http.Server) { _ = s.Serve(ln) }(x.srv)
}

// refuse closes the listener: connections are refused until listen.
func (x *rfc8693) refuse() {
	x.mu.Lock()
	s := x.srv
	x.srv = nil
	x.mu.Unlock()
	if s != nil {
		_ = s.Close()
	}
}

// listen serves again on the same address.
func (x *rfc8693) listen(t *testing.T) {
	t.Helper()
	var ln net.Listener
	kube.Eventually(t, 10*time.Second, "the exchange server's port", func() bool {
		var err error
		ln, err = net.Listen("tcp", x.addr)
		return err == nil
	})
	x.serve(ln)
}

func (x *rfc8693) setDown(down bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.down = down
}

func (x *rfc8693) setLifetime(d time.Duration) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.lifetime = d
}

func (x *rfc8693) exchanges() []exchanged {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]exchanged(nil), x.issued...)
}

func (x *rfc8693) failures() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.failed
}

func (x *rfc8693) host() string { return x.addr }

func (x *rfc8693) token(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	x.mu.Lock()
	down, lifetime := x.down, x.lifetime
	if down {
		x.failed++
	}
	x.mu.Unlock()
	if down {
		oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the exchange service is down")
		return
	}
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "POST a form")
		return
	}
	// RFC 6749 §2.3.1: client_secret_basic with form-encoded ID and secret.
	id, secret, ok := r.BasicAuth()
	id, _ = url.QueryUnescape(id)
	secret, _ = url.QueryUnescape(secret)
	if !ok || id != exchangeClientID || secret != x.secret {
		w.Header().Set("WWW-Authenticate", `Basic realm="exchange"`)
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	f := r.PostForm
	if f.Get("grant_type") != exchangeGrant {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "only token exchange")
		return
	}
	subject := f.Get("subject_token")
	if subject == "" || f.Get("subject_token_type") != x.subjectType {
		oauthError(w, http.StatusBadRequest, "invalid_request", "subject_token and subject_token_type "+x.subjectType+" are required")
		return
	}
	if rt := f.Get("requested_token_type"); rt != "" && rt != tokenTypeAccess {
		oauthError(w, http.StatusBadRequest, "invalid_target", "only access tokens are issued")
		return
	}
	expires, err := x.verify(subject)
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "subject_token is invalid")
		return
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := "xt." + base64.RawURLEncoding.EncodeToString(b)
	x.mu.Lock()
	x.issued = append(x.issued, exchanged{subject: subject, subjectExpires: expires, token: tok})
	x.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "issued_token_type": tokenTypeAccess,
		"token_type": "Bearer", "expires_in": int(lifetime / time.Second)})
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// serviceAccountSubjects verifies a subject as a token of ns's "workload"
// ServiceAccount for exchangeAudience, signed with the API server's key.
func serviceAccountSubjects(t *testing.T, ns string) func(string) (time.Time, error) {
	issuer, keys := apiServerIssuer(t)
	return func(token string) (time.Time, error) {
		tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
		if err != nil {
			return time.Time{}, err
		}
		var c jwt.Claims
		if err := tok.Claims(keys.Keys[0].Key, &c); err != nil {
			return time.Time{}, err
		}
		err = c.ValidateWithLeeway(jwt.Expected{Issuer: issuer, Subject: "system:serviceaccount:" + ns + ":workload",
			AnyAudience: jwt.Audience{exchangeAudience}, Time: time.Now()}, 0)
		if err != nil || c.Expiry == nil {
			return time.Time{}, errors.Join(err, errors.New("no exp"))
		}
		return c.Expiry.Time(), nil
	}
}

// entraSubjects accepts the access tokens the test Entra server issued
// (its tokens are opaque: it is the server that trusts them).
func entraSubjects(token string) (time.Time, error) {
	if !issuedBySTS(token) {
		return time.Time{}, errors.New("not issued by the trusted server")
	}
	return time.Time{}, nil
}

// exchangeCase is a namespace with the exchange client's Secret and a
// "workload" ServiceAccount, both consenting to x's host.
func exchangeCase(t *testing.T, lifetime time.Duration) (*rfc8693, string) {
	t.Helper()
	ns := k8s.NewNamespace(t)
	x := newRFC8693(t, tokenTypeJWT, lifetime, serviceAccountSubjects(t, ns))
	credentialSecret(t, ns, "exchange-cred", x.secret, x.host())
	k8s.MustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "workload", Namespace: ns,
		Annotations: map[string]string{v1.AnnotationAllowedIssuers: x.host()}}})
	return x, ns
}

// exchangeRequest exchanges the workload ServiceAccount's token at x, or
// with subjectRef the token of that TokenRequest.
func exchangeRequest(ns, name string, x *rfc8693, subjectRef string) *v1.TokenRequest {
	subject := v1.ExchangeSubject{ServiceAccount: &v1.ServiceAccountCredential{Name: "workload", Audience: exchangeAudience}}
	if subjectRef != "" {
		subject = v1.ExchangeSubject{TokenRequestRef: &v1.LocalTokenRequestReference{Name: subjectRef}}
	}
	return &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.TokenRequestSpec{TokenURL: x.URL + "/token", ClientID: exchangeClientID,
			Credential:    &v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: "exchange-cred"}},
			TokenExchange: &v1.TokenExchange{SubjectToken: subject}}}
}

func loopbackExchange(o *operator.Options) { o.AllowHTTPLoopback = true }

// written is the token and expiry a Secret holds.
func written(t *testing.T, ns, name string) (string, time.Time) {
	t.Helper()
	s := k8s.GetSecret(t, ns, name)
	exp, err := time.Parse(time.RFC3339, string(s.Data[v1.KeyExpiresAt]))
	if err != nil || len(s.Data[v1.KeyAccessToken]) == 0 {
		t.Fatalf("Secret %s: no token or expiry (%v)", name, err)
	}
	return string(s.Data[v1.KeyAccessToken]), exp
}

// neverExpired fails when the Secret holds an expired token now.
func neverExpired(t *testing.T, ns, name string) (string, time.Time) {
	t.Helper()
	tok, exp := written(t, ns, name)
	if now := time.Now(); !now.Before(exp) {
		t.Fatalf("Secret %s holds a token that expired at %s (now %s)", name, exp.Format(time.RFC3339), now.Format(time.RFC3339Nano))
	}
	return tok, exp
}

// A short-lived exchanged token is exchanged again, with a new subject
// token, before it expires; a long-lived one is written with its
// ServiceAccount subject's expiry, never later.
func TestAnExchangedTokenIsRefreshedBeforeItExpiresAndNeverOutlivesItsSubject(t *testing.T) {
	x, ns := exchangeCase(t, 20*time.Second)
	startManager(t, loopbackExchange)
	k8s.MustCreate(t, exchangeRequest(ns, "exchanged", x, ""))
	k8s.WaitReady(t, ns, "exchanged")
	first, exp := written(t, ns, "exchanged")
	if life := time.Until(exp); life > 21*time.Second {
		t.Fatalf("expires_at %s away, want the 20 s the server gave", life)
	}
	kube.Eventually(t, 30*time.Second, "a second exchange", func() bool {
		tok, _ := neverExpired(t, ns, "exchanged")
		return tok != first
	})
	if now := time.Now(); !now.Before(exp) {
		t.Errorf("refreshed at %s, after the first token expired at %s", now, exp)
	}
	got := x.exchanges()
	if len(got) != 2 || got[0].subject == got[1].subject || got[1].token != mustToken(written(t, ns, "exchanged")) {
		t.Fatalf("%d exchanges; want 2, each with a new subject token, the second written", len(got))
	}

	// The server now gives an hour; the subject lives 10 minutes.
	x.setLifetime(time.Hour)
	k8s.UpdateTR(t, ns, "exchanged", func(tr *v1.TokenRequest) {
		tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: "long"}
	})
	kube.Eventually(t, 20*time.Second, "the forced exchange", func() bool {
		return k8s.GetTR(t, ns, "exchanged").Status.LastRefreshRequestedAt == "long"
	})
	got = x.exchanges()
	last := got[len(got)-1]
	tok, exp := written(t, ns, "exchanged")
	if tok != last.token {
		t.Fatal("the Secret does not hold the last exchanged token")
	}
	if !exp.Equal(last.subjectExpires.Truncate(time.Second)) || time.Until(exp) > 10*time.Minute+5*time.Second {
		t.Errorf("expires_at %s; the subject token expires at %s", exp.Format(time.RFC3339), last.subjectExpires.Format(time.RFC3339))
	}
	if tr := k8s.GetTR(t, ns, "exchanged"); !tr.Status.ExpiresAt.Time.Equal(exp) {
		t.Errorf("status.expiresAt %s, Secret %s", tr.Status.ExpiresAt, exp)
	}
}

func mustToken(tok string, _ time.Time) string { return tok }

// startChain starts a manager with an Entra TokenRequest "login" (30 s
// tokens, Ready) whose token "exchanged" exchanges at a loopback RFC 8693
// server granting an hour; it returns the namespace, the server and login's
// client ID.
func startChain(t *testing.T) (string, *rfc8693, string) {
	t.Helper()
	ns := k8s.NewNamespace(t)
	x := newRFC8693(t, tokenTypeAccess, time.Hour, entraSubjects)
	credentialSecret(t, ns, "exchange-cred", x.secret, x.host())
	clientID, secret := app(t, 30)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	startManager(t, loopbackExchange)
	k8s.MustCreate(t, entraRequest(ns, "login", clientID, "cred"))
	k8s.MustCreate(t, exchangeRequest(ns, "exchanged", x, "login"))
	k8s.WaitReady(t, ns, "login")
	return ns, x, clientID
}

// With another TokenRequest's token as the subject, the exchanged token
// expires with it, and is exchanged again when the subject is refreshed,
// before either expires.
func TestAnExchangedTokenFollowsItsShortLivedSubjectTokenRequest(t *testing.T) {
	ns, x, _ := startChain(t)
	ready := kube.Condition(k8s.WaitReady(t, ns, "exchanged"), v1.ConditionReady)
	if !contains(ready.Message, "exchanged again when the subject TokenRequest writes a new token") {
		t.Errorf("Ready does not say the token follows its subject: %s", ready.Message)
	}
	subject, subjectExp := written(t, ns, "login")
	first, exp := written(t, ns, "exchanged")
	if !exp.Equal(subjectExp) {
		t.Fatalf("the exchanged token expires at %s, its subject at %s: the server's hour is not capped", exp, subjectExp)
	}
	kube.Eventually(t, 40*time.Second, "an exchange of the refreshed subject", func() bool {
		tok, _ := neverExpired(t, ns, "exchanged")
		neverExpired(t, ns, "login")
		return tok != first && mustToken(written(t, ns, "login")) != subject
	})
	if now := time.Now(); !now.Before(exp) {
		t.Errorf("exchanged again at %s, after the first token expired at %s", now, exp)
	}
	kube.Eventually(t, 10*time.Second, "the exchange of the new subject", func() bool {
		got := x.exchanges()
		return got[len(got)-1].subject == mustToken(written(t, ns, "login"))
	})
	_, exp = written(t, ns, "exchanged")
	if _, subjectExp = written(t, ns, "login"); !exp.Equal(subjectExp) {
		t.Errorf("the new exchanged token expires at %s, its subject at %s", exp, subjectExp)
	}
}

// While the exchange server is down (503, then refusing connections) the
// last good token stays, Ready says a refresh failed, the operator keeps
// trying, and once the server is back a new token is written before the
// old one expires.
func TestAnExchangeOutageKeepsTheLastGoodTokenAndNeverAnExpiredOne(t *testing.T) {
	x, ns := exchangeCase(t, 60*time.Second)
	startManager(t, loopbackExchange)
	k8s.MustCreate(t, exchangeRequest(ns, "exchanged", x, ""))
	k8s.WaitReady(t, ns, "exchanged")
	first, _ := written(t, ns, "exchanged")
	x.setDown(true)

	phase := "503"
	var sawRefused bool
	deadline := time.Now().Add(80 * time.Second)
	for time.Now().Before(deadline) {
		tok, _ := neverExpired(t, ns, "exchanged")
		tr := k8s.GetTR(t, ns, "exchanged")
		c := kube.Condition(tr, v1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionTrue {
			t.Fatalf("Ready is %s while the token is good", kube.Describe(c))
		}
		switch phase {
		case "503":
			if tok != first {
				t.Fatal("the token changed while the server answered 503")
			}
			if x.failures() >= 1 && tr.Status.LastFailureReason == v1.ReasonTokenServiceUnavailable && contains(c.Message, "getting a new one failed") {
				x.setDown(false)
				x.refuse()
				phase = "refused"
			}
		case "refused":
			if tok != first {
				t.Fatal("the token changed while the server refused connections")
			}
			if contains(c.Message, "connection refused") && tr.Status.LastFailureReason == v1.ReasonTokenServiceUnavailable {
				sawRefused = true
				x.listen(t) // the operator kept trying; the server is back
				phase = "back"
			}
		case "back":
			if tok != first {
				if !sawRefused {
					t.Error("the status never said the connection was refused")
				}
				if n := len(x.exchanges()); n != 2 {
					t.Errorf("%d exchanges, want 2", n)
				}
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no new token after the outage (phase %s, %d failed calls)", phase, x.failures())
}

// An outage that outlasts the token turns Ready to Expired when it
// expires, not later, with the server's answer; the token stays in the
// Secret, and a new one is written once the server is back.
func TestAnExchangeOutageOutlivingTheTokenIsReportedExpiredOnTime(t *testing.T) {
	x, ns := exchangeCase(t, 20*time.Second)
	startManager(t, loopbackExchange)
	k8s.MustCreate(t, exchangeRequest(ns, "exchanged", x, ""))
	k8s.WaitReady(t, ns, "exchanged")
	first, exp := written(t, ns, "exchanged")
	x.setDown(true)
	var tr *v1.TokenRequest
	kube.Eventually(t, 40*time.Second, "Ready=False Expired", func() bool {
		tr = k8s.GetTR(t, ns, "exchanged")
		c := kube.Condition(tr, v1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == v1.ReasonExpired
	})
	if late := time.Since(exp); late > 2*time.Second {
		t.Errorf("Expired %s after the token expired", late)
	}
	if msg := kube.Condition(tr, v1.ConditionReady).Message; !contains(msg, "temporarily_unavailable") {
		t.Errorf("the message lacks the server's answer: %s", msg)
	}
	if x.failures() < 2 {
		t.Errorf("%d attempts during the outage", x.failures())
	}
	if tok, _ := written(t, ns, "exchanged"); tok != first {
		t.Error("the Secret changed during the outage")
	}
	x.setDown(false)
	k8s.WaitReady(t, ns, "exchanged")
	if tok, _ := neverExpired(t, ns, "exchanged"); tok == first || len(x.exchanges()) != 2 {
		t.Errorf("after the outage: %d exchanges, new token %v", len(x.exchanges()), tok != first)
	}
}

// Forced refreshes written in a loop cost one exchange per
// --min-refresh-interval, as for any grant.
func TestForcedExchangeRefreshesInALoopStayWithinTheFloor(t *testing.T) {
	const floor = 6 * time.Second
	x, ns := exchangeCase(t, time.Hour)
	startManager(t, loopbackExchange, func(o *operator.Options) { o.MinRefreshInterval = floor })
	k8s.MustCreate(t, exchangeRequest(ns, "exchanged", x, ""))
	issued := k8s.WaitReady(t, ns, "exchanged").Status.LastRefreshTime.Time
	time.Sleep(time.Until(issued.Add(floor + time.Second)))
	before := len(x.exchanges())
	for i := range 10 {
		k8s.UpdateTR(t, ns, "exchanged", func(tr *v1.TokenRequest) {
			tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: fmt.Sprintf("storm-%d", i)}
		})
		time.Sleep(400 * time.Millisecond)
	}
	if n := len(x.exchanges()) - before; n > 1 {
		t.Errorf("10 forced refreshes in 4 s made %d exchanges during them, want at most 1", n)
	}
	kube.Eventually(t, floor+10*time.Second, "the last refresh request to be made", func() bool {
		return k8s.GetTR(t, ns, "exchanged").Status.LastRefreshRequestedAt == "storm-9"
	})
	if n := len(x.exchanges()) - before; n > 2 || n < 1 {
		t.Errorf("the storm made %d exchanges in all, want 1 or 2", n)
	}
}

// When the subject TokenRequest's token service is down, the exchanged
// TokenRequest keeps its last good token until that token's own expiry
// (its subject's), Ready=True until then and Expired on time after, and
// does not exchange the unchanged subject again meanwhile.
func TestAnExchangeKeepsItsTokenWhileItsSubjectsServiceIsDown(t *testing.T) {
	ns, x, clientID := startChain(t)
	k8s.WaitReady(t, ns, "exchanged")
	faults := make([]entraserver.Fault, 100)
	for i := range faults {
		faults[i] = entraserver.Fault{Status: http.StatusServiceUnavailable, ClientID: clientID}
	}
	sts.InjectFaults(faults...)
	_, subjectExp := written(t, ns, "login")
	before := len(x.exchanges())
	first, _ := written(t, ns, "exchanged")

	// A pass of the exchange while its subject is failing keeps everything.
	kube.Eventually(t, 30*time.Second, "the subject's refresh to fail", func() bool {
		return k8s.GetTR(t, ns, "login").Status.LastFailureReason == v1.ReasonTokenServiceUnavailable
	})
	tr := k8s.SeeReconcile(t, ns, "exchanged")
	if c := kube.Condition(tr, v1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("Ready is %s while the subject is failing and the exchanged token is valid", kube.Describe(c))
	}
	if tok, _ := neverExpired(t, ns, "exchanged"); tok != first {
		t.Fatal("the exchanged token changed while its subject was failing")
	}

	var exp time.Time
	kube.Eventually(t, 45*time.Second, "the exchanged token to be reported Expired", func() bool {
		var tok string
		tok, exp = written(t, ns, "exchanged")
		if exp.After(subjectExp) {
			t.Fatalf("the exchanged token expires at %s, after its subject at %s", exp, subjectExp)
		}
		c := kube.Condition(k8s.GetTR(t, ns, "exchanged"), v1.ConditionReady)
		if time.Now().Before(exp.Add(-time.Second)) && (c == nil || c.Status != metav1.ConditionTrue) {
			t.Fatalf("Ready is %s while the exchanged token is valid", kube.Describe(c))
		}
		if tok == "" {
			t.Fatal("the exchanged token was cleared")
		}
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == v1.ReasonExpired
	})
	if late := time.Since(exp); late > 3*time.Second {
		t.Errorf("Expired %s after the exchanged token expired", late)
	}
	tr = k8s.GetTR(t, ns, "exchanged")
	if c := kube.Condition(tr, v1.ConditionReady); !contains(c.Message, "login") {
		t.Errorf("the Expired message does not name the subject: %s", c.Message)
	}
	// Another exchange of the same subject would expire no later.
	if n := len(x.exchanges()) - before; n != 0 {
		t.Errorf("%d exchanges of the unchanged subject while its service was down", n)
	}
}
