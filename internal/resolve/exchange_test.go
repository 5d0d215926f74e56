package resolve

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/secretdata"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// A host refused during a token exchange (a discovered token endpoint)
// names the consent that is missing, with that object's own host list.
func TestExchangeRefusedHostNamesWhoMustConsent(t *testing.T) {
	from := Source{credential: secretCred("client"), credentialNamespace: ns, spec: v1.IssuerSpec{
		TokenExchange: &v1.TokenExchange{SubjectToken: v1.ExchangeSubject{ServiceAccount: &v1.ServiceAccountCredential{Name: "workload", Audience: "sts"}}}}}
	req := tokensource.Request{IssuerURL: "https://idp.example.com", AllowedHosts: []string{"idp.example.com"}, Exchange: &tokensource.Exchange{
		ClientAllowed: []string{"idp.example.com", "tokens.example.com"}, SubjectAllowed: []string{"idp.example.com", "sts.example.com"}}}
	for host, want := range map[string]string{
		"tokens.example.com": `ServiceAccount "workload" does not allow sending its credential to "tokens.example.com"; ` +
			`if you trust "tokens.example.com" with this credential: kubectl annotate serviceaccount workload -n team-a --overwrite ` +
			v1.AnnotationAllowedIssuers + "=idp.example.com,sts.example.com,tokens.example.com",
		"sts.example.com": `Secret "client" does not allow sending its credential to "sts.example.com"; ` +
			`if you trust "sts.example.com" with this credential: kubectl annotate secret client -n team-a --overwrite ` +
			v1.AnnotationAllowedIssuers + "=idp.example.com,tokens.example.com,sts.example.com",
	} {
		err := from.Explain(&tokensource.HostNotAllowedError{Host: host}, req)
		var refusal *Refusal
		if !errors.As(err, &refusal) || refusal.Reason != v1.ReasonCredentialNotAllowed || refusal.Message != want {
			t.Errorf("%s:\n got %v\nwant %s", host, err, want)
		}
	}
	if err := from.Explain(&tokensource.HostNotAllowedError{Host: "evil.example", ByOperator: true}, req); !strings.Contains(err.Error(), "--allowed-issuer-hosts") {
		t.Errorf("the operator's ceiling: %v", err)
	}
}

// outputOf is the output Secret the operator wrote for TokenRequest name.
func outputOf(name, token string, expires time.Time) *corev1.Secret {
	data := map[string][]byte{v1.KeyAccessToken: []byte(token), v1.KeyTokenType: []byte("Bearer"), v1.KeyExpiresAt: []byte(expires.UTC().Format(time.RFC3339))}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
		Labels:      map[string]string{v1.LabelManagedBy: v1.ManagedByValue, v1.LabelTokenRequest: name},
		Annotations: map[string]string{v1.AnnotationTokenRequestName: name, secretdata.AnnotationDataHash: secretdata.DataHash(data)}}, Data: data}
}

func subjectRef(name string) *v1.TokenExchange {
	return &v1.TokenExchange{Audience: "orders", SubjectToken: v1.ExchangeSubject{TokenRequestRef: &v1.LocalTokenRequestReference{Name: name}}}
}

