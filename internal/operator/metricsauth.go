package operator

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
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
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/clock"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// The secure metrics endpoint does what kube-rbac-proxy does: a TokenReview
// authenticates the bearer token and a SubjectAccessReview authorizes the
// request path. It replaces controller-runtime's filters package, which links
// k8s.io/apiserver (gRPC, OpenTelemetry, cel-go) for the same two calls.
//
// The answers are cached as controller-runtime's filters cache them
// (pkg/metrics/filters, v0.25): TokenReview answers, success and failure
// alike, for 1 minute (authenticatorfactory CacheTTL; k8s.io/apiserver's
// token cache.New(auth, false, ttl, ttl) caches no errors), allowed
// SubjectAccessReviews for 5 minutes and denied ones for 30 seconds
// (authorizerfactory AllowCacheTTL, DenyCacheTTL). An allowed request needs
// both answers, so it is reused for the shorter, 1 minute. Beyond that,
// unlike those filters, reviews are bounded in number and rate, since any pod
// that reaches the port can ask for them.

const (
	metricsAllowTTL           = time.Minute
	metricsUnauthenticatedTTL = time.Minute
	metricsDenyTTL            = 30 * time.Second
	// Each kind of answer has its own bound, so that random tokens, which
	// are only ever unauthenticated, cannot push out allowed scrapers.
	metricsAllowMaxEntries           = 256
	metricsUnauthenticatedMaxEntries = 1024
	metricsDenyMaxEntries            = 256
	// metricsMaxReviews bounds the reviews under way at once, and
	// metricsReviewsPerSecond (with a burst of metricsReviewBurst) their
	// rate: past either the endpoint answers 429. A scraper costs one review
	// pair a minute, so this leaves room for many.
	metricsMaxReviews       = 4
	metricsReviewsPerSecond = 5
	metricsReviewBurst      = 10
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
	return newMetricsAuthorizer(authn.TokenReviews(), authz.SubjectAccessReviews(), clock.RealClock{}).filter, nil
}

// metricsAuthorizer holds the review clients, the caches of answers and the
// bounds on reviews.
type metricsAuthorizer struct {
	tokens authnclient.TokenReviewInterface
	sars   authzclient.SubjectAccessReviewInterface
	// keyed by HMAC-SHA256 under salt, so that memory holds no token nor
	// a plain hash to check a guessed token against.
	salt            [32]byte
	allowed         *expiringSet // (token, verb, path) allowed
	unauthenticated *expiringSet // token failed its TokenReview
	denied          *expiringSet // (token, verb, path) denied
	reviews         chan struct{}
	rate            flowcontrol.PassiveRateLimiter
}

func newMetricsAuthorizer(tokens authnclient.TokenReviewInterface, sars authzclient.SubjectAccessReviewInterface, clk clock.PassiveClock) *metricsAuthorizer {
	a := &metricsAuthorizer{
		tokens:          tokens,
		sars:            sars,
		allowed:         newExpiringSet(clk, metricsAllowTTL, metricsAllowMaxEntries),
		unauthenticated: newExpiringSet(clk, metricsUnauthenticatedTTL, metricsUnauthenticatedMaxEntries),
		denied:          newExpiringSet(clk, metricsDenyTTL, metricsDenyMaxEntries),
		reviews:         make(chan struct{}, metricsMaxReviews),
		rate:            flowcontrol.NewTokenBucketPassiveRateLimiterWithClock(metricsReviewsPerSecond, metricsReviewBurst, clk),
	}
	_, _ = rand.Read(a.salt[:]) // crypto/rand.Read never fails
	return a
}

// filter wraps handler; it is the metricsserver.Filter.
func (a *metricsAuthorizer) filter(log logr.Logger, handler http.Handler) (http.Handler, error) {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := a.check(r, log)
		switch code {
		case http.StatusOK:
			handler.ServeHTTP(w, r)
			return
		case http.StatusUnauthorized:
			w.Header().Set("WWW-Authenticate", "Bearer") // RFC 7235 asks for the scheme with a 401
		case http.StatusTooManyRequests:
			w.Header().Set("Retry-After", "1") // a slot or a token of the bucket frees within a second
		}
		http.Error(w, http.StatusText(code), code)
	}), nil
}

