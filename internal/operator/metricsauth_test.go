package operator

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestMetricsAnswersExpireAfterTheirTTL(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	c := newExpiringSet(clk, time.Minute, 4)
	a := newMetricsAuthorizer(nil, nil, clk)
	key := a.key("token", "get", "/metrics")
	if c.has(key) {
		t.Fatal("an empty set has a key")
	}
	c.add(key)
	clk.SetTime(clk.Now().Add(59 * time.Second))
	if !c.has(key) {
		t.Error("key gone within the TTL")
	}
	clk.SetTime(clk.Now().Add(time.Second))
	if c.has(key) {
		t.Error("key still there after the TTL")
	}
	if a.key("token", "get", "/metrics") == a.key("token", "get", "/metricsx") {
		t.Error("different paths share a key")
	}
	if a.key("token") == newMetricsAuthorizer(nil, nil, clk).key("token") {
		t.Error("two authorizers derive the same key: the salt is not random")
	}
}

func TestAFullExpiringSetDropsExpiredKeysThenOneMore(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	c := newExpiringSet(clk, time.Minute, 4)
	a := newMetricsAuthorizer(nil, nil, clk)
	key := func(i int) [32]byte { return a.key(fmt.Sprint("t", i), "get", "/metrics") }
	c.add(key(0))
	c.add(key(1))
	clk.SetTime(clk.Now().Add(time.Minute))
	c.add(key(2))
	c.add(key(3))
	c.add(key(4)) // full: 0 and 1 have expired and go
	if n := len(c.expires); n != 3 || !c.has(key(2)) || !c.has(key(4)) {
		t.Fatalf("after dropping expired keys: %d keys", n)
	}
	c.add(key(5))
	c.add(key(6)) // full of live keys: one goes
	if n := len(c.expires); n != 4 || !c.has(key(6)) {
		t.Fatalf("after dropping one: %d keys, want 4 with the new one", n)
	}
	for i := range 1000 {
		c.add(key(100 + i))
	}
	if n := len(c.expires); n > 4 {
		t.Errorf("%d keys, bound is 4", n)
	}
}

func TestMetricsRequestsWithoutABearerTokenAreUnauthorized(t *testing.T) {
	a := newMetricsAuthorizer(nil, nil, clocktesting.NewFakePassiveClock(time.Now()))
	h, _ := a.filter(logr.Discard(), http.NotFoundHandler())
	for _, header := range []string{"", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "token abc"} {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("Authorization %q: status %d, want 401", header, w.Code)
		}
	}
}

// reviewer answers TokenReviews and SubjectAccessReviews from maps and
// counts the calls; a TokenReview of "slow" waits for block to close.
type reviewer struct {
	mu      sync.Mutex
	users   map[string]string
	allowed map[string]bool
	calls   atomic.Int32
	block   chan struct{}
}

func (rv *reviewer) authorizer(clk *clocktesting.FakePassiveClock) *metricsAuthorizer {
	cs := fake.NewClientset()
	cs.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		rv.calls.Add(1)
		tr := a.(k8stesting.CreateAction).GetObject().(*authnv1.TokenReview)
		switch tr.Spec.Token {
		case "broken":
			return true, nil, fmt.Errorf("API down")
		case "slow":
			<-rv.block
		}
		rv.mu.Lock()
		defer rv.mu.Unlock()
		user, ok := rv.users[tr.Spec.Token]
		tr.Status = authnv1.TokenReviewStatus{Authenticated: ok, User: authnv1.UserInfo{Username: user}}
		return true, tr, nil
	})
	cs.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		rv.calls.Add(1)
		sar := a.(k8stesting.CreateAction).GetObject().(*authzv1.SubjectAccessReview)
		na := sar.Spec.NonResourceAttributes
		rv.mu.Lock()
		defer rv.mu.Unlock()
		sar.Status.Allowed = rv.allowed[sar.Spec.User+" "+na.Verb+" "+na.Path]
		return true, sar, nil
	})
	return newMetricsAuthorizer(cs.AuthenticationV1().TokenReviews(), cs.AuthorizationV1().SubjectAccessReviews(), clk)
}

