//go:build linux

package hostile_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/testenv"
)

// widenedAudiences has a namespace editor use a platform team's
// ClusterTokenIssuer, whose token exchange allows orders-* audiences and
// resources under https://orders.example.com/, to ask for other audiences
// and resources: one a pattern does not cover, a pattern itself, and a
// resource on another host whose path names the allowed one. The issuer's
// token service must see no request.
func widenedAudiences(t *testing.T) (string, []string) {
	ns := k8s.NewNamespace(t)
	var calls atomic.Int32
	svc := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		http.Error(w, "{}", http.StatusBadRequest)
	}))
	t.Cleanup(svc.Close)
	name := "exchange-" + ns
	credentialSecret(t, testenv.OperatorNamespace, name, "client-secret-"+randomHex(8), host(svc.URL))
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testenv.OperatorNamespace,
		Annotations: map[string]string{v1.AnnotationAllowedIssuers: host(svc.URL)}}}
	k8s.MustCreate(t, sa)
	ci := &v1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.ClusterTokenIssuerSpec{
		IssuerSpec: v1.IssuerSpec{TokenURL: svc.URL + "/token", ClientID: name,
			Credential: v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: name}},
			TokenExchange: &v1.TokenExchange{Audience: "orders-api", AllowedAudiences: []string{"orders-*"},
				Resource: []string{"https://orders.example.com/"}, AllowedResources: []string{"https://orders.example.com/*"},
				SubjectToken: v1.ExchangeSubject{ServiceAccount: &v1.ServiceAccountCredential{Name: name, Audience: "exchange"}}}},
		AllowedNamespaces: &v1.AllowedNamespaces{Names: []string{ns}}}}
	k8s.MustCreate(t, ci)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), ci); _ = k8s.Delete(context.Background(), sa) })
	for tr, target := range map[string]v1.ExchangeTarget{
		"admin":        {Audience: "admin-api"},
		"any-audience": {Audience: "*"},
		"other-host":   {Resource: []string{"https://orders.example.com/", "https://collector.example.org/orders.example.com/"}},
	} {
		k8s.MustCreate(t, &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: tr}, Spec: v1.TokenRequestSpec{
			IssuerRef: &v1.IssuerReference{Kind: v1.KindClusterTokenIssuer, Name: name}, Exchange: &target}})
	}
	t.Cleanup(func() {
		if n := calls.Load(); n != 0 {
			t.Errorf("the issuer's token service got %d requests for audiences or resources it does not allow", n)
		}
	})
	return ns, []string{"admin", "any-audience", "other-host"}
}
