package resolve

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/credential"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// objects is a fake Reader over a few objects; a PartialObjectMetadata is
// answered from the object of its kind.
type objects []client.Object

func (os objects) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	for _, o := range os {
		if o.GetNamespace() != key.Namespace || o.GetName() != key.Name {
			continue
		}
		if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
			if reflect.TypeOf(o).Elem().Name() == m.Kind {
				m.ObjectMeta = *o.(metav1.ObjectMetaAccessor).GetObjectMeta().(*metav1.ObjectMeta)
				return nil
			}
			continue
		}
		if reflect.TypeOf(o) == reflect.TypeOf(obj) {
			reflect.ValueOf(obj).Elem().Set(reflect.ValueOf(o).Elem())
			return nil
		}
	}
	return apierrors.NewNotFound(schema.GroupResource{}, key.Name)
}

// forbidding refuses every read, as an API server whose RBAC grants none.
type forbidding struct{}

func (forbidding) Get(_ context.Context, key client.ObjectKey, _ client.Object, _ ...client.GetOption) error {
	return apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, key.Name, errors.New("no"))
}

type allowAll struct{}

func (allowAll) Validate(tokensource.Request) error { return nil }

const (
	ns       = "team-a"
	tokenURL = "https://sts.example.com/token"
)

func clientSecret(name string, annotations map[string]string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), ResourceVersion: "1", Annotations: annotations},
		Data: map[string][]byte{"clientSecret": []byte("s3cret")}}
}

func secretCred(name string) *v1.Credential {
	return &v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: name}}
}