// get sends method path with token through h and returns the response.
func get(h http.Handler, method, path, token string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	r.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
}

func TestMetricsAnswersAreCachedForControllerRuntimesTTLs(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	rv := &reviewer{users: map[string]string{"good": "scraper", "other": "stranger"},
		allowed: map[string]bool{"scraper get /metrics": true}}
	h, _ := rv.authorizer(clk).filter(logr.Discard(), okHandler())
	for _, c := range []struct {
		after                     time.Duration // clock advance before the request
		token, method, path, what string
		want, calls               int
	}{
		{0, "good", http.MethodGet, "/metrics", "first scrape", http.StatusOK, 2},
		{59 * time.Second, "good", http.MethodGet, "/metrics", "allowed, cached", http.StatusOK, 0},
		{time.Second, "good", http.MethodGet, "/metrics", "allowed, expired", http.StatusOK, 2},
		{0, "good", http.MethodPost, "/metrics", "verb is the method", http.StatusForbidden, 2},
		{0, "good", http.MethodGet, "/other", "another path", http.StatusForbidden, 2},
		{0, "other", http.MethodGet, "/metrics", "denied", http.StatusForbidden, 2},
		{29 * time.Second, "other", http.MethodGet, "/metrics", "denied, cached", http.StatusForbidden, 0},
		{time.Second, "other", http.MethodGet, "/metrics", "denied, expired", http.StatusForbidden, 2},
		{0, "garbage", http.MethodGet, "/metrics", "unauthenticated", http.StatusUnauthorized, 1},
		{59 * time.Second, "garbage", http.MethodGet, "/other", "unauthenticated, cached for any path", http.StatusUnauthorized, 0},
		{time.Second, "garbage", http.MethodGet, "/metrics", "unauthenticated, expired", http.StatusUnauthorized, 1},
		{0, "broken", http.MethodGet, "/metrics", "review failed", http.StatusInternalServerError, 1},
		{0, "broken", http.MethodGet, "/metrics", "failed reviews are not cached", http.StatusInternalServerError, 1},
	} {
		clk.SetTime(clk.Now().Add(c.after))
		rv.calls.Store(0)
		w := get(h, c.method, c.path, c.token)
		if w.Code != c.want || int(rv.calls.Load()) != c.calls {
			t.Errorf("%s (%s %s with %q): status %d after %d API calls, want %d after %d", c.what, c.method, c.path, c.token, w.Code, rv.calls.Load(), c.want, c.calls)
		}
	}
}

func TestANewBindingTakesEffectWhenTheDenialExpires(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	rv := &reviewer{users: map[string]string{"tok": "late"}, allowed: map[string]bool{}}
	h, _ := rv.authorizer(clk).filter(logr.Discard(), okHandler())
	if w := get(h, http.MethodGet, "/metrics", "tok"); w.Code != http.StatusForbidden {
		t.Fatalf("status %d before the binding", w.Code)
	}
	rv.mu.Lock()
	rv.allowed["late get /metrics"] = true
	rv.mu.Unlock()
	clk.SetTime(clk.Now().Add(metricsDenyTTL))
	if w := get(h, http.MethodGet, "/metrics", "tok"); w.Code != http.StatusOK {
		t.Errorf("status %d %s after the denial expired", w.Code, metricsDenyTTL)
	}
}

