package resolve

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

// exchangeTargetResolver has issuers whose token exchange sends audience
// "orders" and one resource: "narrow" and the ClusterTokenIssuer "corp"
// allow other audiences and resources by pattern, "fixed" allows none,
// "plain" uses client credentials.
func exchangeTargetResolver() *Resolver {
	consent := map[string]string{v1.AnnotationAllowedIssuers: "sts.example.com"}
	x := func(allowAud, allowRes []string) *v1.TokenExchange {
		return &v1.TokenExchange{Audience: "orders", Resource: []string{"https://orders.example.com/", "https://orders.example.com/v2"},
			AllowedAudiences: allowAud, AllowedResources: allowRes,
			SubjectToken: v1.ExchangeSubject{ServiceAccount: &v1.ServiceAccountCredential{Name: "subject", Audience: "sts"}}}
	}
	spec := func(te *v1.TokenExchange) v1.IssuerSpec {
		return v1.IssuerSpec{TokenURL: tokenURL, ClientID: "app", Credential: *secretCred("consented"), TokenExchange: te}
	}
	cached := objects{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "subject", UID: "uid-subject", Annotations: consent}},
		&v1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "narrow", UID: "uid-narrow"}, Spec: v1.TokenIssuerSpec{
			IssuerSpec: spec(x([]string{"billing-*", "reports"}, []string{"https://billing.example.com/*"}))}},
		&v1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "fixed", UID: "uid-fixed"}, Spec: v1.TokenIssuerSpec{IssuerSpec: spec(x(nil, nil))}},
		&v1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plain", UID: "uid-plain"}, Spec: v1.TokenIssuerSpec{IssuerSpec: spec(nil)}},
		&v1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "corp", UID: "uid-corp"}, Spec: v1.ClusterTokenIssuerSpec{
			IssuerSpec: spec(x([]string{"billing-*"}, nil))}},
	}
	return &Resolver{Cached: cached, Direct: objects{clientSecret("consented", consent)}, Metadata: objects{}, Policy: allowAll{}, ClusterResourceNamespace: ns}
}

func viaExchangeIssuer(kind, issuer string, target *v1.ExchangeTarget) *v1.TokenRequest {
	return &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "x"},
		Spec: v1.TokenRequestSpec{IssuerRef: &v1.IssuerReference{Kind: kind, Name: issuer}, Exchange: target}}
}

