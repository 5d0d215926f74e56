package resolve

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/credential"
)

const awsRoleARN = "arn:aws:iam::111122223333:role/orders-reader"

// An AWS TokenRequest follows the federation rules of its ServiceAccount:
// the switch, the reservation and the consent to STS's host; through an
// issuer the role is the issuer's and scopes are refused.
func TestResolveAWS(t *testing.T) {
	consent := map[string]string{v1.AnnotationAllowedIssuers: "sts.eu-west-1.amazonaws.com"}
	accounts := objects{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "workload", UID: "uid-workload", Annotations: consent}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "silent", UID: "uid-silent"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "reserved", UID: "uid-reserved", Annotations: map[string]string{
			v1.AnnotationAllowedIssuers: "sts.eu-west-1.amazonaws.com", v1.AnnotationReservedFor: "TokenIssuer/other"}}},
	}
	target := func() *v1.AWSTarget { return &v1.AWSTarget{RoleARN: awsRoleARN, Region: "eu-west-1"} }
	saCred := func(name, audience string) *v1.Credential {
		return &v1.Credential{ServiceAccount: &v1.ServiceAccountCredential{Name: name, Audience: audience}}
	}
	inline := func(name string, edit func(*v1.AWSTarget)) v1.TokenRequestSpec {
		a := target()
		if edit != nil {
			edit(a)
		}
		return v1.TokenRequestSpec{AWS: a, Credential: saCred(name, "")}
	}
	issuer := &v1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "aws"}, Spec: v1.TokenIssuerSpec{IssuerSpec: v1.IssuerSpec{
		AWS: target(), Credential: *saCred("workload", "")}}}
	cached := append(objects{issuer}, accounts...)
	ref := func(scopes ...string) v1.TokenRequestSpec {
		return v1.TokenRequestSpec{IssuerRef: &v1.IssuerReference{Name: "aws"}, Scopes: scopes}
	}
	for _, tc := range []struct {
		name     string
		spec     v1.TokenRequestSpec
		noSA     bool
		reason   string
		contains string
	}{
		{"a ServiceAccount without consent", inline("silent", nil), false, v1.ReasonCredentialNotAllowed, "kubectl annotate serviceaccount silent"},
		{"an endpoint the ServiceAccount does not consent to", inline("workload", func(a *v1.AWSTarget) { a.Endpoint = "https://sts.attacker.example" }),
			false, v1.ReasonCredentialNotAllowed, `"sts.attacker.example"`},
		{"another region than consented", inline("workload", func(a *v1.AWSTarget) { a.Region = "us-east-1" }), false, v1.ReasonCredentialNotAllowed, `"sts.us-east-1.amazonaws.com"`},
		{"service account credentials switched off", inline("workload", nil), true, v1.ReasonServiceAccountCredentialsDisabled, "--enable-service-account-credentials=false"},
		{"a ServiceAccount reserved for an issuer", inline("reserved", nil), false, v1.ReasonCredentialNotAllowed, "TokenIssuer/other"},
		{"a missing ServiceAccount", inline("absent", nil), false, v1.ReasonCredentialNotFound, `ServiceAccount "absent"`},
		{"scopes through an aws issuer", ref("s3"), false, v1.ReasonInvalidSpec, "takes no scopes"},
		{"inline", inline("workload", nil), false, "", ""},
		{"through an issuer", ref(), false, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Resolver{Cached: cached, Direct: accounts, Metadata: objects{}, Policy: allowAll{}, NoServiceAccountCredentials: tc.noSA}
			tr := &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "orders"}, Spec: tc.spec}
			res, err := r.Resolve(context.Background(), tr)
			if tc.reason != "" {
				var refusal *Refusal
				if !errors.As(err, &refusal) || refusal.Reason != tc.reason || !strings.Contains(refusal.Message, tc.contains) {
					t.Fatalf("Resolve = %v, want a %s refusal naming %s", err, tc.reason, tc.contains)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a := res.Request.AWS
			if a == nil || a.RoleARN != awsRoleARN || a.Region != "eu-west-1" || a.SessionName != "team-a.orders" || a.URL() != "https://sts.eu-west-1.amazonaws.com" {
				t.Fatalf("request %+v", a)
			}
			cred, ok := res.Request.Credential.(*credential.Assertion)
			if !ok || !strings.HasSuffix(cred.ID, "/"+defaultAWSAudience) {
				t.Fatalf("the web identity token is not a ServiceAccount token for %s: %+v", defaultAWSAudience, res.Request.Credential)
			}
			if res.Request.ClientID != "" || len(res.Request.Scopes) != 0 {
				t.Errorf("client %q, scopes %v", res.Request.ClientID, res.Request.Scopes)
			}
		})
	}

	// An audience of the spec's own is kept; an issuer is checked on its own.
	r := &Resolver{Cached: cached, Direct: accounts, Metadata: objects{}, Policy: allowAll{}}
	spec := inline("workload", func(a *v1.AWSTarget) { a.RoleSessionName = "fixed" })
	spec.Credential = saCred("workload", "https://oidc.example/aud")
	res, err := r.Resolve(context.Background(), &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "orders"}, Spec: spec})
	if err != nil || !strings.HasSuffix(res.Request.Credential.(*credential.Assertion).ID, "/https://oidc.example/aud") || res.Request.AWS.SessionName != "fixed" {
		t.Errorf("Resolve = %+v, %v", res.Request, err)
	}
	if err := r.CheckIssuer(context.Background(), issuer); err != nil {
		t.Errorf("a usable aws TokenIssuer: %v", err)
	}
}

func TestSessionNameIsWhatSTSAccepts(t *testing.T) {
	pattern := regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	long := strings.Repeat("n", 63) + "/" + strings.Repeat("a", 253)
	for in, want := range map[string]string{
		"team-a/orders":          "team-a.orders",
		"":                       "token-operator",
		"ns/name.with.dots":      "ns.name.with.dots",
		long:                     "",
		long[:len(long)-1] + "b": "",
	} {
		got := SessionName(in)
		if !pattern.MatchString(got) || want != "" && got != want {
			t.Errorf("SessionName(%q) = %q", in, got)
		}
	}
	if SessionName(long) == SessionName(long[:len(long)-1]+"b") {
		t.Error("two long names share a session name")
	}
}