func TestRandomTokensNeitherGrowTheCachesNorPushOutAllowedScrapers(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	rv := &reviewer{users: map[string]string{"good": "scraper"}, allowed: map[string]bool{"scraper get /metrics": true}}
	a := rv.authorizer(clk)
	a.unauthenticated = newExpiringSet(clk, metricsUnauthenticatedTTL, 8)
	a.allowed = newExpiringSet(clk, metricsAllowTTL, 4) // small, so that any spill-over would push the scraper out
	h, _ := a.filter(logr.Discard(), okHandler())
	if w := get(h, http.MethodGet, "/metrics", "good"); w.Code != http.StatusOK {
		t.Fatalf("scraper: status %d", w.Code)
	}
	for i := range 200 {
		if i%metricsReviewsPerSecond == 0 {
			clk.SetTime(clk.Now().Add(200 * time.Millisecond)) // 25 a second: some are turned away
		}
		get(h, http.MethodGet, "/metrics", fmt.Sprintf("random-%d", i))
	}
	if n := len(a.unauthenticated.expires); n > 8 {
		t.Errorf("%d unauthenticated tokens kept, bound is 8", n)
	}
	rv.calls.Store(0)
	if w := get(h, http.MethodGet, "/metrics", "good"); w.Code != http.StatusOK || rv.calls.Load() != 0 {
		t.Errorf("scraper after the flood: status %d after %d API calls, want 200 from the cache", w.Code, rv.calls.Load())
	}
}

func TestReviewsBeyondTheRateAreAnswered429(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	rv := &reviewer{}
	h, _ := rv.authorizer(clk).filter(logr.Discard(), okHandler())
	for i := range metricsReviewBurst {
		if w := get(h, http.MethodGet, "/metrics", fmt.Sprint("burst-", i)); w.Code != http.StatusUnauthorized {
			t.Fatalf("request %d within the burst: status %d", i, w.Code)
		}
	}
	rv.calls.Store(0)
	w := get(h, http.MethodGet, "/metrics", "one-too-many")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" || rv.calls.Load() != 0 {
		t.Errorf("past the burst: status %d, Retry-After %q, %d API calls; want 429, 1, 0", w.Code, w.Header().Get("Retry-After"), rv.calls.Load())
	}
	if w := get(h, http.MethodGet, "/metrics", "burst-0"); w.Code != http.StatusUnauthorized || rv.calls.Load() != 0 {
		t.Errorf("a cached answer past the burst: status %d after %d calls, want 401 from the cache", w.Code, rv.calls.Load())
	}
	clk.SetTime(clk.Now().Add(time.Second / metricsReviewsPerSecond))
	if w := get(h, http.MethodGet, "/metrics", "one-too-many"); w.Code != http.StatusUnauthorized {
		t.Errorf("after the bucket refilled one: status %d, want 401", w.Code)
	}
}

func TestReviewsBeyondTheConcurrencyBoundAreAnswered429(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	rv := &reviewer{block: make(chan struct{})}
	a := rv.authorizer(clk)
	h, _ := a.filter(logr.Discard(), okHandler())
	var wg sync.WaitGroup
	for range metricsMaxReviews {
		wg.Go(func() { get(h, http.MethodGet, "/metrics", "slow") })
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(a.reviews) < metricsMaxReviews {
		if time.Now().After(deadline) {
			t.Fatalf("%d reviews under way, want %d", len(a.reviews), metricsMaxReviews)
		}
		time.Sleep(time.Millisecond)
	}
	before := rv.calls.Load()
	answer := make(chan *httptest.ResponseRecorder, 1)
	go func() { answer <- get(h, http.MethodGet, "/metrics", "another") }()
	var w *httptest.ResponseRecorder
	select {
	case w = <-answer:
	case <-time.After(5 * time.Second):
		close(rv.block)
		t.Fatal("a request past the bound waited for a review instead of being refused")
	}
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" || rv.calls.Load() != before {
		t.Errorf("with %d reviews under way: status %d, Retry-After %q, %d more API calls; want 429, 1, 0",
			metricsMaxReviews, w.Code, w.Header().Get("Retry-After"), rv.calls.Load()-before)
	}
	close(rv.block)
	wg.Wait()
	if w := get(h, http.MethodGet, "/metrics", "another"); w.Code != http.StatusUnauthorized {
		t.Errorf("after the reviews ended: status %d, want 401", w.Code)
	}
}
