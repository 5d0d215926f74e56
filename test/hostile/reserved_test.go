//go:build linux

package hostile_test

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

// reservedCredential: a namespace editor names a credential reserved for
// the namespace's TokenIssuer inline, and in a second TokenIssuer without
// allowedScopes, to get tokens for any scope. Neither reaches the token
// service; the reserved issuer keeps working.
func reservedCredential(t *testing.T) (string, []string) {
	ns := k8s.NewNamespace(t)
	clientID, secret := entraApp(t)
	scope := "api://" + clientID + "/.default"
	credentialSecret(t, ns, "team-app", secret, sts.Host())
	cred := k8s.GetSecret(t, ns, "team-app")
	cred.Annotations[v1.AnnotationReservedFor] = "TokenIssuer/team"
	if err := k8s.Update(t.Context(), cred); err != nil {
		t.Fatal(err)
	}
	k8s.MustCreate(t, reservedIssuer(ns, "team", clientID, []string{scope}))
	k8s.MustCreate(t, &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "allowed"},
		Spec: v1.TokenRequestSpec{IssuerRef: &v1.IssuerReference{Name: "team"}, Scopes: []string{scope}}})
	k8s.WaitReady(t, ns, "allowed")
	before := sts.TokenCalls(clientID)

	other := "https://graph.microsoft.com/.default"
	k8s.MustCreate(t, reservedIssuer(ns, "sneaky", clientID, nil))
	inline := entraRequest(ns, "inline", clientID, "team-app")
	inline.Spec.Scopes = []string{other}
	k8s.MustCreate(t, inline)
	k8s.MustCreate(t, &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "second"},
		Spec: v1.TokenRequestSpec{IssuerRef: &v1.IssuerReference{Name: "sneaky"}, Scopes: []string{other}}})
	t.Cleanup(func() {
		if n := sts.TokenCalls(clientID) - before; n != 0 {
			t.Errorf("the inline and second-issuer requests made %d token calls, want 0", n)
		}
		if k8s.FindSecret(t, ns, "inline") != nil || k8s.FindSecret(t, ns, "second") != nil {
			t.Error("a refused request got an output Secret")
		}
	})
	return ns, []string{"inline", "second"}
}

func reservedIssuer(ns, name, clientID string, allowedScopes []string) *v1.TokenIssuer {
	return &v1.TokenIssuer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.TokenIssuerSpec{IssuerSpec: v1.IssuerSpec{
			Authority: sts.Authority("contoso"), ClientID: clientID, AllowedScopes: allowedScopes,
			Credential: v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: "team-app"}},
		}},
	}
}
