package resolve

import (
	"context"
	"encoding/json"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/token-operator/token-operator/internal/credential"
)

// maxParsedCredentials bounds the parsed-credential cache; past it the
// cache starts over (a namespace cannot grow it without bound).
const maxParsedCredentials = 20000

// parsedCredentials keeps each credential Secret parsed at its current
// version, so that a reconcile reads a credential from the API server, and
// parses it, only when the metadata cache shows a new version. Parse
// failures are kept too: a costly broken bundle is parsed once per version.
type parsedCredentials struct {
	mu      sync.Mutex
	entries map[parsedKey]parsedCredential
}

type parsedKey struct {
	namespace, name string
	how             string // the credential reference: which keys, which options
}

type parsedCredential struct {
	holder   *metav1.PartialObjectMetadata
	reserved reservation
	cred     credential.Credential
	allowed  []string
	err      error
}

func (p *parsedCredentials) get(k parsedKey, uid types.UID, resourceVersion string) (parsedCredential, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.entries[k]
	if !ok || e.holder.UID != uid || e.holder.ResourceVersion != resourceVersion {
		return parsedCredential{}, false
	}
	return e, true
}

func (p *parsedCredentials) put(k parsedKey, e parsedCredential) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.entries == nil || len(p.entries) >= maxParsedCredentials {
		p.entries = map[parsedKey]parsedCredential{}
	}
	p.entries[k] = e
}

func (p *parsedCredentials) drop(k parsedKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.entries, k)
}

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
