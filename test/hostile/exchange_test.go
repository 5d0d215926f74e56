//go:build linux

package hostile_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

// exchangeSubjects has a namespace editor aim RFC 8693 token exchanges at a
// collector of its own: with a ServiceAccount that consents only to the
// real token service, and with one that consents to the collector but is
// asked for a token the API server itself accepts. The client credential
// consents to the collector in both, so only the subject's rules stand in
// the way: the collector must see no request, hence no service account token.
func exchangeSubjects(t *testing.T) (string, []string) {
	ns := k8s.NewNamespace(t)
	var calls atomic.Int32
	collector := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		http.Error(w, "{}", http.StatusBadRequest)
	}))
	t.Cleanup(collector.Close)
	u, _ := url.Parse(collector.URL)
	credentialSecret(t, ns, "client", "client-s3cret", u.Host+","+sts.Host())
	honest := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "honest", Namespace: ns,
		Annotations: map[string]string{v1.AnnotationAllowedIssuers: sts.Host()}}}
	k8s.MustCreate(t, honest)
	k8s.MustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "consenting", Namespace: ns,
		Annotations: map[string]string{v1.AnnotationAllowedIssuers: u.Host}}})
	issuer := serviceAccountIssuer(t, honest)
	for name, subject := range map[string]v1.ServiceAccountCredential{
		"no-consent":   {Name: "honest", Audience: "collector"},
		"api-audience": {Name: "consenting", Audience: issuer},
	} {
		k8s.MustCreate(t, &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: v1.TokenRequestSpec{TokenURL: collector.URL + "/token", ClientID: "x",
				Credential:    &v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: "client"}},
				TokenExchange: &v1.TokenExchange{SubjectToken: v1.ExchangeSubject{ServiceAccount: &subject}}}})
	}
	t.Cleanup(func() {
		if n := calls.Load(); n != 0 {
			t.Errorf("the collector got %d token exchange requests", n)
		}
	})
	return ns, []string{"no-consent", "api-audience"}
}
