package operator

import (
	"fmt"
	"net/http"
	"net/http/httptest"
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

func TestAllowedMetricsDecisionsExpireAfterTheirTTL(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	c := newAllowCache(clk, time.Minute, 4)
	key := allowKey("token", "get", "/metrics")
	if c.allowed(key) {
		t.Fatal("an empty cache allows")
	}
	c.allow(key)
	clk.SetTime(clk.Now().Add(59 * time.Second))
	if !c.allowed(key) {
		t.Error("not allowed within the TTL")
	}
	clk.SetTime(clk.Now().Add(time.Second))
	if c.allowed(key) {
		t.Error("still allowed after the TTL")
	}
	if allowKey("token", "get", "/metrics") == allowKey("token", "get", "/metricsx") {
		t.Error("different paths share a key")
	}
}

func TestAFullMetricsAuthCacheDropsExpiredEntriesThenEverything(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	c := newAllowCache(clk, time.Minute, 4)
	key := func(i int) [32]byte { return allowKey(fmt.Sprint("t", i), "get", "/metrics") }
	c.allow(key(0))
	c.allow(key(1))
	clk.SetTime(clk.Now().Add(time.Minute))
	c.allow(key(2))
	c.allow(key(3))
	c.allow(key(4)) // full: 0 and 1 have expired and go
	if n := len(c.expires); n != 3 || !c.allowed(key(2)) || !c.allowed(key(4)) {
		t.Fatalf("after dropping expired entries: %d entries", n)
	}
	c.allow(key(5))
	c.allow(key(6)) // full of live entries: all go
	if n := len(c.expires); n != 1 || !c.allowed(key(6)) {
		t.Fatalf("after clearing: %d entries, want only the new one", n)
	}
	for i := range 1000 {
		c.allow(key(100 + i))
	}
	if n := len(c.expires); n > 4 {
		t.Errorf("%d entries, bound is 4", n)
	}
}

func TestMetricsRequestsWithoutABearerTokenAreUnauthorized(t *testing.T) {
	a := &metricsAuthorizer{cache: newAllowCache(clocktesting.NewFakePassiveClock(time.Now()), time.Minute, 4)}
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

// fakeReviews answers TokenReviews and SubjectAccessReviews from maps and
// counts the calls.
func fakeReviews(users map[string]string, allowed map[string]bool, calls *int) *metricsAuthorizer {
	cs := fake.NewClientset()
	cs.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		*calls++
		tr := a.(k8stesting.CreateAction).GetObject().(*authnv1.TokenReview)
		if tr.Spec.Token == "broken" {
			return true, nil, fmt.Errorf("API down")
		}
		user, ok := users[tr.Spec.Token]
		tr.Status = authnv1.TokenReviewStatus{Authenticated: ok, User: authnv1.UserInfo{Username: user}}
		return true, tr, nil
	})
	cs.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		*calls++
		sar := a.(k8stesting.CreateAction).GetObject().(*authzv1.SubjectAccessReview)
		na := sar.Spec.NonResourceAttributes
		sar.Status.Allowed = allowed[sar.Spec.User+" "+na.Verb+" "+na.Path]
		return true, sar, nil
	})
	return &metricsAuthorizer{
		tokens: cs.AuthenticationV1().TokenReviews(),
		sars:   cs.AuthorizationV1().SubjectAccessReviews(),
		cache:  newAllowCache(clocktesting.NewFakePassiveClock(time.Now()), time.Minute, 4),
	}
}

func TestMetricsRequestsAreReviewedAndOnlyAllowedOnesCached(t *testing.T) {
	calls := 0
	a := fakeReviews(map[string]string{"good": "scraper", "other": "stranger"},
		map[string]bool{"scraper get /metrics": true}, &calls)
	h, _ := a.filter(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	for _, c := range []struct {
		token, method, path string
		want, calls         int
	}{
		{"good", http.MethodGet, "/metrics", http.StatusOK, 2},
		{"good", http.MethodGet, "/metrics", http.StatusOK, 0},         // cached
		{"good", http.MethodPost, "/metrics", http.StatusForbidden, 2}, // verb is the method
		{"good", http.MethodGet, "/other", http.StatusForbidden, 2},
		{"other", http.MethodGet, "/metrics", http.StatusForbidden, 2},
		{"other", http.MethodGet, "/metrics", http.StatusForbidden, 2}, // denials are not cached
		{"garbage", http.MethodGet, "/metrics", http.StatusUnauthorized, 1},
		{"broken", http.MethodGet, "/metrics", http.StatusInternalServerError, 1},
	} {
		calls = 0
		r := httptest.NewRequest(c.method, c.path, nil)
		r.Header.Set("Authorization", "Bearer "+c.token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.want || calls != c.calls {
			t.Errorf("%s %s with %q: status %d after %d API calls, want %d after %d", c.method, c.path, c.token, w.Code, calls, c.want, c.calls)
		}
	}
}
