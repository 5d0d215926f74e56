package tokenrequest

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/controller/index"
	"github.com/token-operator/token-operator/internal/secretdata"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// The cache of the operator's own Secrets selects them by a label any
// tenant can put on any Secret, and every label, annotation and owner
// reference can be forged. So it keeps a Secret whole only when some
// TokenRequest wants a Secret of that name and the Secret is no larger than
// what the operator itself writes; anything else is kept as the little
// metadata the reconciler needs to tell it is not ours.

// annotationCachedWithoutData marks, in the cache only, a Secret kept
// without its data; the value says why. It is never written to the API.
const annotationCachedWithoutData = "tokens.token-operator.io/cached-without-data"

const (
	withoutDataUnclaimed = "unclaimed" // no TokenRequest wants that name
	withoutDataTooLarge  = "too-large" // larger than the operator writes
)

// ownSecretMetadataAllowance is what labels and annotations added by others
// (GitOps tools, reloaders) may take beside the operator's own.
const ownSecretMetadataAllowance = 64 << 10

// MaxOwnSecretBytes is the most an output Secret holds (data, labels and
// annotations, keys included) when the operator wrote it with tokens of at
// most maxTokenBytes: the token (AWS credentials in their three forms), the template's output and annotations, and
// an allowance for others' metadata.
func MaxOwnSecretBytes(maxTokenBytes int64) int {
	if maxTokenBytes <= 0 {
		maxTokenBytes = tokensource.DefaultMaxTokenBytes
	}
	return secretdata.MaxTokenDataBytes(maxTokenBytes) + secretdata.MaxRenderedBytes + secretdata.MaxAnnotationBytes + ownSecretMetadataAllowance
}

// OwnSecretTransform is the transform of the cache of the operator's own
// Secrets. claimed reports whether a TokenRequest wants the Secret
// namespace/name as its output.
func OwnSecretTransform(claimed func(namespace, name string) bool, maxBytes int) toolscache.TransformFunc {
	return func(obj any) (any, error) {
		s, ok := obj.(*corev1.Secret)
		if !ok {
			return StripForCache(obj)
		}
		if _, err := StripForCache(s); err != nil {
			return nil, err
		}
		if alreadyWithoutData(s) {
			return s, nil // informers may transform an object twice
		}
		delete(s.Annotations, annotationCachedWithoutData) // only the cache sets it
		switch {
		case secretBytes(s) > maxBytes:
			return withoutData(s, withoutDataTooLarge), nil
		case !claimed(s.Namespace, s.Name):
			return withoutData(s, withoutDataUnclaimed), nil
		}
		return s, nil
	}
}

// OutputClaims answers OwnSecretTransform's question from the cache of
// TokenRequests, which waits until it has listed them once: at start no
// Secret of ours is taken for someone else's.
func OutputClaims(trs client.Reader) func(namespace, name string) bool {
	return func(namespace, name string) bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var list v1.TokenRequestList
		err := trs.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{index.OutputSecret: name}, client.UnsafeDisableDeepCopy)
		return err == nil && len(list.Items) > 0 // unsure: keep it without data; the reconciler reads it directly
	}
}

// secretBytes is what a Secret's data, labels and annotations hold.
func secretBytes(s *corev1.Secret) int {
	n := 0
	for k, v := range s.Data {
		n += len(k) + len(v)
	}
	for k, v := range s.StringData {
		n += len(k) + len(v)
	}
	for _, m := range []map[string]string{s.Labels, s.Annotations} {
		for k, v := range m {
			n += len(k) + len(v)
		}
	}
	return n
}

