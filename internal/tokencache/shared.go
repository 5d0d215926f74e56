package tokencache

import (
	"context"
	"errors"
	"time"

	"k8s.io/utils/clock"

	"github.com/token-operator/token-operator/internal/metrics"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// SharedTokens is the operator-wide app token cache in front of the token
// engine: one call per key and refresh window, concurrent misses collapsed.
type SharedTokens struct {
	cache   *Cache[tokensource.Token]
	engine  *tokensource.Engine
	metrics *metrics.Collectors
	clock   clock.PassiveClock
}

// sharedTokenBytes bounds the tokens the shared cache holds, so that many
// large tokens (each under --max-token-bytes) cannot grow the manager
// without bound; past it, tokens are fetched again when needed.
const sharedTokenBytes = 64 << 20

// NewSharedTokens returns a SharedTokens over engine.
func NewSharedTokens(engine *tokensource.Engine, clk clock.PassiveClock, timeout time.Duration, m *metrics.Collectors) *SharedTokens {
	s := &SharedTokens{engine: engine, metrics: m, clock: clk}
	s.cache = New(Options[tokensource.Token]{
		Expired:      func(t tokensource.Token, now time.Time) bool { return !now.Before(t.ExpiresAt) },
		Clock:        clk,
		FetchTimeout: timeout,
		OnEvict:      engine.Forget,
		MaxBytes:     sharedTokenBytes,
		Size:         tokensource.Token.Bytes,
	})
	return s
}

// Token returns a token that fresh accepts, from the cache or the token service.
func (s *SharedTokens) Token(ctx context.Context, user string, req tokensource.Request, fresh func(tokensource.Token) bool) (tokensource.Token, error) {
	tok, outcome, err := s.cache.Get(ctx, user, req.CacheKey(), fresh, func(ctx context.Context) (tokensource.Token, error) {
		start := s.clock.Now()
		t, err := s.engine.Fetch(ctx, req, fresh)
		if err == nil && t.FromCache {
			return t, nil
		}
		s.metrics.ObserveServiceCall(req.ServiceHost(), callResult(err), s.clock.Since(start))
		return t, err
	})
	s.metrics.ObserveCache(string(outcome))
	return tok, err
}

// Cached returns a cached token that fresh accepts, without any call.
func (s *SharedTokens) Cached(user string, req tokensource.Request, fresh func(tokensource.Token) bool) (tokensource.Token, bool) {
	tok, ok := s.cache.Lookup(user, req.CacheKey(), fresh)
	if ok {
		s.metrics.ObserveCache(string(Hit))
	}
	return tok, ok
}

// Validate applies the engine's policy to req without any call.
func (s *SharedTokens) Validate(req tokensource.Request) error { return s.engine.Validate(req) }

// Forget drops what the cache holds for a deleted TokenRequest.
func (s *SharedTokens) Forget(user string) { s.cache.Forget(user) }

func callResult(err error) string {
	var te *tokensource.Error
	var refused *tokensource.HostNotAllowedError
	var large *tokensource.TokenTooLargeError
	switch {
	case err == nil:
		return "success"
	case errors.As(err, &large):
		return "token_too_large"
	case errors.As(err, &te):
		return te.MetricCode()
	case errors.As(err, &refused):
		return "host_not_allowed"
	}
	return "error"
}
