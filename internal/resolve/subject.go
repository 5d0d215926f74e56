package resolve

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/secretdata"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// maxSubjectChain bounds how far a chain of tokenRequestRefs is followed
// looking for a cycle.
const maxSubjectChain = 8

// loadSubjectTokenRequest reads a token exchange's subject from another
// TokenRequest of the same namespace: the token in its output Secret. The
// namespace owns both, so no object's consent is asked; the exchange's
// host still passes the operator's ceiling and policy. Its ID carries the
// subject Secret's version (the data hash the operator publishes on it,
// never the token), so a refreshed subject is exchanged again, even one
// with the same expiry.
func (r *Resolver) loadSubjectTokenRequest(ctx context.Context, from Source) (*tokensource.Exchange, error) {
	x := from.spec.TokenExchange
	name, ns := x.SubjectToken.TokenRequestRef.Name, from.credentialNamespace
	if from.ref != "" {
		return nil, &Refusal{Reason: v1.ReasonInvalidSpec, Message: "tokenExchange.subjectToken.tokenRequestRef applies only on a TokenRequest: an issuer fixes its subject"}
	}
	subject, err := r.subjectChain(ctx, ns, from.requester, name)
	if err != nil {
		return nil, err
	}
	token, expires, version, why, err := r.subjectToken(ctx, subject)
	if err != nil {
		return nil, err
	}
	if why != "" {
		return nil, &Refusal{Reason: v1.ReasonSubjectTokenNotReady, Message: fmt.Sprintf(
			"TokenRequest %q (the token exchange's subject) %s; the exchange is made as soon as it has one", name, why)}
	}
	return &tokensource.Exchange{
		RequestedTokenType: x.RequestedTokenType, Audience: x.Audience, Resources: x.Resource,
		Subject: tokensource.SubjectToken{
			ID:      strings.Join([]string{"TokenRequest", ns, name, string(subject.UID), version}, "/"),
			Type:    orDefault(x.SubjectTokenType, tokensource.TokenTypeAccessToken),
			Expires: expires,
			Provide: func(context.Context) (string, time.Time, error) {
				return token, expires, nil
			},
		},
	}, nil
}

// subjectChain finds the subject TokenRequest and refuses a reference to
// the requester itself or a cycle through others; the chain is read from
// the cache and followed at most maxSubjectChain steps.
func (r *Resolver) subjectChain(ctx context.Context, ns, requester, name string) (*v1.TokenRequest, error) {
	var first *v1.TokenRequest
	path := []string{requester}
	for next := name; next != ""; {
		if next == requester || contains(path, next) {
			return nil, &Refusal{Reason: v1.ReasonInvalidSpec, Message: fmt.Sprintf(
				"tokenExchange.subjectToken.tokenRequestRef makes a cycle (%s → %s): a token cannot be exchanged for itself", strings.Join(path, " → "), next)}
		}
		if len(path) > maxSubjectChain {
			return first, nil // long enough; its end is checked by its own TokenRequests
		}
		tr := &v1.TokenRequest{}
		if err := r.Cached.Get(ctx, types.NamespacedName{Namespace: ns, Name: next}, tr); err != nil {
			if !apierrors.IsNotFound(err) {
				return nil, err
			}
			if first == nil {
				return nil, &Refusal{Reason: v1.ReasonSubjectTokenNotReady, Message: fmt.Sprintf(
					"TokenRequest %q (the token exchange's subject) not found in namespace %q; the exchange is made as soon as it has a token", name, ns)}
			}
			return first, nil
		}
		if first == nil {
			first = tr
		}
		path = append(path, next)
		next = ""
		if x := tr.Spec.TokenExchange; x != nil && x.SubjectToken.TokenRequestRef != nil {
			next = x.SubjectToken.TokenRequestRef.Name
		}
	}
	return first, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// subjectToken reads the subject TokenRequest's token from its output
// Secret, as the operator wrote it: why says what is missing. The cache of
// the operator's own Secrets holds none larger than it writes.
func (r *Resolver) subjectToken(ctx context.Context, tr *v1.TokenRequest) (token string, expires time.Time, version, why string, err error) {
	name := tr.Spec.SecretName
	if name == "" {
		name = tr.Name
	}
	s := &corev1.Secret{}
	if err := r.Cached.Get(ctx, types.NamespacedName{Namespace: tr.Namespace, Name: name}, s); apierrors.IsNotFound(err) {
		return "", time.Time{}, "", "has no token yet", nil
	} else if err != nil {
		return "", time.Time{}, "", "", err
	}
	full, ok := s.Annotations[v1.AnnotationTokenRequestName]
	if s.Labels[v1.LabelManagedBy] != v1.ManagedByValue || s.Labels[v1.LabelTokenRequest] != secretdata.TokenRequestLabel(tr.Name) || (ok && full != tr.Name) {
		return "", time.Time{}, "", fmt.Sprintf("has no token: Secret %q is not its output", name), nil
	}
	token = string(s.Data[v1.KeyAccessToken])
	expires, _ = time.Parse(time.RFC3339, string(s.Data[v1.KeyExpiresAt]))
	switch {
	case token == "" || expires.IsZero():
		return "", time.Time{}, "", fmt.Sprintf("has no token in Secret %q", name), nil
	case !secretdata.Read(s).Intact:
		return "", time.Time{}, "", fmt.Sprintf("has no token: Secret %q was changed by someone other than the operator", name), nil
	case !expires.After(r.now()):
		return "", time.Time{}, "", "has only an expired token", nil
	}
	return token, expires, s.Annotations[secretdata.AnnotationDataHash], "", nil
}