// A TokenRequest chooses its issuer's exchange audience and resources only
// among the issuer's own and those its allowed patterns match; the refusal
// comes before any token call, and a ClusterTokenIssuer is no wider for a
// namespace than its owner wrote.
func TestATokenRequestChoosesOnlyTheAudiencesItsIssuerAllows(t *testing.T) {
	own := []string{"https://orders.example.com/", "https://orders.example.com/v2"}
	cases := []struct {
		name      string
		kind      string
		issuer    string
		target    *v1.ExchangeTarget
		audience  string   // sent, when allowed
		resources []string // sent, when allowed
		reason    string
		contains  string
	}{
		{"no choice: the issuer's own", "", "narrow", nil, "orders", own, "", ""},
		{"an audience a pattern allows", "", "narrow", &v1.ExchangeTarget{Audience: "billing-api"}, "billing-api", own, "", ""},
		{"an audience listed as is", "", "narrow", &v1.ExchangeTarget{Audience: "reports"}, "reports", own, "", ""},
		{"an audience no pattern allows", "", "narrow", &v1.ExchangeTarget{Audience: "payroll"}, "", nil, v1.ReasonAudienceNotAllowed, `TokenIssuer "narrow" does not allow the audience "payroll"`},
		{"a pattern is not a prefix", "", "narrow", &v1.ExchangeTarget{Audience: "reports-admin"}, "", nil, v1.ReasonAudienceNotAllowed, `"reports-admin"`},
		{"resources a pattern allows", "", "narrow", &v1.ExchangeTarget{Resource: []string{"https://billing.example.com/v1"}}, "orders", []string{"https://billing.example.com/v1"}, "", ""},
		{"a resource no pattern allows", "", "narrow", &v1.ExchangeTarget{Audience: "billing-api", Resource: []string{"https://billing.example.com/v1", "https://evil.example.org/"}},
			"", nil, v1.ReasonAudienceNotAllowed, `the resource "https://evil.example.org/"`},
		{"another host behind an allowed host's name", "", "narrow", &v1.ExchangeTarget{Resource: []string{"https://evil.example.org/billing.example.com/"}},
			"", nil, v1.ReasonAudienceNotAllowed, `"https://evil.example.org/billing.example.com/"`},
		{"a fixed issuer's own audience named", "", "fixed", &v1.ExchangeTarget{Audience: "orders"}, "orders", own, "", ""},
		{"a fixed issuer's own resources narrowed", "", "fixed", &v1.ExchangeTarget{Resource: []string{"https://orders.example.com/v2"}}, "orders", []string{"https://orders.example.com/v2"}, "", ""},
		{"any other audience of a fixed issuer", "", "fixed", &v1.ExchangeTarget{Audience: "billing-api"}, "", nil, v1.ReasonAudienceNotAllowed, `leave spec.exchange.audience out for its own ("orders")`},
		{"any other resource of a fixed issuer", "", "fixed", &v1.ExchangeTarget{Resource: []string{"https://orders.example.com/v3"}}, "", nil, v1.ReasonAudienceNotAllowed, `"https://orders.example.com/v3"`},
		{"an issuer without token exchange", "", "plain", &v1.ExchangeTarget{Audience: "orders"}, "", nil, v1.ReasonInvalidSpec, "does not use token exchange"},
		{"a cluster issuer's allowed audience", v1.KindClusterTokenIssuer, "corp", &v1.ExchangeTarget{Audience: "billing-eu"}, "billing-eu", own, "", ""},
		{"a namespace widening a cluster issuer", v1.KindClusterTokenIssuer, "corp", &v1.ExchangeTarget{Audience: "reports"}, "", nil, v1.ReasonAudienceNotAllowed, `ClusterTokenIssuer "corp" does not allow the audience "reports"`},
		{"a cluster issuer's resources", v1.KindClusterTokenIssuer, "corp", &v1.ExchangeTarget{Resource: []string{"https://billing.example.com/"}}, "", nil, v1.ReasonAudienceNotAllowed, "resource"},
	}
	r := exchangeTargetResolver()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := r.Resolve(context.Background(), viaExchangeIssuer(tc.kind, tc.issuer, tc.target))
			if tc.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				x := res.Request.Exchange
				if x.Audience != tc.audience || strings.Join(x.Resources, " ") != strings.Join(tc.resources, " ") {
					t.Errorf("sends audience %q resources %v, want %q %v", x.Audience, x.Resources, tc.audience, tc.resources)
				}
				return
			}
			var refusal *Refusal
			if !errors.As(err, &refusal) || refusal.Reason != tc.reason || !strings.Contains(refusal.Message, tc.contains) {
				t.Fatalf("err = %v, want a %s refusal containing %q", err, tc.reason, tc.contains)
			}
			if res.Request.Exchange != nil {
				t.Error("a refused choice still built a request")
			}
		})
	}
	// Choices replace a copy: the issuer's own exchange is as its owner wrote it.
	res, err := r.Resolve(context.Background(), viaExchangeIssuer("", "narrow", nil))
	if err != nil || res.Request.Exchange.Audience != "orders" {
		t.Errorf("after the choices, no choice sends %+v, %v", res.Request.Exchange, err)
	}
}

// The chosen audience and resources are inputs of the token: the same
// choice shares one token, another gets its own.
func TestTheChosenAudienceIsPartOfTheTokensKey(t *testing.T) {
	r := exchangeTargetResolver()
	key := func(target *v1.ExchangeTarget) (string, string) {
		t.Helper()
		res, err := r.Resolve(context.Background(), viaExchangeIssuer("", "narrow", target))
		if err != nil {
			t.Fatal(err)
		}
		return res.Request.CacheKey(), res.Request.InputHash(res.Version)
	}
	billing, billingHash := key(&v1.ExchangeTarget{Audience: "billing-api"})
	again, againHash := key(&v1.ExchangeTarget{Audience: "billing-api"})
	reports, reportsHash := key(&v1.ExchangeTarget{Audience: "reports"})
	resource, resourceHash := key(&v1.ExchangeTarget{Audience: "billing-api", Resource: []string{"https://billing.example.com/"}})
	def, defHash := key(nil)
	named, namedHash := key(&v1.ExchangeTarget{Audience: "orders"})
	if billing != again || billingHash != againHash {
		t.Error("the same audience gives two keys: two token calls where one would do")
	}
	if billing == reports || billingHash == reportsHash || billing == resource || billingHash == resourceHash || billing == def || billingHash == defHash {
		t.Error("another audience or resource shares a key: a TokenRequest would get a token for another target")
	}
	if def != named || defHash != namedHash {
		t.Error("naming the issuer's own audience gives another key than leaving it out")
	}
}
