package v1alpha1_test

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

func validIssuerSpec() v1.IssuerSpec {
	return v1.IssuerSpec{
		Authority:     "https://login.microsoftonline.com/contoso.onmicrosoft.com",
		ClientID:      "00001111-aaaa-2222-bbbb-3333cccc4444",
		Credential:    v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: "corp-app"}},
		AllowedScopes: []string{"api://orders/*"},
	}
}

func exchange() *v1.TokenExchange {
	return &v1.TokenExchange{Audience: "orders", Resource: []string{"https://orders.example.com/"},
		SubjectTokenType: "urn:ietf:params:oauth:token-type:jwt",
		SubjectToken:     v1.ExchangeSubject{ServiceAccount: &v1.ServiceAccountCredential{Name: "workload", Audience: "sts"}}}
}

func awsTarget() *v1.AWSTarget {
	return &v1.AWSTarget{RoleARN: "arn:aws:iam::123456789012:role/team/orders-reader", RoleSessionName: "orders", DurationSeconds: int32p(900), Region: "eu-west-1"}
}

func googleTarget() *v1.GoogleTarget {
	return &v1.GoogleTarget{Audience: "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/clusters/providers/prod-k8s",
		ServiceAccountEmail: "orders@proj.iam.gserviceaccount.com", TokenLifetimeSeconds: int32p(600)}
}

// cloud makes s an AWS or Google issuer with a ServiceAccount credential.
func cloud(s *v1.IssuerSpec, aws *v1.AWSTarget, google *v1.GoogleTarget) {
	s.Authority, s.ClientID, s.AllowedScopes = "", "", nil
	s.Credential = v1.Credential{ServiceAccount: &v1.ServiceAccountCredential{Name: "workload"}}
	s.AWS, s.Google = aws, google
}

