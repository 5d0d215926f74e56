package resolve

import (
	"errors"
	"strings"
	"testing"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// A host refused during a token exchange (a discovered token endpoint)
// names the consent that is missing, with that object's own host list.
func TestExchangeRefusedHostNamesWhoMustConsent(t *testing.T) {
	from := Source{credential: secretCred("client"), credentialNamespace: ns, spec: v1.IssuerSpec{
		TokenExchange: &v1.TokenExchange{SubjectToken: v1.ExchangeSubject{ServiceAccount: &v1.ServiceAccountCredential{Name: "workload", Audience: "sts"}}}}}
	req := tokensource.Request{IssuerURL: "https://idp.example.com", AllowedHosts: []string{"idp.example.com"}, Exchange: &tokensource.Exchange{
		ClientAllowed: []string{"idp.example.com", "tokens.example.com"}, SubjectAllowed: []string{"idp.example.com", "sts.example.com"}}}
	for host, want := range map[string]string{
		"tokens.example.com": `ServiceAccount "workload" does not allow sending its credential to "tokens.example.com"; ` +
			`if you trust "tokens.example.com" with this credential: kubectl annotate serviceaccount workload -n team-a --overwrite ` +
			v1.AnnotationAllowedIssuers + "=idp.example.com,sts.example.com,tokens.example.com",
		"sts.example.com": `Secret "client" does not allow sending its credential to "sts.example.com"; ` +
			`if you trust "sts.example.com" with this credential: kubectl annotate secret client -n team-a --overwrite ` +
			v1.AnnotationAllowedIssuers + "=idp.example.com,tokens.example.com,sts.example.com",
	} {
		err := from.Explain(&tokensource.HostNotAllowedError{Host: host}, req)
		var refusal *Refusal
		if !errors.As(err, &refusal) || refusal.Reason != v1.ReasonCredentialNotAllowed || refusal.Message != want {
			t.Errorf("%s:\n got %v\nwant %s", host, err, want)
		}
	}
	if err := from.Explain(&tokensource.HostNotAllowedError{Host: "evil.example", ByOperator: true}, req); !strings.Contains(err.Error(), "--allowed-issuer-hosts") {
		t.Errorf("the operator's ceiling: %v", err)
	}
}
