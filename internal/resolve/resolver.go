package resolve

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// Resolution is what a TokenRequest's token comes from.
type Resolution struct {
	// Request is the token request to make.
	Request tokensource.Request
	// Version identifies the credential's source and version, never its material.
	Version string
	// Identity is Version without the version of an issuer's credential, so
	// that rotating it reaches its TokenRequests at their next refresh.
	Identity string
	// Source is the spec or the issuer the token comes from; set as far as
	// it was found, also with a refusal.
	Source Source
	// ClientID is the client the token is for (the issuer's with issuerRef).
	ClientID string
}

// Resolve finds tr's issuer, checks that tr may use it and its credential,
// and builds the token request. A refusal is a *Refusal; any other error
// is the API server's, to retry.
func (r *Resolver) Resolve(ctx context.Context, tr *v1.TokenRequest) (Resolution, error) {
	from, err := r.resolve(ctx, tr)
	from.requester = tr.Name
	res := Resolution{Source: from}
	if err != nil {
		return res, err
	}
	from.requesterKey = tr.Namespace + "/" + tr.Name
	res.ClientID = from.spec.ClientID
	res.Request, res.Version, res.Identity, err = r.buildRequest(ctx, from, tr.Spec.Scopes)
	return res, err
}

// CheckIssuer checks a TokenIssuer's or ClusterTokenIssuer's configuration
// and credential on their own, without a TokenRequest's scopes and
// without asking for a token.
func (r *Resolver) CheckIssuer(ctx context.Context, issuer client.Object) error {
	var from Source
	switch i := issuer.(type) {
	case *v1.ClusterTokenIssuer:
		if sel := i.Spec.AllowedNamespaces; sel != nil && sel.Selector != nil {
			if _, err := metav1.LabelSelectorAsSelector(sel.Selector); err != nil {
				return &Refusal{Reason: v1.ReasonInvalidSpec, Message: "allowedNamespaces.selector: " + err.Error()}
			}
		}
		from = Source{spec: i.Spec.IssuerSpec, credential: &i.Spec.Credential, credentialNamespace: r.ClusterResourceNamespace,
			ref: v1.KindClusterTokenIssuer + "/" + i.Name}
	case *v1.TokenIssuer:
		from = Source{spec: i.Spec.IssuerSpec, credential: &i.Spec.Credential, credentialNamespace: i.Namespace,
			ref: v1.KindTokenIssuer + "/" + i.Name}
	default:
		return fmt.Errorf("%T is no issuer", issuer)
	}
	from.scopesLater = true
	_, _, _, err := r.buildRequest(ctx, from, nil)
	return err
}

// InputHash identifies what produces the token: the request's grant,
// endpoints, client, scopes and parameters, and the credential's source and
// version (Identity). It is published on the Secret and in status, so it is
// built from names and versions only, never from credential material.
func (res Resolution) InputHash() string {
	return res.Request.InputHash(res.Identity)
}