// check returns 200 when the request may proceed, else the status to answer.
// Cached answers cost no review; a review needs a free slot and a token of
// the rate limiter, else 429.
func (a *metricsAuthorizer) check(r *http.Request, log logr.Logger) int {
	token, ok := bearerToken(r)
	if !ok {
		return http.StatusUnauthorized
	}
	verb, path := strings.ToLower(r.Method), r.URL.Path
	tokenKey, reqKey := a.key(token), a.key(token, verb, path)
	switch {
	case a.allowed.has(reqKey):
		return http.StatusOK
	case a.unauthenticated.has(tokenKey):
		return http.StatusUnauthorized
	case a.denied.has(reqKey):
		return http.StatusForbidden
	}
	release, ok := a.startReview()
	if !ok {
		log.V(2).Info("Metrics request refused: too many reviews")
		return http.StatusTooManyRequests
	}
	defer release()
	ctx, cancel := context.WithTimeout(r.Context(), metricsAuthTimeout)
	defer cancel()
	user, code := a.authenticate(ctx, token, log)
	if code == http.StatusUnauthorized {
		a.unauthenticated.add(tokenKey)
	}
	if code != http.StatusOK {
		return code
	}
	switch code = a.authorize(ctx, user, verb, path, log); code {
	case http.StatusOK:
		a.allowed.add(reqKey)
	case http.StatusForbidden:
		a.denied.add(reqKey)
	}
	return code
}

// startReview takes a review slot and a token of the rate limiter, or
// neither. The slot is taken first so that a busy endpoint spends no token.
func (a *metricsAuthorizer) startReview() (release func(), ok bool) {
	select {
	case a.reviews <- struct{}{}:
	default:
		return nil, false
	}
	release = func() { <-a.reviews }
	if !a.rate.TryAccept() {
		release()
		return nil, false
	}
	return release, true
}

// key is the HMAC of the NUL-separated parts (NUL keeps distinct triples
// apart), so that the caches hold no tokens.
func (a *metricsAuthorizer) key(parts ...string) [sha256.Size]byte {
	m := hmac.New(sha256.New, a.salt[:])
	m.Write([]byte(strings.Join(parts, "\x00")))
	var k [sha256.Size]byte
	m.Sum(k[:0])
	return k
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

// expiringSet remembers keys for ttl. It is bounded: when full it drops
// expired keys and, if still full, one key at random (map order), so that
// floods of keys cannot grow it. Keys enter only after a review, whose rate
// is bounded, so at the default rate it never fills.
type expiringSet struct {
	clock clock.PassiveClock
	ttl   time.Duration
	max   int

	mu      sync.Mutex
	expires map[[sha256.Size]byte]time.Time
}

func newExpiringSet(c clock.PassiveClock, ttl time.Duration, max int) *expiringSet {
	return &expiringSet{clock: c, ttl: ttl, max: max, expires: make(map[[sha256.Size]byte]time.Time)}
}

// has reports whether key was added within the last ttl.
func (c *expiringSet) has(key [sha256.Size]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.expires[key]
	if ok && !c.clock.Now().Before(exp) {
		delete(c.expires, key)
		return false
	}
	return ok
}

// add records key for ttl.
func (c *expiringSet) add(key [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	if _, ok := c.expires[key]; !ok && len(c.expires) >= c.max {
		c.evict(now)
	}
	c.expires[key] = now.Add(c.ttl)
}

// evict drops expired keys and, if the set is still full, one more. The
// caller holds mu.
func (c *expiringSet) evict(now time.Time) {
	for k, exp := range c.expires {
		if !now.Before(exp) {
			delete(c.expires, k)
		}
	}
	for k := range c.expires {
		if len(c.expires) < c.max {
			break
		}
		delete(c.expires, k)
	}
}