func TestIssuersAreValidatedAtAdmission(t *testing.T) {
	cases := []struct {
		name    string
		mutate  func(*v1.IssuerSpec, *v1.ClusterTokenIssuerSpec)
		message string // empty: accepted
	}{
		{"a valid issuer", func(*v1.IssuerSpec, *v1.ClusterTokenIssuerSpec) {}, ""},
		{"allowed namespaces by name and selector", func(_ *v1.IssuerSpec, c *v1.ClusterTokenIssuerSpec) {
			c.AllowedNamespaces = &v1.AllowedNamespaces{Names: []string{"orders"}, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "x"}}}
		}, ""},
		{"no token issuer", func(s *v1.IssuerSpec, _ *v1.ClusterTokenIssuerSpec) { s.Authority = "" }, "exactly one token issuer"},
		{"two token issuers", func(s *v1.IssuerSpec, _ *v1.ClusterTokenIssuerSpec) { s.TokenURL = "https://idp.example.com/token" }, "exactly one token issuer"},
		{"no credential", func(s *v1.IssuerSpec, _ *v1.ClusterTokenIssuerSpec) { s.Credential = v1.Credential{} }, "set exactly one credential"},
		{"a region with a generic issuer", func(s *v1.IssuerSpec, _ *v1.ClusterTokenIssuerSpec) {
			s.Authority, s.TokenURL, s.AzureRegion = "", "https://idp.example.com/token", "westus2"
		}, "azureRegion applies only with authority"},
		{"plain http to a remote host", func(s *v1.IssuerSpec, _ *v1.ClusterTokenIssuerSpec) { s.Authority = "http://login.example.com/t" }, "authority must be an https URL"},
		{"a token exchange", func(s *v1.IssuerSpec, _ *v1.ClusterTokenIssuerSpec) {
			s.Authority, s.TokenURL, s.TokenExchange = "", "https://idp.example.com/token", exchange()
		}, ""},
		{"a token exchange with authority", func(s *v1.IssuerSpec, _ *v1.ClusterTokenIssuerSpec) { s.TokenExchange = exchange() },
			"tokenExchange applies only with issuerURL or tokenURL"},
		{"a token exchange without subject", func(s *v1.IssuerSpec, _ *v1.ClusterTokenIssuerSpec) {
			s.Authority, s.TokenURL, s.TokenExchange = "", "https://idp.example.com/token", &v1.TokenExchange{}
		}, "set exactly one subject token"},
		{"a token exchange of another TokenRequest's token", func(s *v1.IssuerSpec, _ *v1.ClusterTokenIssuerSpec) {
			s.Authority, s.TokenURL, s.TokenExchange = "", "https://idp.example.com/token", exchange()
			s.TokenExchange.SubjectToken = v1.ExchangeSubject{TokenRequestRef: &v1.LocalTokenRequestReference{Name: "login"}}
		}, "an issuer fixes its subject"},
		{"a token exchange without client authentication", func(s *v1.IssuerSpec, _ *v1.ClusterTokenIssuerSpec) {
			s.Authority, s.TokenURL, s.TokenExchange = "", "https://idp.example.com/token", exchange()
			s.TokenExchange.ClientAuthentication = v1.ExchangeClientAuthNone
		}, "tokenExchange.clientAuthentication None applies only on a TokenRequest"},
		{"a token type that is no URI", func(s *v1.IssuerSpec, _ *v1.ClusterTokenIssuerSpec) {
			s.Authority, s.TokenURL, s.TokenExchange = "", "https://idp.example.com/token", exchange()
			s.TokenExchange.RequestedTokenType = "access token"
		}, "requestedTokenType must be a token type URI"},
		{"a token exchange allowing audiences and resources", func(s *v1.IssuerSpec, _ *v1.ClusterTokenIssuerSpec) {
			s.Authority, s.TokenURL, s.TokenExchange = "", "https://idp.example.com/token", exchange()
			s.TokenExchange.AllowedAudiences = []string{"orders", "billing-*"}
			s.TokenExchange.AllowedResources = []string{"https://orders.example.com/*", "https://billing.example.com:8443/v1/*", "urn:example:orders"}
		}, ""},
		{"an allowed resource pattern with * in the host", func(s *v1.IssuerSpec, _ *v1.ClusterTokenIssuerSpec) {
			s.Authority, s.TokenURL, s.TokenExchange = "", "https://idp.example.com/token", exchange()
			s.TokenExchange.AllowedResources = []string{"https://orders.example.com/*", "https://*.example.com/*"}
		}, "allowedResources pattern with * writes out its scheme and host"},
		{"an allowed resource pattern running on from the host", func(s *v1.IssuerSpec, _ *v1.ClusterTokenIssuerSpec) {
			s.Authority, s.TokenURL, s.TokenExchange = "", "https://idp.example.com/token", exchange()
			s.TokenExchange.AllowedResources = []string{"https://orders.example.com*"}
		}, "allowedResources pattern with * writes out its scheme and host"},
		{"an empty allowed audience pattern", func(s *v1.IssuerSpec, _ *v1.ClusterTokenIssuerSpec) {
			s.Authority, s.TokenURL, s.TokenExchange = "", "https://idp.example.com/token", exchange()
			s.TokenExchange.AllowedAudiences = []string{""}
		}, "allowedAudiences[0]"},
		{"a relative resource", func(s *v1.IssuerSpec, _ *v1.ClusterTokenIssuerSpec) {
			s.Authority, s.TokenURL, s.TokenExchange = "", "https://idp.example.com/token", exchange()
			s.TokenExchange.Resource = []string{"orders"}
		}, "each resource must be an absolute URI"},
		{"an AWS role", func(s *v1.IssuerSpec, _ *v1.ClusterTokenIssuerSpec) { cloud(s, awsTarget(), nil) }, ""},
		{"a Google provider with impersonation", func(s *v1.IssuerSpec, _ *v1.ClusterTokenIssuerSpec) { cloud(s, nil, googleTarget()) }, ""},
		{"AWS and an authority", func(s *v1.IssuerSpec, _ *v1.ClusterTokenIssuerSpec) {
			cloud(s, awsTarget(), nil)
			s.Authority = "https://login.microsoftonline.com/t"
		}, "exactly one token issuer"},
		{"AWS with a client secret", func(s *v1.IssuerSpec, _ *v1.ClusterTokenIssuerSpec) {
			cloud(s, awsTarget(), nil)
			s.Credential = v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: "x"}}
		}, "aws and google take a serviceAccount credential"},
		{"Google with a client ID", func(s *v1.IssuerSpec, _ *v1.ClusterTokenIssuerSpec) {
			cloud(s, nil, googleTarget())
			s.ClientID = "app"
		}, "with aws or google, leave out clientID"},
		{"a generic issuer without client ID", func(s *v1.IssuerSpec, _ *v1.ClusterTokenIssuerSpec) { s.ClientID = "" }, "clientID is required unless aws or google"},
		{"a role ARN that is no role", func(s *v1.IssuerSpec, _ *v1.ClusterTokenIssuerSpec) {
			cloud(s, &v1.AWSTarget{RoleARN: "arn:aws:iam::123456789012:user/app"}, nil)
		}, "spec.aws.roleARN"},
		{"a Google audience that is no provider", func(s *v1.IssuerSpec, _ *v1.ClusterTokenIssuerSpec) {
			cloud(s, nil, &v1.GoogleTarget{Audience: "https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k8s"})
		}, "spec.google.audience"},
		{"an empty allowedNamespaces", func(_ *v1.IssuerSpec, c *v1.ClusterTokenIssuerSpec) { c.AllowedNamespaces = &v1.AllowedNamespaces{} }, "set names, selector or both"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := validIssuerSpec()
			cs := v1.ClusterTokenIssuerSpec{}
			tc.mutate(&spec, &cs)
			cs.IssuerSpec = spec
			objs := []client.Object{&v1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "corp"}, Spec: cs}}
			if cs.AllowedNamespaces == nil {
				objs = append(objs, &v1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "team", Namespace: "default"}, Spec: v1.TokenIssuerSpec{IssuerSpec: spec}})
			}
			for _, o := range objs {
				err := k8s.Create(context.Background(), o, client.DryRunAll)
				switch {
				case tc.message == "" && err != nil:
					t.Fatalf("%T refused: %v", o, err)
				case tc.message != "" && err == nil:
					t.Fatalf("%T accepted", o)
				case tc.message != "" && !strings.Contains(err.Error(), tc.message):
					t.Fatalf("%T: error %q does not contain %q", o, err, tc.message)
				}
			}
		})
	}
}