// Every refusal comes back as a *Refusal with its condition reason, before
// any call to a token service; the last case resolves.
func TestResolveRefusesWithTheReason(t *testing.T) {
	consent := map[string]string{v1.AnnotationAllowedIssuers: "sts.example.com"}
	issuerSpec := v1.IssuerSpec{TokenURL: tokenURL, ClientID: "app", Credential: *secretCred("issuer-cred")}
	scoped := issuerSpec
	scoped.AllowedScopes = []string{"orders.read"}
	cached := objects{
		&v1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "good"}, Spec: v1.TokenIssuerSpec{IssuerSpec: issuerSpec}},
		&v1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "scoped"}, Spec: v1.TokenIssuerSpec{IssuerSpec: scoped}},
		&v1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "broken"}, Spec: v1.TokenIssuerSpec{IssuerSpec: v1.IssuerSpec{
			TokenURL: tokenURL, ClientID: "app", Credential: *secretCred("missing")}}},
		&v1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "corp"}, Spec: v1.ClusterTokenIssuerSpec{IssuerSpec: issuerSpec,
			AllowedNamespaces: &v1.AllowedNamespaces{Names: []string{"team-b"}}}},
	}
	direct := objects{
		clientSecret("issuer-cred", consent),
		clientSecret("consented", consent),
		clientSecret("no-consent", nil),
		clientSecret("reserved", map[string]string{v1.AnnotationAllowedIssuers: "sts.example.com", v1.AnnotationReservedFor: "TokenIssuer/other"}),
	}
	inline := func(cred *v1.Credential, scopes ...string) v1.TokenRequestSpec {
		return v1.TokenRequestSpec{TokenURL: tokenURL, ClientID: "app", Credential: cred, Scopes: scopes}
	}
	ref := func(kind, name string, scopes ...string) v1.TokenRequestSpec {
		return v1.TokenRequestSpec{IssuerRef: &v1.IssuerReference{Kind: kind, Name: name}, Scopes: scopes}
	}
	sa := &v1.Credential{ServiceAccount: &v1.ServiceAccountCredential{Name: "workload"}}
	exchange := func(subject, audience string) v1.TokenRequestSpec {
		s := inline(secretCred("consented"))
		s.TokenExchange = &v1.TokenExchange{Audience: "orders", SubjectToken: v1.ExchangeSubject{ServiceAccount: &v1.ServiceAccountCredential{Name: subject, Audience: audience}}}
		return s
	}
	cached = append(cached,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "subject", UID: "uid-subject", Annotations: consent}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "subject-no-consent", UID: "uid-nc"}})
	cases := []struct {
		name     string
		spec     v1.TokenRequestSpec
		direct   Reader
		noSA     bool
		reason   string
		contains string
	}{
		{"a missing issuer", ref("", "absent"), direct, false, v1.ReasonIssuerNotFound, `TokenIssuer "absent"`},
		{"a namespace the cluster issuer does not allow", ref(v1.KindClusterTokenIssuer, "corp"), direct, false, v1.ReasonIssuerNotAllowed, `namespace "team-a"`},
		{"a scope the issuer does not allow", ref("", "scoped", "orders.write"), direct, false, v1.ReasonScopeNotAllowed, `"orders.write"`},
		{"an issuer whose credential is missing", ref("", "broken"), direct, false, v1.ReasonIssuerNotReady, "CredentialNotFound"},
		{"a missing Secret", inline(secretCred("absent")), direct, false, v1.ReasonCredentialNotFound, `Secret "absent"`},
		{"a Secret without consent", inline(secretCred("no-consent")), direct, false, v1.ReasonCredentialNotAllowed, "kubectl annotate secret no-consent"},
		{"a Secret reserved for another issuer", inline(secretCred("reserved")), direct, false, v1.ReasonCredentialNotAllowed, "TokenIssuer/other"},
		{"a Secret the operator may not read", inline(secretCred("consented")), forbidding{}, false, v1.ReasonPermissionDenied, "secrets get"},
		{"service account credentials switched off", inline(sa), direct, true, v1.ReasonServiceAccountCredentialsDisabled, "--enable-service-account-credentials=false"},
		{"the same through an issuer", ref("", "sa"), direct, true, v1.ReasonServiceAccountCredentialsDisabled, "--enable-service-account-credentials=false"},
		{"a scope outside the grammar", inline(secretCred("consented"), "a\"b"), direct, false, v1.ReasonInvalidSpec, "scope"},
		{"a token exchange whose subject does not consent", exchange("subject-no-consent", "sts"), direct, false, v1.ReasonCredentialNotAllowed, "kubectl annotate serviceaccount subject-no-consent"},
		{"a token exchange's subject without audience", exchange("subject", ""), direct, false, v1.ReasonInvalidSpec, "audience is required"},
		{"a token exchange's subject when service account tokens are off", exchange("subject", "sts"), direct, true, v1.ReasonServiceAccountCredentialsDisabled, "--enable-service-account-credentials=false"},
		{"a token exchange's missing subject", exchange("absent", "sts"), direct, false, v1.ReasonCredentialNotFound, `ServiceAccount "absent"`},
		{"a usable token exchange", exchange("subject", "sts"), direct, false, "", ""},
		{"a usable credential", inline(secretCred("consented"), "orders.read"), direct, false, "", ""},
		{"a usable issuer", ref("", "good", "orders.read"), direct, false, "", ""},
	}
	cached = append(cached, &v1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sa"}, Spec: v1.TokenIssuerSpec{IssuerSpec: v1.IssuerSpec{
		TokenURL: tokenURL, ClientID: "app", Credential: *sa}}})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &Resolver{Cached: cached, Direct: tc.direct, Metadata: objects{}, Policy: allowAll{}, NoServiceAccountCredentials: tc.noSA}
			tr := &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tr"}, Spec: tc.spec}
			res, err := r.Resolve(context.Background(), tr)
			if tc.reason == "" {
				if err != nil || res.Request.ClientID != "app" || res.ClientID != "app" || res.Version == "" || res.Request.Credential == nil {
					t.Fatalf("Resolve = %+v, %v; want a request for client app", res, err)
				}
				if x := res.Request.Exchange; (x != nil) != (tc.spec.TokenExchange != nil) || x != nil && (x.Audience != "orders" || x.Subject.Type != tokensource.TokenTypeJWT || !strings.Contains(x.Subject.ID, "uid-subject")) {
					t.Fatalf("exchange %+v", x)
				}
				return
			}
			var refusal *Refusal
			if !errors.As(err, &refusal) || refusal.Reason != tc.reason || !strings.Contains(refusal.Message, tc.contains) {
				t.Fatalf("Resolve = %v, want a %s refusal naming %s", err, tc.reason, tc.contains)
			}
			if strings.Contains(refusal.Message, "s3cret") {
				t.Fatal("a refusal carries the credential")
			}
		})
	}
}

