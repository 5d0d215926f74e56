package controller

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestTheMetadataCacheKeepsOnlyASecretsIdentityAndVersion(t *testing.T) {
	m := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Name: "cred", Namespace: "team-a", UID: "uid-1", ResourceVersion: "42",
		Labels:          map[string]string{"app": "x"},
		Annotations:     map[string]string{"big": string(make([]byte, 4096)), corev1.LastAppliedConfigAnnotation: `{"data":{"clientSecret":"c2VjcmV0"}}`},
		OwnerReferences: []metav1.OwnerReference{{Name: "owner"}},
		Finalizers:      []string{"example.com/keep"},
		ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
	}}
	got, err := KeepSecretIdentity(m)
	if err != nil {
		t.Fatal(err)
	}
	want := metav1.ObjectMeta{Name: "cred", Namespace: "team-a", UID: "uid-1", ResourceVersion: "42"}
	if meta := got.(*metav1.PartialObjectMetadata).ObjectMeta; meta.String() != want.String() {
		t.Errorf("kept %v; want %v", meta, want)
	}
}

func TestTheCachesDropManagedFieldsAndTheLastAppliedSecret(t *testing.T) {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Name: "out", Namespace: "team-a",
		Annotations:   map[string]string{corev1.LastAppliedConfigAnnotation: `{"data":{"access-token":"dG9rZW4="}}`, "keep": "me"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "token-operator"}},
	}}
	got, err := StripForCache(s)
	if err != nil {
		t.Fatal(err)
	}
	out := got.(*corev1.Secret)
	if len(out.ManagedFields) != 0 {
		t.Errorf("managed fields kept: %v", out.ManagedFields)
	}
	if _, ok := out.Annotations[corev1.LastAppliedConfigAnnotation]; ok || out.Annotations["keep"] != "me" {
		t.Errorf("annotations after stripping: %v", out.Annotations)
	}
	// Anything else goes through StripForCache too.
	if got, err := KeepSecretIdentity(s); err != nil || len(got.(*corev1.Secret).ManagedFields) != 0 {
		t.Errorf("KeepSecretIdentity on a full Secret: %v, %v", got, err)
	}
}
