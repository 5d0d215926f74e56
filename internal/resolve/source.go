package resolve

import (
	"errors"
	"fmt"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

// Source is where a TokenRequest's token comes from: its own spec, or a
// TokenIssuer or ClusterTokenIssuer it names.
type Source struct {
	spec                v1.IssuerSpec
	credential          *v1.Credential
	credentialNamespace string
	// issuer identifies the issuer object (kind/namespace/name/uid); empty inline.
	issuer string
	// ref names the issuer as a reserved-for annotation does
	// ("TokenIssuer/<name>", "ClusterTokenIssuer/<name>"); empty inline.
	ref string
	// label names the issuer in messages, for example ClusterTokenIssuer "corp".
	label string
	// requester names the TokenRequest the token is for; empty for an issuer on its own.
	requester string
	// scopesLater: the issuer is checked on its own, without a TokenRequest's scopes.
	scopesLater bool
	// requesterKey is the TokenRequest's "namespace/name"; empty for an
	// issuer checked on its own.
	requesterKey string
}

// wrap puts an issuer's credential or configuration problem in terms the
// TokenRequest's owner can act on: the issuer is not ready.
func (from Source) wrap(err error) error {
	var ce *Refusal
	if from.issuer == "" || !errors.As(err, &ce) || ce.direct {
		return err
	}
	return &Refusal{Reason: v1.ReasonIssuerNotReady, Message: fmt.Sprintf("%s is not ready: %s: %s", from.label, ce.Reason, ce.Message)}
}

// Via names the issuer for an event, empty for a TokenRequest's own spec.
func (from Source) Via() string {
	if from.label == "" {
		return ""
	}
	return ", from " + from.label
}

// credentialSource names the object that holds a credential.
type credentialSource struct {
	kind, name string // kind is "Secret" or "ServiceAccount"
}

func credentialSourceOf(c *v1.Credential) credentialSource {
	switch {
	case c == nil:
	case c.ClientSecret != nil:
		return credentialSource{"Secret", c.ClientSecret.Name}
	case c.Certificate != nil:
		return credentialSource{"Secret", c.Certificate.SecretName}
	case c.ServiceAccount != nil:
		return credentialSource{"ServiceAccount", c.ServiceAccount.Name}
	}
	return credentialSource{}
}

// CredentialKey names the object that holds a credential, "Secret/<name>"
// or "ServiceAccount/<name>"; "" for none.
func CredentialKey(c *v1.Credential) string {
	s := credentialSourceOf(c)
	if s.kind == "" {
		return ""
	}
	return s.kind + "/" + s.name
}

// SubjectKey names the ServiceAccount whose token a token exchange sends,
// "ServiceAccount/<name>"; "" for none. Its consent changes are watched
// like a credential's.
func SubjectKey(x *v1.TokenExchange) string {
	if x == nil || x.SubjectToken.ServiceAccount == nil {
		return ""
	}
	return "ServiceAccount/" + x.SubjectToken.ServiceAccount.Name
}

// ActorKey is SubjectKey for a token exchange's actor ServiceAccount.
func ActorKey(x *v1.TokenExchange) string {
	if x == nil || x.ActorToken == nil || x.ActorToken.ServiceAccount == nil {
		return ""
	}
	return "ServiceAccount/" + x.ActorToken.ServiceAccount.Name
}
