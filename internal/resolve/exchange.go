package resolve

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// loadExchange reads an RFC 8693 token exchange's subject: a token the
// operator mints for a ServiceAccount, under the same rules as a
// serviceAccount credential (the switch that disables them, reservation,
// audience, consent), or another TokenRequest's. The second result is the
// ServiceAccount's consent.
func (r *Resolver) loadExchange(ctx context.Context, from Source) (*tokensource.Exchange, []string, error) {
	x := from.spec.TokenExchange
	if x.SubjectToken.TokenRequestRef != nil {
		ex, err := r.loadSubjectTokenRequest(ctx, from)
		return ex, nil, err
	}
	if x.SubjectToken.ServiceAccount == nil {
		return nil, nil, &Refusal{Reason: v1.ReasonInvalidSpec, Message: "spec.tokenExchange.subjectToken names no subject token"}
	}
	subject, allowed, err := r.mintedToken(ctx, from, x.SubjectToken.ServiceAccount, "subject", x.SubjectTokenType)
	if err != nil {
		return nil, nil, err
	}
	return &tokensource.Exchange{RequestedTokenType: x.RequestedTokenType, Audience: x.Audience, Resources: x.Resource, Subject: subject}, allowed, nil
}

// mintedToken is a token exchange's subject or actor ServiceAccount token
// source, and the ServiceAccount's consent.
func (r *Resolver) mintedToken(ctx context.Context, from Source, ref *v1.ServiceAccountCredential, role, tokenType string) (tokensource.SubjectToken, []string, error) {
	ns := from.credentialNamespace
	field := "spec.tokenExchange.subjectToken"
	if role == "actor" {
		field = "spec.tokenExchange.actorToken"
	}
	if ref.Audience == "" {
		return tokensource.SubjectToken{}, nil, &Refusal{Reason: v1.ReasonInvalidSpec, Message: field + ".serviceAccount.audience is required: the audience the token service accepts in " + role + " tokens"}
	}
	if r.NoServiceAccountCredentials {
		return tokensource.SubjectToken{}, nil, serviceAccountsDisabled(ref.Name, ns)
	}
	if err := r.checkServiceAccountReservation(ctx, from, ref.Name); err != nil {
		return tokensource.SubjectToken{}, nil, err
	}
	sa, err := r.serviceAccountMeta(ctx, ns, ref.Name)
	if apierrors.IsNotFound(err) {
		return tokensource.SubjectToken{}, nil, &Refusal{Reason: v1.ReasonCredentialNotFound, Message: fmt.Sprintf("ServiceAccount %q (the token exchange's %s) not found in namespace %q", ref.Name, role, ns)}
	}
	if apierrors.IsForbidden(err) {
		return tokensource.SubjectToken{}, nil, Forbidden(fmt.Sprintf("reading ServiceAccount %q (serviceaccounts get)", ref.Name), ns)
	}
	if err != nil {
		return tokensource.SubjectToken{}, nil, err
	}
	if why := r.Audiences.refusal(ctx, ref.Audience); why != "" {
		return tokensource.SubjectToken{}, nil, audienceError(ref, why)
	}
	return tokensource.SubjectToken{
		ID:      strings.Join([]string{"ServiceAccount", ns, ref.Name, string(sa.UID), ref.Audience}, "/"),
		Type:    orDefault(tokenType, tokensource.TokenTypeJWT),
		Provide: r.minter(sa, ref.Name, ref.Audience),
	}, allowedHosts(sa.Annotations), nil
}

// loadActor adds the optional actor token (RFC 8693 actor_token): a
// ServiceAccount's, which must consent to the host as the subject must.
func (r *Resolver) loadActor(ctx context.Context, from Source, ex *tokensource.Exchange) error {
	x := from.spec.TokenExchange
	if x.ActorToken == nil || x.ActorToken.ServiceAccount == nil {
		return nil
	}
	actor, allowed, err := r.mintedToken(ctx, from, x.ActorToken.ServiceAccount, "actor", x.ActorTokenType)
	if err != nil {
		return err
	}
	ex.Actor, ex.ActorAllowed = &actor, allowed
	return nil
}

