package index

import (
	"context"
	"slices"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/resolve"
)

// Field indexes on TokenRequests.
const (
	// Credential holds "Secret/<name>" or "ServiceAccount/<name>", and the
	// token exchange's subject ServiceAccount.
	Credential = "spec.credential.source"
	// OutputSecret holds the output Secret's name.
	OutputSecret = "spec.secretName.effective"
	// Issuer holds "TokenIssuer/<name>" or "ClusterTokenIssuer/<name>".
	Issuer = "spec.issuerRef.effective"
	// IssuerCredential, on issuers, is Credential's twin.
	IssuerCredential = "spec.credential.source"
	// SubjectTokenRequest holds the name of the TokenRequest whose token a
	// token exchange sends (tokenRequestRef).
	SubjectTokenRequest = "spec.tokenExchange.subjectToken.tokenRequestRef"
)

// Register adds the indexes to a manager's cache, once for both reconcilers.
func Register(ctx context.Context, idx client.FieldIndexer) error {
	for obj, indexes := range map[client.Object]map[string]client.IndexerFunc{
		&v1.TokenRequest{}:       {Credential: credential, OutputSecret: outputSecret, Issuer: issuer, SubjectTokenRequest: subjectTokenRequest},
		&v1.TokenIssuer{}:        {IssuerCredential: issuerCredential},
		&v1.ClusterTokenIssuer{}: {IssuerCredential: issuerCredential},
	} {
		for name, fn := range indexes {
			if err := idx.IndexField(ctx, obj, name, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// OutputSecretName is the Secret a TokenRequest writes: spec.secretName, else its own name.
func OutputSecretName(tr *v1.TokenRequest) string {
	if tr.Spec.SecretName != "" {
		return tr.Spec.SecretName
	}
	return tr.Name
}

func credential(o client.Object) []string {
	s := o.(*v1.TokenRequest).Spec
	return keys(resolve.CredentialKey(s.Credential), resolve.SubjectKey(s.TokenExchange), resolve.ActorKey(s.TokenExchange))
}

func issuer(o client.Object) []string {
	ref := o.(*v1.TokenRequest).Spec.IssuerRef
	if ref == nil {
		return nil
	}
	return []string{resolve.IssuerKind(ref) + "/" + ref.Name}
}

func issuerCredential(o client.Object) []string {
	var spec *v1.IssuerSpec
	switch i := o.(type) {
	case *v1.TokenIssuer:
		spec = &i.Spec.IssuerSpec
	case *v1.ClusterTokenIssuer:
		spec = &i.Spec.IssuerSpec
	default:
		return nil
	}
	return keys(resolve.CredentialKey(&spec.Credential), resolve.SubjectKey(spec.TokenExchange), resolve.ActorKey(spec.TokenExchange))
}

func subjectTokenRequest(o client.Object) []string {
	x := o.(*v1.TokenRequest).Spec.TokenExchange
	if x == nil || x.SubjectToken.TokenRequestRef == nil {
		return nil
	}
	return []string{x.SubjectToken.TokenRequestRef.Name}
}

func outputSecret(o client.Object) []string {
	return []string{OutputSecretName(o.(*v1.TokenRequest))}
}

func keys(ks ...string) []string {
	var out []string
	for _, k := range ks {
		if k != "" && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// TokenRequests lists the TokenRequests in namespace whose index holds value.
func TokenRequests(ctx context.Context, c client.Reader, namespace, index, value string) []reconcile.Request {
	var trs v1.TokenRequestList
	if err := c.List(ctx, &trs, client.InNamespace(namespace), client.MatchingFields{index: value}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing TokenRequests", "index", index)
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(trs.Items))
	for _, tr := range trs.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&tr)})
	}
	return reqs
}

// IssuersUsing lists the issuers of kind whose credential is source
// ("Secret/<name>") in namespace: TokenIssuers of that namespace,
// ClusterTokenIssuers when it is the cluster resource namespace.
func IssuersUsing(ctx context.Context, c client.Reader, clusterResourceNamespace, kind, namespace, source string) []client.Object {
	var objs []client.Object
	switch {
	case kind == v1.KindTokenIssuer:
		var list v1.TokenIssuerList
		if err := c.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{IssuerCredential: source}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing TokenIssuers")
			return nil
		}
		for i := range list.Items {
			objs = append(objs, &list.Items[i])
		}
	case namespace == clusterResourceNamespace:
		var list v1.ClusterTokenIssuerList
		if err := c.List(ctx, &list, client.MatchingFields{IssuerCredential: source}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing ClusterTokenIssuers")
			return nil
		}
		for i := range list.Items {
			objs = append(objs, &list.Items[i])
		}
	}
	return objs
}