// A tokenRequestRef subject is the named TokenRequest's token as the
// operator wrote it; anything else waits (SubjectTokenNotReady) or is
// refused (itself, a cycle, on an issuer), before any call.
func TestTokenRequestRefSubject(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	later := now.Add(30 * time.Minute)
	consent := map[string]string{v1.AnnotationAllowedIssuers: "sts.example.com"}
	exchanging := func(name, subject string) *v1.TokenRequest {
		return &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: k8stypes.UID("uid-" + name)},
			Spec: v1.TokenRequestSpec{TokenURL: tokenURL, ClientID: "app", Credential: secretCred("consented"), TokenExchange: subjectRef(subject)}}
	}
	plain := func(name string) *v1.TokenRequest {
		return &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: k8stypes.UID("uid-" + name)},
			Spec: v1.TokenRequestSpec{TokenURL: tokenURL, ClientID: "app", Credential: secretCred("consented")}}
	}
	changed := outputOf("tampered", "edited-token", later)
	changed.Data[v1.KeyAccessToken] = []byte("another-token")
	foreign := outputOf("foreign", "t", later)
	foreign.Labels[v1.LabelTokenRequest] = "someone-else"
	cached := objects{
		plain("login"), outputOf("login", "subject-access-token", later),
		plain("pending"),
		plain("expired"), outputOf("expired", "old", now.Add(-time.Second)),
		plain("tampered"), changed,
		plain("foreign"), foreign,
		exchanging("a", "b"), exchanging("b", "a"),
		exchanging("c", "d"), exchanging("d", "e"), exchanging("e", "d"),
		&v1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "fixed"}, Spec: v1.TokenIssuerSpec{IssuerSpec: v1.IssuerSpec{
			TokenURL: tokenURL, ClientID: "app", Credential: *secretCred("consented"), TokenExchange: subjectRef("login")}}},
	}
	r := &Resolver{Cached: cached, Direct: objects{clientSecret("consented", consent)}, Metadata: objects{}, Policy: allowAll{},
		Clock: clocktesting.NewFakePassiveClock(now)}
	for _, tc := range []struct {
		name, subject, reason, contains string
	}{
		{"itself", "x", v1.ReasonInvalidSpec, "cycle (x → x)"},
		{"a cycle", "a", v1.ReasonInvalidSpec, "cycle (x → a → b → a)"},
		{"a cycle further on", "c", v1.ReasonInvalidSpec, "cycle (x → c → d → e → d)"},
		{"a missing TokenRequest", "absent", v1.ReasonSubjectTokenNotReady, `TokenRequest "absent" (the token exchange's subject) not found`},
		{"one without a Secret", "pending", v1.ReasonSubjectTokenNotReady, "has no token yet"},
		{"an expired token", "expired", v1.ReasonSubjectTokenNotReady, "has only an expired token"},
		{"a Secret changed by hand", "tampered", v1.ReasonSubjectTokenNotReady, "changed by someone other than the operator"},
		{"a Secret of someone else", "foreign", v1.ReasonSubjectTokenNotReady, "is not its output"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := exchanging("x", tc.subject)
			_, err := r.Resolve(context.Background(), tr)
			var refusal *Refusal
			if !errors.As(err, &refusal) || refusal.Reason != tc.reason || !strings.Contains(refusal.Message, tc.contains) {
				t.Fatalf("Resolve = %v, want a %s refusal with %q", err, tc.reason, tc.contains)
			}
			if strings.Contains(refusal.Message, "token\"") || strings.Contains(refusal.Message, "edited-token") {
				t.Fatal("a refusal carries a token")
			}
		})
	}

	t.Run("a usable subject", func(t *testing.T) {
		res, err := r.Resolve(context.Background(), exchanging("x", "login"))
		if err != nil {
			t.Fatal(err)
		}
		x := res.Request.Exchange
		if x == nil || x.Subject.Type != tokensource.TokenTypeAccessToken || !strings.Contains(x.Subject.ID, "login") {
			t.Fatalf("exchange %+v", x)
		}
		tok, exp, err := x.Subject.Provide(context.Background())
		if err != nil || tok != "subject-access-token" || !exp.Equal(later) {
			t.Fatalf("subject %q %v %v", tok, exp, err)
		}
		if strings.Join(res.Request.AllowedHosts, ",") != "sts.example.com" {
			t.Errorf("allowed hosts %v: the credential's consent still holds", res.Request.AllowedHosts)
		}
		if strings.Contains(res.InputHash(), "subject-access-token") || strings.Contains(x.Subject.ID, "subject-access-token") {
			t.Error("the subject token is in the key")
		}
		// A refreshed subject is another input, even with the same expiry.
		refreshed := append(objects{outputOf("login", "subject-access-token-2", later)}, cached...)
		r2 := &Resolver{Cached: refreshed, Direct: r.Direct, Metadata: objects{}, Policy: allowAll{}, Clock: r.Clock}
		res2, err := r2.Resolve(context.Background(), exchanging("x", "login"))
		if err != nil || res2.InputHash() == res.InputHash() || res2.Request.CacheKey() == res.Request.CacheKey() {
			t.Errorf("a refreshed subject kept the input hash or the cache key (%v)", err)
		}
	})

	t.Run("on an issuer", func(t *testing.T) {
		tr := &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "x"}, Spec: v1.TokenRequestSpec{IssuerRef: &v1.IssuerReference{Name: "fixed"}}}
		_, err := r.Resolve(context.Background(), tr)
		if err == nil || !strings.Contains(err.Error(), "applies only on a TokenRequest") {
			t.Fatalf("Resolve = %v", err)
		}
	})
}

