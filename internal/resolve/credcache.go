package resolve

import (
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

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
