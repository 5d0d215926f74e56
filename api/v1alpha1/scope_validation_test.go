package v1alpha1_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

const scopeRule = "RFC 6749 scope-token: printable ASCII without space, double quote or backslash"

// smuggled are scopes outside RFC 6749's scope-token grammar, each of which
// some token service splits into two scopes or reads differently.
var smuggled = map[string]string{
	"space":                 "orders.read admin",
	"tab":                   "orders.read\tadmin",
	"newline":               "orders.read\nadmin",
	"vertical tab":          "orders.read\vadmin",
	"NUL":                   "orders.read\x00admin",
	"DEL":                   "orders.read\x7fadmin",
	"double quote":          `orders.read"admin`,
	"backslash":             `orders.read\admin`,
	"no-break space U+00A0": "orders.read\u00a0admin",
	"next line U+0085":      "orders.read\u0085admin",
	"ideographic space":     "orders.read\u3000admin",
	"non-ASCII letter":      "orders.réad",
}

func TestScopesOutsideTheGrammarAreRefusedAtAdmission(t *testing.T) {
	for name, bad := range smuggled {
		t.Run("TokenRequest with "+name, func(t *testing.T) {
			tr := validRequest("scope")
			tr.Spec.Authority, tr.Spec.TokenURL = "", "https://idp.example.com/token"
			tr.Spec.Scopes = []string{"orders.read", bad}
			err := k8s.Create(context.Background(), tr, client.DryRunAll)
			if err == nil || !strings.Contains(err.Error(), "each scope must be an "+scopeRule) {
				t.Fatalf("Create = %v; want a refusal naming the scope-token rule", err)
			}
		})
		t.Run("issuers with "+name, func(t *testing.T) {
			spec := validIssuerSpec()
			spec.AllowedScopes = []string{"orders.*", bad}
			for _, o := range []client.Object{
				&v1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "team", Namespace: "default"}, Spec: v1.TokenIssuerSpec{IssuerSpec: spec}},
				&v1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "corp"}, Spec: v1.ClusterTokenIssuerSpec{IssuerSpec: spec}},
			} {
				err := k8s.Create(context.Background(), o, client.DryRunAll)
				if err == nil || !strings.Contains(err.Error(), "each allowedScopes pattern must be an "+scopeRule) {
					t.Fatalf("%T: Create = %v; want a refusal naming the scope-token rule", o, err)
				}
			}
		})
	}
}

func TestScopeTokensAreAcceptedAtAdmission(t *testing.T) {
	entra := []string{
		"https://management.azure.com//.default",
		"api://11111111-2222-3333-4444-555555555555/.default",
		"https://graph.microsoft.com/.default",
	}
	for i, s := range entra {
		tr := validRequest(fmt.Sprintf("entra-scope-%d", i))
		tr.Spec.Scopes = []string{s}
		if err := k8s.Create(context.Background(), tr, client.DryRunAll); err != nil {
			t.Errorf("Entra scope %q refused: %v", s, err)
		}
	}
	tr := validRequest("generic-scopes")
	tr.Spec.Authority, tr.Spec.TokenURL = "", "https://idp.example.com/token"
	tr.Spec.Scopes = []string{"User.Read", "orders.read", "read:org", "a!#$%&'()*+,-./:;<=>?@[]^_`{|}~"}
	if err := k8s.Create(context.Background(), tr, client.DryRunAll); err != nil {
		t.Errorf("generic scopes refused: %v", err)
	}
	spec := validIssuerSpec()
	spec.AllowedScopes = append([]string{"orders.*", "*.read", "api://orders/*"}, entra...)
	for _, o := range []client.Object{
		&v1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "team", Namespace: "default"}, Spec: v1.TokenIssuerSpec{IssuerSpec: spec}},
		&v1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "corp"}, Spec: v1.ClusterTokenIssuerSpec{IssuerSpec: spec}},
	} {
		if err := k8s.Create(context.Background(), o, client.DryRunAll); err != nil {
			t.Errorf("%T with patterns %q refused: %v", o, spec.AllowedScopes, err)
		}
	}
}