// An issuer is checked on its own: a bad namespace selector and a missing
// credential are refusals, a usable one is none.
func TestCheckIssuer(t *testing.T) {
	r := &Resolver{Cached: objects{}, Direct: objects{clientSecret("issuer-cred", map[string]string{v1.AnnotationAllowedIssuers: "sts.example.com"})}, Metadata: objects{}, Policy: allowAll{}, ClusterResourceNamespace: ns}
	spec := v1.IssuerSpec{TokenURL: tokenURL, ClientID: "app", Credential: *secretCred("issuer-cred")}
	bad := &v1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "corp"}, Spec: v1.ClusterTokenIssuerSpec{IssuerSpec: spec,
		AllowedNamespaces: &v1.AllowedNamespaces{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"a b": "c"}}}}}
	var refusal *Refusal
	if err := r.CheckIssuer(context.Background(), bad); !errors.As(err, &refusal) || refusal.Reason != v1.ReasonInvalidSpec {
		t.Errorf("a bad selector: %v", err)
	}
	good := &v1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "corp"}, Spec: v1.ClusterTokenIssuerSpec{IssuerSpec: spec}}
	if err := r.CheckIssuer(context.Background(), good); err != nil {
		t.Errorf("a usable ClusterTokenIssuer: %v", err)
	}
	missing := &v1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "x"}, Spec: v1.TokenIssuerSpec{IssuerSpec: spec}}
	if err := r.CheckIssuer(context.Background(), missing); !errors.As(err, &refusal) || refusal.Reason != v1.ReasonCredentialNotFound {
		t.Errorf("a TokenIssuer whose Secret is missing: %v", err)
	}
}

// The input hash follows what produces the token, in any scope order, and
// never the credential's material.
func TestInputHashFollowsTheInputsNotTheCredentialMaterial(t *testing.T) {
	base := Resolution{Identity: "Secret/team-a/cred/uid/1", Request: tokensource.Request{TokenURL: tokenURL, ClientID: "app",
		Scopes: []string{"a", "b"}, Credential: &credential.ClientSecret{Secret: "one"}}}
	same := base
	same.Request.Scopes = []string{"b", "a"}
	same.Request.Credential = &credential.ClientSecret{Secret: "two"}
	if base.InputHash() != same.InputHash() {
		t.Error("the scope order or the credential material changed the hash")
	}
	for name, change := range map[string]func(*Resolution){
		"scopes":    func(r *Resolution) { r.Request.Scopes = []string{"a"} },
		"client":    func(r *Resolution) { r.Request.ClientID = "other" },
		"endpoint":  func(r *Resolution) { r.Request.TokenURL = "https://other.example.com/token" },
		"parameter": func(r *Resolution) { r.Request.ExtraParameters = map[string]string{"resource": "x"} },
		"version":   func(r *Resolution) { r.Identity = "Secret/team-a/cred/uid/2" },
	} {
		other := base
		change(&other)
		if other.InputHash() == base.InputHash() {
			t.Errorf("a change of %s kept the hash", name)
		}
	}
}

// The input hash is published in status and on the Secret: an operator
// upgrade that changed it for the same inputs would re-mint every token.
func TestInputHashIsStableAcrossReleases(t *testing.T) {
	for want, r := range map[string]Resolution{
		"82deaf84a29a6cc1ce5419682b98455b033f216a43a29d0d5d74f31f7714f8fc": {Identity: "Secret/team-a/cred/uid/1", Request: tokensource.Request{
			TokenURL: tokenURL, ClientID: "app", Scopes: []string{"b", "a"}, ExtraParameters: map[string]string{"resource": "x"}}},
		"331731b450f8b18bee629b47c22b7f32e59359192d00ba70a7483d7fe88168e6": {Identity: "TokenIssuer/team-a/corp/uid|team-a/{}", Request: tokensource.Request{
			Authority: "https://login.microsoftonline.com/contoso", AzureRegion: "westeurope", ClientID: "00000000-0000-0000-0000-000000000001", Scopes: []string{"api://x/.default"}}},
	} {
		if got := r.InputHash(); got != want {
			t.Errorf("InputHash(%+v) = %s, want %s", r.Request, got, want)
		}
	}
}
