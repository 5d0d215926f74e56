package interop_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/kube"
	"github.com/token-operator/token-operator/internal/testing/testenv"
)

// zAudienceExchanger is a client the server lets ask for any audience, so
// that only the issuer's allowedAudiences stand between a namespace and an
// audience.
const zAudienceExchanger = "z-audience-exchanger"

// A ClusterTokenIssuer's token exchange sends its own audience unless a
// TokenRequest chooses one its allowedAudiences match: that one reaches
// the server and is the token's aud, shared by every TokenRequest choosing
// it; any other is refused with no call.
func TestAClusterIssuersTokenRequestsChooseAmongItsAllowedAudiences(t *testing.T) {
	ctx := context.Background()
	a, b := k8s.NewNamespace(t), k8s.NewNamespace(t)
	opNS, issuer, subject := testenv.OperatorNamespace, "audiences-"+a, "subject-"+a
	zCredential(t, opNS, issuer+"-cred", zAudienceExchanger, zRightSecret)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: subject, Namespace: opNS,
		Annotations: map[string]string{v1.AnnotationAllowedIssuers: zHost}}}
	k8s.MustCreate(t, sa)
	ci := &v1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: issuer},
		Spec: v1.ClusterTokenIssuerSpec{IssuerSpec: v1.IssuerSpec{TokenURL: zsrv.TokenURL(), ClientID: zAudienceExchanger, AllowedScopes: []string{"read"},
			Credential: v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: issuer + "-cred"}},
			TokenExchange: &v1.TokenExchange{Audience: "orders-api", AllowedAudiences: []string{"billing-*", "reports-api"},
				SubjectToken: v1.ExchangeSubject{ServiceAccount: &v1.ServiceAccountCredential{Name: subject, Audience: zSubjectAudience}}}}}}
	k8s.MustCreate(t, ci)
	t.Cleanup(func() { _ = k8s.Delete(ctx, ci); _ = k8s.Delete(ctx, sa) })
	request := func(ns, name, audience string) {
		tr := &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: v1.TokenRequestSpec{
			IssuerRef: &v1.IssuerReference{Kind: v1.KindClusterTokenIssuer, Name: issuer}, Scopes: []string{"read"}}}
		if audience != "" {
			tr.Spec.Exchange = &v1.ExchangeTarget{Audience: audience}
		}
		zCreateTokenRequest(t, tr)
	}
	// tokenFor waits for name's token and checks it is the issuer's
	// subject's, for audience.
	tokenFor := func(ns, name, audience string) string {
		t.Helper()
		k8s.WaitReady(t, ns, name)
		token := string(k8s.GetSecret(t, ns, name).Data[v1.KeyAccessToken])
		claims, err := zsrv.VerifyAccessToken(ctx, token)
		if err != nil {
			t.Fatalf("%s/%s: the access token does not verify with the server's JWKS: %v", ns, name, err)
		}
		if want := "system:serviceaccount:" + opNS + ":" + subject; claims.Subject != want || !slices.Equal([]string(claims.Audience), []string{audience}) {
			t.Errorf("%s/%s: token for sub %q aud %v, want %q [%s]", ns, name, claims.Subject, claims.Audience, want, audience)
		}
		return token
	}

	request(a, "default", "")
	own := tokenFor(a, "default", "orders-api")
	request(a, "billing", "billing-api")
	billing := tokenFor(a, "billing", "billing-api")
	if billing == own {
		t.Error("the chosen audience got the issuer's default token")
	}

	// Another namespace choosing the same audience shares the token.
	calls := zsrv.TokenCalls()
	request(b, "billing", "billing-api")
	if tokenFor(b, "billing", "billing-api") != billing || zsrv.TokenCalls() != calls {
		t.Errorf("a second TokenRequest for the same audience made %d calls for another token, want the first one's", zsrv.TokenCalls()-calls)
	}

	// An audience the server would grant, but the issuer does not allow.
	calls = zsrv.TokenCalls()
	request(b, "payroll", "payroll-api")
	tr := k8s.WaitReason(t, b, "payroll", v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonAudienceNotAllowed)
	msg := kube.Condition(tr, v1.ConditionStalled).Message
	t.Logf("status: %s", msg)
	if want := `ClusterTokenIssuer "` + issuer + `" does not allow the audience "payroll-api"`; !strings.Contains(msg, want) {
		t.Errorf("Stalled message %q does not say %q", msg, want)
	}
	if c := kube.Condition(tr, v1.ConditionReady); c.Status != metav1.ConditionFalse || c.Reason != v1.ReasonAudienceNotAllowed {
		t.Errorf("Ready %s %s, want False %s", c.Status, c.Reason, v1.ReasonAudienceNotAllowed)
	}
	if n := zsrv.TokenCalls() - calls; n != 0 {
		t.Errorf("a refused audience made %d token calls", n)
	}
	if s := k8s.FindSecret(t, b, "payroll"); s != nil {
		t.Error("a refused audience got a Secret")
	}
}