// withoutData keeps of s what tells whose it is and whether it may be
// adopted, each bounded, and says why the rest is gone.
func withoutData(s *corev1.Secret, why string) *corev1.Secret {
	kept := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Name: s.Name, Namespace: s.Namespace, UID: s.UID, ResourceVersion: s.ResourceVersion,
		DeletionTimestamp: s.DeletionTimestamp,
		Labels:            map[string]string{},
		Annotations:       map[string]string{annotationCachedWithoutData: why},
	}}
	kept.SetGroupVersionKind(s.GroupVersionKind())
	if len(s.Type) <= 253 {
		kept.Type = s.Type
	}
	for _, k := range []string{v1.LabelManagedBy, v1.LabelTokenRequest} {
		if v, ok := s.Labels[k]; ok {
			kept.Labels[k] = v // label values are at most 63 bytes
		}
	}
	if v := s.Annotations[v1.AnnotationTokenRequestName]; v != "" && len(v) <= 253 {
		kept.Annotations[v1.AnnotationTokenRequestName] = v
	}
	if s.Annotations[v1.AnnotationAllowAdoption] == "true" {
		kept.Annotations[v1.AnnotationAllowAdoption] = "true"
	}
	return kept
}

// alreadyWithoutData: s is what withoutData returns. Someone else's
// Secret may carry the marker too, but only with no data and a few bytes,
// which is all the cache would keep of it anyway.
func alreadyWithoutData(s *corev1.Secret) bool {
	return cachedWithoutData(s) != "" && len(s.Data) == 0 && len(s.StringData) == 0 && secretBytes(s) <= maxWithoutDataBytes
}

// maxWithoutDataBytes bounds what withoutData keeps: two labels of at most
// 63-byte values, two annotations of at most 253 bytes, and the marker.
const maxWithoutDataBytes = 1024

// cachedWithoutData says why the cache holds s without its data; empty when
// it holds it whole.
func cachedWithoutData(s *corev1.Secret) string {
	return s.Annotations[annotationCachedWithoutData]
}

// ManagedSecretSelector limits the manager's Secret cache to the Secrets the
// operator writes.
func ManagedSecretSelector() map[string]string {
	return map[string]string{v1.LabelManagedBy: v1.ManagedByValue}
}

// UnmanagedSecretSelector is every other Secret: the metadata cache's
// share, so that no Secret is cached twice.
func UnmanagedSecretSelector() labels.Selector {
	req, err := labels.NewRequirement(v1.LabelManagedBy, selection.NotEquals, []string{v1.ManagedByValue})
	if err != nil {
		panic(err) // a constant key and value
	}
	return labels.NewSelector().Add(*req)
}

// StripForCache drops what a metadata cache never needs and must not hold:
// managed fields, and the last-applied annotation, which carries a Secret's
// whole data when it was created with kubectl apply.
func StripForCache(obj any) (any, error) {
	if o, ok := obj.(client.Object); ok {
		o.SetManagedFields(nil)
		if a := o.GetAnnotations(); a != nil {
			if _, has := a[corev1.LastAppliedConfigAnnotation]; has {
				delete(a, corev1.LastAppliedConfigAnnotation)
				o.SetAnnotations(a)
			}
		}
		return o, nil
	}
	return obj, nil
}

// KeepSecretIdentity is the metadata cache's transform for Secrets. The
// operator asks it only whether a Secret exists and at which version (it
// reads a credential's data and annotations directly), so everything else,
// labels and annotations of any size included, is dropped.
func KeepSecretIdentity(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return StripForCache(obj)
	}
	m.ObjectMeta = metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion}
	return m, nil
}

func metadataOf(kind string) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(kind))
	return m
}

func managedBy(s *corev1.Secret, tr *v1.TokenRequest) bool {
	if s.Labels[v1.LabelManagedBy] != v1.ManagedByValue || s.Labels[v1.LabelTokenRequest] != secretdata.TokenRequestLabel(tr.Name) {
		return false
	}
	full, ok := s.Annotations[v1.AnnotationTokenRequestName]
	return !ok || full == tr.Name // Secrets written before the annotation carry the name in the label alone
}

// mayWrite: the operator writes only Secrets it made for this TokenRequest,
// or ones whose owner opted in to adoption and no other TokenRequest holds.
func mayWrite(s *corev1.Secret, tr *v1.TokenRequest) bool {
	if managedBy(s, tr) {
		return true
	}
	heldByOther := s.Labels[v1.LabelManagedBy] == v1.ManagedByValue && s.Labels[v1.LabelTokenRequest] != ""
	return !heldByOther && s.Annotations[v1.AnnotationAllowAdoption] == "true"
}
