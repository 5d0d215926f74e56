package operator

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authnclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authzclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// The secure metrics endpoint does what kube-rbac-proxy does: a TokenReview
// authenticates the bearer token and a SubjectAccessReview authorizes the
// request path. It replaces controller-runtime's filters package, which links
// k8s.io/apiserver (gRPC, OpenTelemetry, cel-go) for the same two calls.

const (
	// metricsAuthTTL is how long an allowed decision is reused, so a scraper
	// costs two API calls a minute rather than two per scrape.
	metricsAuthTTL = time.Minute
	// metricsAuthMaxEntries bounds the cache against floods of tokens.
	metricsAuthMaxEntries = 256
	// metricsAuthTimeout bounds the review calls of one request.
	metricsAuthTimeout = 10 * time.Second
)

// metricsAuth is a metricsserver.FilterProvider that admits only requests
// whose bearer token may "get" (the lower-case method) the request path.
func metricsAuth(cfg *rest.Config, httpClient *http.Client) (metricsserver.Filter, error) {
	authn, err := authnclient.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	authz, err := authzclient.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	a := &metricsAuthorizer{
		tokens: authn.TokenReviews(),
		sars:   authz.SubjectAccessReviews(),
		cache:  newAllowCache(clock.RealClock{}, metricsAuthTTL, metricsAuthMaxEntries),
	}
	return a.filter, nil
}

// metricsAuthorizer holds the review clients and the cache of allowed requests.
type metricsAuthorizer struct {
	tokens authnclient.TokenReviewInterface
	sars   authzclient.SubjectAccessReviewInterface
	cache  *allowCache
}

// filter wraps handler; it is the metricsserver.Filter.
func (a *metricsAuthorizer) filter(log logr.Logger, handler http.Handler) (http.Handler, error) {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := a.check(r, log)
		if code == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", "Bearer") // RFC 7235 asks for the scheme with a 401
		}
		if code != http.StatusOK {
			http.Error(w, http.StatusText(code), code)
			return
		}
		handler.ServeHTTP(w, r)
	}), nil
}

// check returns 200 when the request may proceed, else the status to answer.
func (a *metricsAuthorizer) check(r *http.Request, log logr.Logger) int {
	token, ok := bearerToken(r)
	if !ok {
		return http.StatusUnauthorized
	}
	verb, path := strings.ToLower(r.Method), r.URL.Path
	key := allowKey(token, verb, path)
	if a.cache.allowed(key) {
		return http.StatusOK
	}
	ctx, cancel := context.WithTimeout(r.Context(), metricsAuthTimeout)
	defer cancel()
	user, code := a.authenticate(ctx, token, log)
	if code != http.StatusOK {
		return code
	}
	if code = a.authorize(ctx, user, verb, path, log); code == http.StatusOK {
		a.cache.allow(key)
	}
	return code
}

// bearerToken reads "Authorization: Bearer <token>"; the scheme is
// case-insensitive (RFC 7235).
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// authenticate asks the API server who the token belongs to. Errors are
// logged without the token.
func (a *metricsAuthorizer) authenticate(ctx context.Context, token string, log logr.Logger) (authnv1.UserInfo, int) {
	review := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}
	res, err := a.tokens.Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		log.Error(err, "Metrics TokenReview failed")
		return authnv1.UserInfo{}, http.StatusInternalServerError
	}
	if !res.Status.Authenticated {
		log.V(4).Info("Metrics request not authenticated", "reason", res.Status.Error)
		return authnv1.UserInfo{}, http.StatusUnauthorized
	}
	return res.Status.User, http.StatusOK
}

// authorize asks the API server whether user may use verb on the
// non-resource URL path.
func (a *metricsAuthorizer) authorize(ctx context.Context, user authnv1.UserInfo, verb, path string, log logr.Logger) int {
	sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User:                  user.Username,
		UID:                   user.UID,
		Groups:                user.Groups,
		Extra:                 extraOf(user.Extra),
		NonResourceAttributes: &authzv1.NonResourceAttributes{Path: path, Verb: verb},
	}}
	res, err := a.sars.Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		log.Error(err, "Metrics SubjectAccessReview failed", "user", user.Username)
		return http.StatusInternalServerError
	}
	if !res.Status.Allowed || res.Status.Denied {
		log.V(4).Info("Metrics request forbidden", "user", user.Username, "verb", verb, "path", path, "reason", res.Status.Reason)
		return http.StatusForbidden
	}
	return http.StatusOK
}

// extraOf converts the TokenReview's extra to the SubjectAccessReview's type.
func extraOf(in map[string]authnv1.ExtraValue) map[string]authzv1.ExtraValue {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]authzv1.ExtraValue, len(in))
	for k, v := range in {
		out[k] = authzv1.ExtraValue(v)
	}
	return out
}

// allowKey hashes the token with the request so the cache holds no tokens.
// NUL separators keep distinct (token, verb, path) triples apart.
func allowKey(token, verb, path string) [sha256.Size]byte {
	return sha256.Sum256([]byte(token + "\x00" + verb + "\x00" + path))
}

// allowCache remembers allowed decisions until they expire. It is bounded:
// when full it drops expired entries and, if still full, everything, so
// random tokens cannot grow it. Denials are never cached, so they cannot
// push out allowed entries for long and a new binding takes effect at once.
type allowCache struct {
	clock clock.PassiveClock
	ttl   time.Duration
	max   int

	mu      sync.Mutex
	expires map[[sha256.Size]byte]time.Time
}

func newAllowCache(c clock.PassiveClock, ttl time.Duration, max int) *allowCache {
	return &allowCache{clock: c, ttl: ttl, max: max, expires: make(map[[sha256.Size]byte]time.Time)}
}

// allowed reports whether key was allowed within the last ttl.
func (c *allowCache) allowed(key [sha256.Size]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.expires[key]
	if ok && !c.clock.Now().Before(exp) {
		delete(c.expires, key)
		return false
	}
	return ok
}

// allow records key as allowed for ttl.
func (c *allowCache) allow(key [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	if _, ok := c.expires[key]; !ok && len(c.expires) >= c.max {
		c.evict(now)
	}
	c.expires[key] = now.Add(c.ttl)
}

// evict drops expired entries and, if the cache is still full, all of them.
// The caller holds mu.
func (c *allowCache) evict(now time.Time) {
	for k, exp := range c.expires {
		if !now.Before(exp) {
			delete(c.expires, k)
		}
	}
	if len(c.expires) >= c.max {
		clear(c.expires)
	}
}
