package resolve

import (
	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// withGoogleAudience gives a google target's serviceAccount credential the
// audience Google's STS accepts from an OIDC provider that lists none: the
// provider's resource name with https: in front
// (https://iam.googleapis.com/projects/.../providers/...). An audience the
// credential names stays. The ServiceAccount's consent, reservation and
// the audience ceiling apply as to any serviceAccount credential.
func withGoogleAudience(from Source) Source {
	g, c := from.spec.Google, from.credential
	if g == nil || c == nil || c.ServiceAccount == nil || c.ServiceAccount.Audience != "" {
		return from
	}
	sa := *c.ServiceAccount
	sa.Audience = "https:" + g.Audience
	from.credential = &v1.Credential{ServiceAccount: &sa}
	return from
}

// googleFederation is the engine's form of a google target; nil for none.
func googleFederation(g *v1.GoogleTarget) *tokensource.GoogleFederation {
	if g == nil {
		return nil
	}
	f := &tokensource.GoogleFederation{Audience: g.Audience, STSURL: g.STSURL, IAMCredentialsURL: g.IAMCredentialsURL,
		ServiceAccountEmail: g.ServiceAccountEmail}
	if g.TokenLifetimeSeconds != nil {
		f.LifetimeSeconds = *g.TokenLifetimeSeconds
	}
	return f
}
