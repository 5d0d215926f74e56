package resolve

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

// apiServerAudiences are the audiences API servers accept under their usual
// names, refused whatever discovery finds: kubeadm, kind and k3s use
// https://kubernetes.default.svc.cluster.local as issuer and API audience,
// EKS and others https://kubernetes.default.svc.
var apiServerAudiences = []string{
	"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
	"https://kubernetes", "https://kubernetes.default", "https://kubernetes.default.svc", "https://kubernetes.default.svc.cluster.local",
}

// audienceRetry is how long a failed discovery of the API server's own
// audiences is trusted before it is tried again.
const audienceRetry = time.Minute

// ServiceAccountAudiences decides which audiences the operator mints
// service-account tokens for. A token for an audience the API server
// accepts is a Kubernetes credential of the ServiceAccount: sent to a token
// service, it would let that service act as the ServiceAccount in the
// cluster.
type ServiceAccountAudiences struct {
	// Allowed is the operator-wide ceiling (--allowed-service-account-audiences):
	// exact audiences, or prefixes ending in "*". Empty: no ceiling.
	Allowed []string
	// Discover returns the audiences the API server accepts (its
	// service-account issuer, its API audiences); nil discovers nothing.
	Discover func(context.Context) ([]string, error)
	Clock    clock.PassiveClock

	mu         sync.Mutex
	discovered []string
	ok         bool
	tried      time.Time
}

// refusal returns why audience may not be minted, "" if it may.
func (p *ServiceAccountAudiences) refusal(ctx context.Context, audience string) string {
	if p == nil {
		return audienceRefusal(audience, nil, nil)
	}
	return audienceRefusal(audience, p.apiServer(ctx), p.Allowed)
}

// apiServer discovers the API server's audiences once; after a failure it
// tries again at most every audienceRetry, and meanwhile refuses what it
// found (the manager token's audiences) besides the fixed forms.
func (p *ServiceAccountAudiences) apiServer(ctx context.Context) []string {
	if p.Discover == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.ok || (!p.tried.IsZero() && now.Sub(p.tried) < audienceRetry) {
		return p.discovered
	}
	p.tried = now
	auds, err := p.Discover(ctx)
	if len(auds) > 0 {
		p.discovered = auds
	}
	p.ok = err == nil
	if err != nil {
		log.FromContext(ctx).Info("the API server's service account audiences are not known; refusing only the usual forms", "error", err.Error())
	}
	return p.discovered
}

// APIServerAudiences discovers the audiences the API server accepts: the
// issuer of its OIDC discovery document (served to every service account
// by the system:service-account-issuer-discovery binding), and the
// audiences of the manager's own token when it is a service-account JWT,
// which are the API server's --api-audiences. An error says the document
// could not be read; the audiences found are returned still.
func APIServerAudiences(cfg *rest.Config, httpClient *http.Client) (func(context.Context) ([]string, error), error) {
	dc, err := discovery.NewDiscoveryClientForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) ([]string, error) {
		auds := ownTokenAudiences(cfg)
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		raw, err := dc.RESTClient().Get().AbsPath("/.well-known/openid-configuration").DoRaw(ctx)
		if err != nil {
			return auds, fmt.Errorf("reading the API server's OIDC discovery document: %w", err)
		}
		var doc struct {
			Issuer string `json:"issuer"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil || doc.Issuer == "" {
			return auds, fmt.Errorf("the API server's OIDC discovery document names no issuer")
		}
		return append(auds, doc.Issuer), nil
	}, nil
}

// ownTokenAudiences reads the aud claim of the manager's bearer token
// without verifying it: it came from the API server, and it only adds
// refusals.
func ownTokenAudiences(cfg *rest.Config) []string {
	token := cfg.BearerToken
	if cfg.BearerTokenFile != "" {
		if b, err := os.ReadFile(cfg.BearerTokenFile); err == nil {
			token = strings.TrimSpace(string(b))
		}
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var claims struct {
		Aud json.RawMessage `json:"aud"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return nil
	}
	var one string
	if json.Unmarshal(claims.Aud, &one) == nil && one != "" {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(claims.Aud, &many)
	return many
}

func (p *ServiceAccountAudiences) now() time.Time {
	if p.Clock == nil {
		return time.Now()
	}
	return p.Clock.Now()
}

// audienceRefusal is the decision: an empty audience (the API server would
// fill in its own), one of the API server's (discovered or usual), or one
// outside the ceiling is refused. The API server compares audiences as
// exact strings; case and a trailing "/" are ignored here so that near
// forms are refused too.
func audienceRefusal(audience string, apiServer, allowed []string) string {
	if strings.TrimSpace(audience) == "" {
		return "an empty service account token audience means the API server's own audiences; nothing was minted"
	}
	norm := normalizeAudience(audience)
	for _, a := range append(apiServer, apiServerAudiences...) {
		if a != "" && normalizeAudience(a) == norm {
			return fmt.Sprintf("audience %s is one the Kubernetes API server accepts: a token for it would let the token service act as the ServiceAccount in this cluster; nothing was minted", quoteAudience(audience))
		}
	}
	if len(allowed) > 0 && !audienceAllowed(allowed, audience) {
		return fmt.Sprintf("audience %s is not in the operator's --allowed-service-account-audiences; ask the cluster administrator", quoteAudience(audience))
	}
	return ""
}

// quoteAudience quotes an audience for a message, cut after 128 runes so
// that a status message stays short (the field allows 1,024 bytes).
func quoteAudience(a string) string {
	const limit = 128
	if utf8.RuneCountInString(a) <= limit {
		return strconv.Quote(a)
	}
	runes := 0
	for i := range a {
		if runes == limit {
			a = a[:i]
			break
		}
		runes++
	}
	return strconv.Quote(a) + "…"
}

func normalizeAudience(a string) string {
	return strings.ToLower(strings.TrimRight(strings.TrimSpace(a), "/"))
}

// audienceAllowed matches audience against the ceiling: an entry is the
// exact audience, or a prefix followed by "*".
func audienceAllowed(allowed []string, audience string) bool {
	for _, e := range allowed {
		if prefix, wildcard := strings.CutSuffix(e, "*"); wildcard {
			if strings.HasPrefix(audience, prefix) {
				return true
			}
		} else if e == audience {
			return true
		}
	}
	return false
}

// ValidateAllowedAudiences checks entries for
// --allowed-service-account-audiences: non-empty, no white space, "*" only
// last and after a prefix (a lone "*" would be no ceiling, which is the
// empty list).
func ValidateAllowedAudiences(entries []string) error {
	for _, e := range entries {
		prefix, _ := strings.CutSuffix(e, "*")
		if prefix == "" || strings.ContainsAny(prefix, "* \t\r\n") {
			return fmt.Errorf("allowed audience %q is not an audience or a prefix followed by *", e)
		}
	}
	return nil
}

// audienceError is the refusal as a Refusal: CredentialNotAllowed,
// like a host outside --allowed-issuer-hosts, since the spec is well formed
// but asks for a credential the operator will not make.
func audienceError(ref *v1.ServiceAccountCredential, why string) error {
	return &Refusal{Reason: v1.ReasonCredentialNotAllowed, Message: fmt.Sprintf("ServiceAccount %q: %s", ref.Name, why)}
}
