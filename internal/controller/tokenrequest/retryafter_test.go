package tokenrequest

import (
	"testing"
	"time"

	"github.com/token-operator/token-operator/internal/secretdata"
	"github.com/token-operator/token-operator/internal/tokensource"
)

// A token service's Retry-After is honoured up to a third of the remaining
// lifetime of the token in the Secret, never beyond.
func TestRetryAfterIsCappedAtAThirdOfTheRemainingLifetime(t *testing.T) {
	now := planNow
	valid := &secretdata.State{HasToken: true, ExpiresAt: now.Add(30 * time.Minute)}
	expired := &secretdata.State{HasToken: true, ExpiresAt: now.Add(-time.Minute)}
	cases := []struct {
		name   string
		secret *secretdata.State
		in     time.Duration
		want   time.Duration
	}{
		{"longer than a third: capped", valid, 2 * time.Hour, 10 * time.Minute},
		{"within a third: kept", valid, 5 * time.Minute, 5 * time.Minute},
		{"no token to lose: kept", nil, 2 * time.Hour, 2 * time.Hour},
		{"an expired token: kept", expired, 2 * time.Hour, 2 * time.Hour},
		{"negative: none", valid, -time.Minute, 0},
	}
	for _, c := range cases {
		o := observed{now: now, secret: c.secret}
		if got := capRetryAfter(c.in, o); got != c.want {
			t.Errorf("%s: capRetryAfter(%v) = %v, want %v", c.name, c.in, got, c.want)
		}
	}
}

// Through a whole pass: a refresh refused with a Retry-After of two hours
// while the token has twenty minutes left waits a third of those twenty,
// and its retry comes before the token expires.
func TestAFailedRefreshWaitsNoLongerThanAThirdOfTheRemainingLifetime(t *testing.T) {
	o := planObserved(planRequest("capped"))
	p := issue(t, o, token(planNow, 0)) // valid for an hour
	now := planNow.Add(40 * time.Minute)
	next := afterWrite(o, p, now)
	next.fetched = &fetched{err: &tokensource.Error{Retryable: true, StatusCode: 429, Code: "temporarily_unavailable", RetryAfter: 2 * time.Hour}}
	p = decide(next)
	if want := now.Add(20 * time.Minute / 3); !p.retryNotBefore.Equal(want) {
		t.Errorf("no retry before %v, want %v (a third of the 20m left)", p.retryNotBefore, want)
	}
	retry := p.status.NextRetryTime
	if retry == nil || !retry.Time.Before(planNow.Add(time.Hour)) {
		t.Errorf("next retry %v is not before the token expires at %v", retry, planNow.Add(time.Hour))
	}
}
