package resolve

import (
	"context"
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/credential"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// buildRequest reads the credential and returns the token request for scopes,
// or a *Refusal. Consent is checked here, before any cache lookup.
// The second result identifies the credential's source and version, never
// its material; the third, for a TokenRequest using an issuer, the same
// without the credential's version, so that rotating an issuer's
// credential reaches its TokenRequests at their next refresh, not all at once.
func (r *Resolver) buildRequest(ctx context.Context, from Source, scopes []string) (req tokensource.Request, version, identity string, err error) {
	from = withGoogleAudience(from)
	cred, allowed, version, err := r.loadCredential(ctx, from)
	if err != nil {
		return tokensource.Request{}, "", "", from.wrap(err)
	}
	s := from.spec
	req = tokensource.Request{
		Authority: s.Authority, IssuerURL: s.IssuerURL, TokenURL: s.TokenURL, AzureRegion: s.AzureRegion,
		ClientID: s.ClientID, Scopes: scopes, ExtraParameters: s.ExtraParameters,
		Credential: cred, AllowedHosts: allowed, ScopesLater: from.scopesLater,
	}
	if s.AWS != nil {
		if len(scopes) > 0 {
			return req, version, identity, &Refusal{Reason: v1.ReasonInvalidSpec, direct: true, Message: "spec.scopes: an aws issuer takes no scopes: the role's policies decide what the credentials may do"}
		}
		req.AWS = awsRole(from)
	}
	req.Google = googleFederation(s.Google)
	if s.TokenExchange != nil {
		if req, err = r.withExchange(ctx, from, req); err != nil {
			return req, version, identity, from.wrap(err)
		}
	}
	identity = version
	if from.issuer != "" {
		identity = from.issuer + "|" + credentialIdentity(from)
	}
	if err := req.CheckConfiguredHost(); err != nil {
		return req, version, identity, from.wrap(specError(consentError(from, allowed, err)))
	}
	if err := req.Validate(); err != nil {
		return req, version, identity, from.wrap(specError(err))
	}
	if err := r.Policy.Validate(req); err != nil {
		return req, version, identity, from.wrap(specError(consentError(from, allowed, err)))
	}
	return req, version, identity, nil
}

func (r *Resolver) loadCredential(ctx context.Context, from Source) (cred credential.Credential, allowed []string, version string, err error) {
	c, ns := from.credential, from.credentialNamespace
	var holder metav1.Object
	if noClientAuth(from) {
		return nil, nil, "", nil
	}
	switch {
	case c == nil:
		return nil, nil, "", &Refusal{Reason: v1.ReasonInvalidSpec, Message: "spec.credential names no credential"}
	case c.ClientSecret != nil:
		cred, allowed, holder, err = r.loadClientSecret(ctx, from, c.ClientSecret)
	case c.Certificate != nil:
		cred, allowed, holder, err = r.loadCertificate(ctx, from, c.Certificate)
	case c.ServiceAccount != nil:
		if r.NoServiceAccountCredentials {
			return nil, nil, "", serviceAccountsDisabled(c.ServiceAccount.Name, ns)
		}
		if err := r.checkServiceAccountReservation(ctx, from, c.ServiceAccount.Name); err != nil {
			return nil, nil, "", err
		}
		cred, allowed, err = r.loadServiceAccount(ctx, ns, awsAudience(from, c.ServiceAccount))
		if a, ok := cred.(*credential.Assertion); ok {
			version = "ServiceAccount/" + a.ID // a fresh token per call: the account's identity is the version
		}
		return cred, allowed, version, err
	default:
		return nil, nil, "", &Refusal{Reason: v1.ReasonInvalidSpec, Message: "spec.credential names no credential"}
	}
	if holder != nil {
		version = credentialVersion(holder, *c)
	}
	return cred, allowed, version, err
}

// credentialIdentity names where a credential is read from and how, without its version.
func credentialIdentity(from Source) string {
	how, _ := json.Marshal(from.credential)
	return from.credentialNamespace + "/" + string(how)
}