// subjectSource is from with the subject's ServiceAccount in place of the
// credential, so that a refused host names the object that must consent.
func subjectSource(from Source) Source {
	from.credential = &v1.Credential{ServiceAccount: from.spec.TokenExchange.SubjectToken.ServiceAccount}
	return from
}

// exchangeConsentError names, for a host refused during a token exchange
// (a discovered endpoint, a redirect), the consent that is missing: the
// subject's first, since its token is what the exchange sends.
func exchangeConsentError(from Source, req tokensource.Request, err error) error {
	var refused *tokensource.HostNotAllowedError
	x := req.Exchange
	if errors.As(err, &refused) && !refused.ByOperator {
		if !tokensource.HostsAllow(x.SubjectAllowed, configuredScheme(req), refused.Host) {
			return consentError(subjectSource(from), x.SubjectAllowed, err)
		}
		if !tokensource.HostsAllow(x.ActorAllowed, configuredScheme(req), refused.Host) {
			return consentError(actorSource(from), x.ActorAllowed, err)
		}
	}
	return consentError(from, x.ClientAllowed, err)
}

// configuredScheme is the scheme of the endpoint a request starts at; the
// engine sends nothing over another.
func configuredScheme(req tokensource.Request) string {
	u, err := url.Parse(req.IssuerURL + req.TokenURL)
	if err != nil || u.Scheme == "" {
		return "https"
	}
	return u.Scheme
}

// withExchange adds a token exchange's subject and actor to req. Each
// ServiceAccount must consent to the token endpoint's host as the
// credential must; a subject that is the namespace's own token
// (tokenRequestRef) has no consent of its own: nil.
func (r *Resolver) withExchange(ctx context.Context, from Source, req tokensource.Request) (tokensource.Request, error) {
	ex, subjectAllowed, err := r.loadExchange(ctx, from)
	if err != nil {
		return req, err
	}
	if err := r.loadActor(ctx, from, ex); err != nil {
		return req, err
	}
	for _, c := range []struct {
		who     Source
		allowed []string
	}{{subjectSource(from), subjectAllowed}, {actorSource(from), ex.ActorAllowed}} {
		if c.allowed == nil {
			continue
		}
		sub := req
		sub.Exchange, sub.AllowedHosts = ex, c.allowed
		if err := sub.CheckConfiguredHost(); err != nil {
			return req, specError(consentError(c.who, c.allowed, err))
		}
	}
	ex.NoClientAuth = noClientAuth(from)
	ex.ClientAllowed, ex.SubjectAllowed = req.AllowedHosts, subjectAllowed
	req.Exchange, req.AllowedHosts = ex, bothAllow(bothAllow(req.AllowedHosts, subjectAllowed), ex.ActorAllowed)
	return req, nil
}

// noClientAuth: a TokenRequest's own token exchange without client
// authentication; an issuer always authenticates with its credential.
func noClientAuth(from Source) bool {
	x := from.spec.TokenExchange
	return x != nil && x.ClientAuthentication == v1.ExchangeClientAuthNone && from.ref == ""
}

// actorSource is subjectSource for the actor's ServiceAccount.
func actorSource(from Source) Source {
	if a := from.spec.TokenExchange.ActorToken; a != nil {
		from.credential = &v1.Credential{ServiceAccount: a.ServiceAccount}
	}
	return from
}

// bothAllow keeps the hosts both the credential and the subject consent
// to; nil (no consent needed) leaves the other as it is.
func bothAllow(a, b []string) []string {
	if a == nil || b == nil {
		return append(a, b...)
	}
	both := []string{}
	for _, h := range a {
		for _, o := range b {
			if h == o {
				both = append(both, h)
				break
			}
		}
	}
	return both
}
