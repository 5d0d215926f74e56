package tokenrequest

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/secretdata"
	"github.com/token-operator/token-operator/internal/tokensource"

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

func TestTheOwnSecretCacheKeepsDataOnlyForWantedSecretsOfOurSize(t *testing.T) {
	const limit = 4096
	wanted := func(namespace, name string) bool { return namespace == "team-a" && name == "out" }
	transform := OwnSecretTransform(wanted, limit)
	labelled := func(name string, dataBytes int) *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name: name, Namespace: "team-a", UID: types.UID("uid-" + name), ResourceVersion: "7",
				Labels: map[string]string{v1.LabelManagedBy: v1.ManagedByValue, v1.LabelTokenRequest: "out", "app": "x"},
				Annotations: map[string]string{
					v1.AnnotationTokenRequestName: "out", v1.AnnotationAllowAdoption: "true", "note": "hello",
					annotationCachedWithoutData: "", // forged: only the cache sets it
				},
				OwnerReferences: []metav1.OwnerReference{{Name: "out", UID: "tr-uid"}},
			},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{v1.KeyAccessToken: make([]byte, dataBytes)},
		}
	}
	cases := []struct {
		name, secret string
		dataBytes    int
		why          string
	}{
		{"a wanted Secret of our size is kept whole", "out", 1024, ""},
		{"a wanted Secret larger than we write keeps no data", "out", limit, withoutDataTooLarge},
		{"a labelled Secret no TokenRequest wants keeps no data", "borrowed", 1024, withoutDataUnclaimed},
		{"a large labelled Secret no TokenRequest wants keeps no data", "borrowed", 900 << 10, withoutDataTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := transform(labelled(c.secret, c.dataBytes))
			if err != nil {
				t.Fatal(err)
			}
			s := got.(*corev1.Secret)
			if why := cachedWithoutData(s); why != c.why {
				t.Fatalf("kept without data because %q; want %q", why, c.why)
			}
			if c.why == "" {
				if len(s.Data[v1.KeyAccessToken]) != c.dataBytes || s.Annotations["note"] != "hello" {
					t.Errorf("the wanted Secret lost data or annotations: %d bytes, %v", len(s.Data[v1.KeyAccessToken]), s.Annotations)
				}
				if _, forged := s.Annotations[annotationCachedWithoutData]; forged {
					t.Error("a marker written by someone else was kept")
				}
				return
			}
			if len(s.Data) != 0 || len(s.OwnerReferences) != 0 || s.Labels["app"] != "" || s.Annotations["note"] != "" {
				t.Errorf("kept more than identity and ownership: %+v", s)
			}
			if s.Name != c.secret || s.UID == "" || s.ResourceVersion != "7" || s.Type != corev1.SecretTypeOpaque ||
				s.Labels[v1.LabelManagedBy] != v1.ManagedByValue || s.Labels[v1.LabelTokenRequest] != "out" ||
				s.Annotations[v1.AnnotationTokenRequestName] != "out" || s.Annotations[v1.AnnotationAllowAdoption] != "true" {
				t.Errorf("lost what tells whose it is: %+v", s.ObjectMeta)
			}
			if secretBytes(s) > 1024 {
				t.Errorf("kept %d bytes", secretBytes(s))
			}
		})
	}
}

func TestLabelsAndAnnotationsCountTowardsAnOwnSecretsSize(t *testing.T) {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "out", Namespace: "team-a",
		Annotations: map[string]string{"padding": string(make([]byte, 5000))}}}
	got, err := OwnSecretTransform(func(string, string) bool { return true }, 4096)(s)
	if err != nil {
		t.Fatal(err)
	}
	if why := cachedWithoutData(got.(*corev1.Secret)); why != withoutDataTooLarge {
		t.Errorf("a Secret with 5,000 bytes of annotations was kept whole under a 4,096-byte limit (%q)", why)
	}
}

func TestTheOwnSecretLimitHoldsWhatTheOperatorWrites(t *testing.T) {
	// A token at the cap, every template key at its limits, and all
	// template annotations: what a render may produce at most.
	if got, least := MaxOwnSecretBytes(0), tokensource.DefaultMaxTokenBytes+secretdata.MaxRenderedBytes+secretdata.MaxAnnotationBytes; got <= least {
		t.Errorf("MaxOwnSecretBytes = %d, not above the %d bytes a render may write", got, least)
	}
}

func TestTheOwnSecretTransformGivesTheSameAnswerTwice(t *testing.T) {
	// Informers may pass an object through the transform again.
	transform := OwnSecretTransform(func(string, string) bool { return true }, 4096)
	big := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "out", Namespace: "team-a", Labels: map[string]string{v1.LabelManagedBy: v1.ManagedByValue}},
		Data:       map[string][]byte{v1.KeyAccessToken: make([]byte, 5000)},
	}
	once, _ := transform(big)
	twice, _ := transform(once)
	if why := cachedWithoutData(twice.(*corev1.Secret)); why != withoutDataTooLarge {
		t.Errorf("a second pass turned a too-large Secret into %q", why)
	}
	// A marker someone wrote on a Secret with data is not taken for ours.
	forged := big.DeepCopy()
	forged.Data = map[string][]byte{v1.KeyAccessToken: []byte("small")}
	forged.Annotations = map[string]string{annotationCachedWithoutData: withoutDataUnclaimed}
	got, _ := transform(forged)
	if s := got.(*corev1.Secret); cachedWithoutData(s) != "" || string(s.Data[v1.KeyAccessToken]) != "small" {
		t.Errorf("a forged marker decided what the cache kept: %q, %d data keys", cachedWithoutData(s), len(s.Data))
	}
}