// Without client authentication no credential is read or sent, and the
// subject ServiceAccount's consent alone decides the host; an issuer
// stored with None still authenticates with its credential.
func TestTokenExchangeWithoutClientAuthenticationResolves(t *testing.T) {
	consent := map[string]string{v1.AnnotationAllowedIssuers: "sts.example.com"}
	public := func(subject string) *v1.TokenExchange {
		return &v1.TokenExchange{ClientAuthentication: v1.ExchangeClientAuthNone,
			SubjectToken: v1.ExchangeSubject{ServiceAccount: &v1.ServiceAccountCredential{Name: subject, Audience: "sts"}}}
	}
	cached := objects{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "subject", UID: "uid-subject", Annotations: consent}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "silent", UID: "uid-silent"}},
		&v1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "issuer"}, Spec: v1.TokenIssuerSpec{IssuerSpec: v1.IssuerSpec{
			TokenURL: tokenURL, ClientID: "app", Credential: *secretCred("consented"), TokenExchange: public("subject")}}},
	}
	r := &Resolver{Cached: cached, Direct: objects{clientSecret("consented", consent)}, Metadata: objects{}, Policy: allowAll{}}
	tr := &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "x"},
		Spec: v1.TokenRequestSpec{TokenURL: tokenURL, ClientID: "public", TokenExchange: public("subject")}}
	res, err := r.Resolve(context.Background(), tr)
	if err != nil {
		t.Fatal(err)
	}
	if res.Request.Credential != nil || !res.Request.Exchange.NoClientAuth || strings.Join(res.Request.AllowedHosts, ",") != "sts.example.com" {
		t.Fatalf("request %+v", res.Request)
	}
	tr.Spec.TokenExchange = public("silent")
	var refusal *Refusal
	if _, err := r.Resolve(context.Background(), tr); !errors.As(err, &refusal) || !strings.Contains(refusal.Message, "kubectl annotate serviceaccount silent") {
		t.Errorf("a subject without consent: %v", err)
	}
	viaIssuer := &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "y"}, Spec: v1.TokenRequestSpec{IssuerRef: &v1.IssuerReference{Name: "issuer"}}}
	res, err = r.Resolve(context.Background(), viaIssuer)
	if err != nil || res.Request.Credential == nil || res.Request.Exchange.NoClientAuth {
		t.Errorf("an issuer stored with None: %+v, %v", res.Request, err)
	}
}

// The actor ServiceAccount consents to the host like the subject; a
// refusal names it.
func TestTokenExchangeActorConsents(t *testing.T) {
	consent := map[string]string{v1.AnnotationAllowedIssuers: "sts.example.com"}
	cached := objects{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "subject", UID: "uid-subject", Annotations: consent}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent", UID: "uid-agent", Annotations: consent}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "silent-agent", UID: "uid-silent"}},
	}
	r := &Resolver{Cached: cached, Direct: objects{clientSecret("consented", consent)}, Metadata: objects{}, Policy: allowAll{}}
	withActor := func(actor string) *v1.TokenRequest {
		return &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "x"}, Spec: v1.TokenRequestSpec{TokenURL: tokenURL, ClientID: "app",
			Credential: secretCred("consented"), TokenExchange: &v1.TokenExchange{
				SubjectToken: v1.ExchangeSubject{ServiceAccount: &v1.ServiceAccountCredential{Name: "subject", Audience: "sts"}},
				ActorToken:   &v1.ExchangeActor{ServiceAccount: &v1.ServiceAccountCredential{Name: actor, Audience: "sts"}}}}}
	}
	res, err := r.Resolve(context.Background(), withActor("agent"))
	if err != nil || res.Request.Exchange.Actor == nil || !strings.Contains(res.Request.Exchange.Actor.ID, "uid-agent") || res.Request.Exchange.Actor.Type != tokensource.TokenTypeJWT {
		t.Fatalf("Resolve = %+v, %v", res.Request.Exchange, err)
	}
	var refusal *Refusal
	if _, err := r.Resolve(context.Background(), withActor("silent-agent")); !errors.As(err, &refusal) || refusal.Reason != v1.ReasonCredentialNotAllowed ||
		!strings.Contains(refusal.Message, "kubectl annotate serviceaccount silent-agent") {
		t.Errorf("an actor without consent: %v", err)
	}
	if _, err := r.Resolve(context.Background(), withActor("absent")); !errors.As(err, &refusal) || !strings.Contains(refusal.Message, "the token exchange's actor") {
		t.Errorf("a missing actor: %v", err)
	}
}
