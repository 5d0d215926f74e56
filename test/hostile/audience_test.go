//go:build linux

package hostile_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/entraserver"
)

// apiServerAudiences asks for service account tokens the API server itself
// would accept, to be sent to a token service the ServiceAccount consents
// to: whoever runs that service could then call the API server as the
// ServiceAccount. The service is set up to accept the API server's issuer
// as audience, so only the operator's refusal keeps the calls at zero.
func apiServerAudiences(t *testing.T) (string, []string) {
	ns := k8s.NewNamespace(t)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "workload", Namespace: ns,
		Annotations: map[string]string{v1.AnnotationAllowedIssuers: sts.Host()}}}
	k8s.MustCreate(t, sa)
	issuer := serviceAccountIssuer(t, sa)
	clientID := "aud-" + randomHex(8)
	sts.AddApp(entraserver.App{ClientID: clientID, ExpiresIn: 3600, Federated: []entraserver.FederatedCredential{{
		Issuer: issuer, Subject: "system:serviceaccount:" + ns + ":workload", Audience: issuer,
	}}})
	audiences := map[string]string{
		"issuer":  issuer, // from the API server's discovery document
		"cluster": "https://kubernetes.default.svc.cluster.local",
		"bare":    "Kubernetes.Default.Svc/",
		"empty":   " ",
	}
	var names []string
	for name, aud := range audiences {
		tr := entraRequest(ns, name, clientID, "")
		tr.Spec.Credential = &v1.Credential{ServiceAccount: &v1.ServiceAccountCredential{Name: "workload", Audience: aud}}
		k8s.MustCreate(t, tr)
		names = append(names, name)
	}
	t.Cleanup(func() {
		if n := sts.TokenCalls(clientID) + sts.FederatedTokenCalls(clientID); n != 0 {
			t.Errorf("%d token calls with service account tokens for the API server's audiences", n)
		}
	})
	return ns, names
}

// serviceAccountIssuer reads the iss claim of a token the API server mints
// for sa.
func serviceAccountIssuer(t *testing.T, sa *corev1.ServiceAccount) string {
	t.Helper()
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"probe"}}}
	if err := k8s.SubResource("token").Create(context.Background(), sa, req); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(req.Status.Token, ".")
	if len(parts) != 3 {
		t.Fatal("the service account token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Iss == "" {
		t.Fatalf("no issuer in the service account token: %v", err)
	}
	return claims.Iss
}
