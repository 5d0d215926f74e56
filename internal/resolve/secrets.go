package resolve

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/credential"
)

// Defaults applied to Secret credentials, never written back into the spec.
const (
	defaultClientSecretKey = "clientSecret"
	defaultCertificateKey  = corev1.TLSCertKey
	defaultPrivateKeyKey   = corev1.TLSPrivateKeyKey
)

// secretCredential returns the credential parse makes of Secret
// namespace/name, from the parsed cache while the Secret's version is
// unchanged, else from a direct read (credential data is never cached by
// an informer). holder carries the Secret's identity and version only.
// The Secret's reservation is checked for from first, on every call, and a
// refused use parses nothing.
func (r *Resolver) secretCredential(ctx context.Context, from Source, name string, ref any, parse func(*corev1.Secret) (credential.Credential, error)) (cred credential.Credential, allowed []string, holder metav1.Object, err error) {
	namespace, src := from.credentialNamespace, credentialSource{"Secret", name}
	how, _ := json.Marshal(ref)
	key := parsedKey{namespace: namespace, name: name, how: string(how)}
	if meta := r.cachedSecretMeta(ctx, namespace, name); meta != nil {
		if e, ok := r.credentials.get(key, meta.UID, meta.ResourceVersion); ok {
			if err := e.reserved.check(from, src); err != nil {
				return nil, nil, nil, err
			}
			return e.cred, e.allowed, e.holder, e.err
		}
	}
	s, err := r.readSecret(ctx, namespace, name)
	if err != nil {
		r.credentials.drop(key)
		return nil, nil, nil, err
	}
	e := parsedCredential{holder: &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Namespace: s.Namespace, Name: s.Name, UID: s.UID, ResourceVersion: s.ResourceVersion,
	}}, reserved: reservationOf(s.Annotations)}
	if err := e.reserved.check(from, src); err != nil {
		return nil, nil, nil, err
	}
	e.cred, e.err = parse(s)
	if e.err == nil {
		e.allowed = allowedHosts(s.Annotations)
	} else {
		e.cred = nil
	}
	r.credentials.put(key, e)
	if e.err != nil {
		return nil, nil, nil, e.err
	}
	return e.cred, e.allowed, e.holder, nil
}

// cachedSecretMeta is the Secret's metadata from the metadata cache, or nil.
func (r *Resolver) cachedSecretMeta(ctx context.Context, namespace, name string) *metav1.PartialObjectMetadata {
	if r.Metadata == nil {
		return nil
	}
	m := metadataOf("Secret")
	if err := r.Metadata.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, m); err != nil {
		return nil
	}
	return m
}

func (r *Resolver) readSecret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	err := r.Direct.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, s)
	if apierrors.IsNotFound(err) {
		return nil, &Refusal{Reason: v1.ReasonCredentialNotFound, Message: fmt.Sprintf("Secret %q not found in namespace %q", name, namespace)}
	}
	if apierrors.IsForbidden(err) {
		return nil, Forbidden(fmt.Sprintf("reading Secret %q (secrets get)", name), namespace)
	}
	return s, err
}

func secretValue(s *corev1.Secret, key string) ([]byte, error) {
	v, ok := s.Data[key]
	if !ok || len(v) == 0 {
		return nil, &Refusal{Reason: v1.ReasonCredentialNotFound, Message: fmt.Sprintf("Secret %q has no data key %q", s.Name, key)}
	}
	return v, nil
}

func (r *Resolver) loadClientSecret(ctx context.Context, from Source, ref *v1.ClientSecretCredential) (credential.Credential, []string, metav1.Object, error) {
	return r.secretCredential(ctx, from, ref.Name, ref, func(s *corev1.Secret) (credential.Credential, error) {
		v, err := secretValue(s, orDefault(ref.Key, defaultClientSecretKey))
		if err != nil {
			return nil, err
		}
		return &credential.ClientSecret{Secret: strings.TrimRight(string(v), "\r\n"), AuthMethod: credential.ClientAuthMethod(ref.AuthMethod)}, nil
	})
}

func (r *Resolver) loadCertificate(ctx context.Context, from Source, ref *v1.CertificateCredential) (credential.Credential, []string, metav1.Object, error) {
	return r.secretCredential(ctx, from, ref.SecretName, ref, func(s *corev1.Secret) (credential.Credential, error) {
		cert, err := parseCertificateSecret(s, ref)
		if err != nil {
			return nil, err
		}
		cert.SendX5C = ref.SendX5C
		cert.Algorithm = ref.SigningAlgorithm
		cert.KeyID = ref.KeyID
		return cert, nil
	})
}

func parseCertificateSecret(s *corev1.Secret, ref *v1.CertificateCredential) (*credential.Certificate, error) {
	var cert *credential.Certificate
	var err error
	if ref.PKCS12Key != "" {
		bundle, verr := secretValue(s, ref.PKCS12Key)
		if verr != nil {
			return nil, verr
		}
		password := ""
		if ref.PasswordKey != "" {
			p, perr := secretValue(s, ref.PasswordKey)
			if perr != nil {
				return nil, perr
			}
			password = strings.TrimRight(string(p), "\r\n")
		}
		cert, err = credential.ParsePKCS12(bundle, password)
	} else {
		certPEM, cerr := secretValue(s, orDefault(ref.CertificateKey, defaultCertificateKey))
		if cerr != nil {
			return nil, cerr
		}
		keyPEM, kerr := secretValue(s, orDefault(ref.PrivateKeyKey, defaultPrivateKeyKey))
		if kerr != nil {
			return nil, kerr
		}
		cert, err = credential.ParseCertificate(certPEM, keyPEM)
	}
	if err != nil {
		return nil, &Refusal{Reason: v1.ReasonInvalidCredential, Message: fmt.Sprintf("Secret %q: %v", s.Name, err)}
	}
	return cert, nil
}

// credentialVersion names the Secret holding a credential, its version and
// how it is read, so that a rotation changes it while nothing in it is
// derived from the credential itself.
func credentialVersion(holder metav1.Object, ref v1.Credential) string {
	how, _ := json.Marshal(ref)
	return strings.Join([]string{"Secret", holder.GetNamespace(), holder.GetName(), string(holder.GetUID()), holder.GetResourceVersion(), string(how)}, "/")
}
