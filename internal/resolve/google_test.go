package resolve

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/credential"
)

const googleProvider = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/clusters/providers/cluster-a"

// A google target resolves like a federation credential: the same switch,
// reservation, consent (now covering the STS and IAM Credentials hosts) and
// audience ceiling, with Google's default audience.
func TestResolveGoogle(t *testing.T) {
	both := map[string]string{v1.AnnotationAllowedIssuers: "sts.googleapis.com, iamcredentials.googleapis.com"}
	sa := func(name string, ann map[string]string) *corev1.ServiceAccount {
		return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), Annotations: ann}}
	}
	target := func(email string) *v1.GoogleTarget {
		return &v1.GoogleTarget{Audience: googleProvider, ServiceAccountEmail: email}
	}
	cred := func(name, aud string) *v1.Credential {
		return &v1.Credential{ServiceAccount: &v1.ServiceAccountCredential{Name: name, Audience: aud}}
	}
	inline := func(c *v1.Credential, g *v1.GoogleTarget, scopes ...string) v1.TokenRequestSpec {
		return v1.TokenRequestSpec{Google: g, Credential: c, Scopes: scopes}
	}
	issuer := func(name, account string, allowedScopes ...string) *v1.TokenIssuer {
		return &v1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.TokenIssuerSpec{IssuerSpec: v1.IssuerSpec{
			Google: target("orders@p.iam.gserviceaccount.com"), Credential: *cred(account, ""), AllowedScopes: allowedScopes}}}
	}
	ref := func(name string, scopes ...string) v1.TokenRequestSpec {
		return v1.TokenRequestSpec{IssuerRef: &v1.IssuerReference{Name: name}, Scopes: scopes}
	}
	cached := objects{
		sa("workload", both),
		sa("sts-only", map[string]string{v1.AnnotationAllowedIssuers: "sts.googleapis.com"}),
		sa("no-consent", nil),
		sa("reserved", map[string]string{v1.AnnotationAllowedIssuers: "sts.googleapis.com,iamcredentials.googleapis.com", v1.AnnotationReservedFor: "TokenIssuer/gcp"}),
		issuer("gcp", "reserved"), issuer("gcp-scoped", "workload", "https://www.googleapis.com/auth/devstorage.*"),
	}
	defaultAud := "https://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/clusters/providers/cluster-a"
	cases := []struct {
		name     string
		spec     v1.TokenRequestSpec
		noSA     bool
		ceiling  []string
		reason   string
		contains string // in the refusal, or in the credential's ID
		email    string
	}{
		{"federated only, default audience", inline(cred("workload", ""), target("")), false, nil, "", "/" + defaultAud, ""},
		{"impersonation", inline(cred("workload", ""), target("app@p.iam.gserviceaccount.com")), false, nil, "", "/" + defaultAud, "app@p.iam.gserviceaccount.com"},
		{"an audience the credential names stays", inline(cred("workload", "gcp-clusters"), target("")), false, nil, "", "/gcp-clusters", ""},
		{"no consent", inline(cred("no-consent", ""), target("")), false, nil, v1.ReasonCredentialNotAllowed, "kubectl annotate serviceaccount no-consent", ""},
		{"consent to STS only, with impersonation", inline(cred("sts-only", ""), target("app@p.iam.gserviceaccount.com")), false, nil, v1.ReasonCredentialNotAllowed, "iamcredentials.googleapis.com", ""},
		{"consent to STS only, federated only", inline(cred("sts-only", ""), target("")), false, nil, "", "/" + defaultAud, ""},
		{"service account credentials switched off", inline(cred("workload", ""), target("")), true, nil, v1.ReasonServiceAccountCredentialsDisabled, "--enable-service-account-credentials=false", ""},
		{"a ServiceAccount reserved for an issuer, inline", inline(cred("reserved", ""), target("")), false, nil, v1.ReasonCredentialNotAllowed, "TokenIssuer/gcp", ""},
		{"the default audience outside the operator's ceiling", inline(cred("workload", ""), target("")), false, []string{"sts.amazonaws.com"}, v1.ReasonCredentialNotAllowed, defaultAud, ""},
		{"through the issuer it is reserved for", ref("gcp"), false, nil, "", "/reserved/", "orders@p.iam.gserviceaccount.com"},
		{"through an issuer, switched off", ref("gcp"), true, nil, v1.ReasonServiceAccountCredentialsDisabled, "--enable-service-account-credentials=false", ""},
		{"a scope the issuer allows", ref("gcp-scoped", "https://www.googleapis.com/auth/devstorage.read_only"), false, nil, "", "/workload/", "orders@p.iam.gserviceaccount.com"},
		{"a scope the issuer does not allow", ref("gcp-scoped", "https://www.googleapis.com/auth/cloud-platform"), false, nil, v1.ReasonScopeNotAllowed, "cloud-platform", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &Resolver{Cached: cached, Direct: objects{}, Metadata: objects{}, Policy: allowAll{}, NoServiceAccountCredentials: tc.noSA,
				Audiences: &ServiceAccountAudiences{Allowed: tc.ceiling}}
			tr := &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tr"}, Spec: tc.spec}
			res, err := r.Resolve(context.Background(), tr)
			if tc.reason != "" {
				var ref *Refusal
				if !errors.As(err, &ref) || ref.Reason != tc.reason || !strings.Contains(ref.Message, tc.contains) {
					t.Fatalf("got %v, want %s with %q", err, tc.reason, tc.contains)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			g, a := res.Request.Google, res.Request.Credential.(*credential.Assertion)
			if g == nil || g.Audience != googleProvider || g.ServiceAccountEmail != tc.email || res.Request.ClientID != "" || !strings.HasSuffix(a.ID, tc.contains) && !strings.Contains(a.ID, tc.contains) {
				t.Fatalf("request %+v, credential %q", g, a.ID)
			}
			if res.InputHash() == "" || res.Version == "" {
				t.Fatal("no input hash or version")
			}
		})
	}
}
