// Package renewal decides when a token is refreshed and how long to wait
// after a failed refresh. It is pure: callers pass every time in.
package renewal

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"time"
)

const (
	// maxJitter bounds the refresh jitter; spreading refreshes by more than a
	// minute buys nothing and makes the schedule harder to reason about.
	maxJitter = time.Minute
	// jitterFraction is the largest share of the lifetime taken as jitter.
	jitterFraction = 0.05

	backoffBase = 5 * time.Second
	backoffMax  = 5 * time.Minute
	// backoffJitterFraction is the largest share of a backoff removed as
	// jitter, so retries after a shared outage do not arrive in lockstep.
	backoffJitterFraction = 0.1

	minPercentage = 1
	maxPercentage = 90
)

// Policy says how early a token is refreshed.
type Policy struct {
	// RenewBefore refreshes this long before expiry. Ignored when not
	// positive or not shorter than the lifetime. Wins over
	// RenewBeforePercentage when both are set.
	RenewBefore *time.Duration
	// RenewBeforePercentage refreshes when this percentage (1..90) of the
	// lifetime is left; other values are ignored.
	RenewBeforePercentage *int32
	// MinRemaining is the validity always left at refresh time, so kubelet
	// has time to propagate a mounted Secret before the old token expires.
	MinRemaining time.Duration
	// JitterSeed (for example "namespace/name") makes the jitter
	// deterministic and stable across restarts; empty means no jitter.
	JitterSeed string
	// MinInterval is the shortest time from a token's issue to its refresh,
	// whatever its hints and times say, shortened to half the lifetime for
	// tokens that live less than twice as long: a safety net against
	// refresh storms.
	MinInterval time.Duration
}

// RefreshTime returns when a token issued at issuedAt and expiring at
// expiresAt should be refreshed:
//   - by default when a third of its lifetime is left; RenewBefore or
//     RenewBeforePercentage override that;
//   - earlier if the token service's hint (refresh_in) is non-zero and earlier;
//   - minus a deterministic jitter of at most 5% of the lifetime and at most
//     a minute, to spread tokens issued together;
//   - no later than expiresAt-MinRemaining, or half the lifetime when the
//     lifetime is not longer than MinRemaining;
//   - no earlier than issuedAt plus MinInterval (at most half the lifetime),
//     truncated to whole seconds as stored in status.
func RefreshTime(issuedAt, expiresAt, hint time.Time, p Policy) time.Time {
	lifetime := expiresAt.Sub(issuedAt)
	if lifetime <= 0 {
		return issuedAt.Truncate(time.Second)
	}
	at := expiresAt.Add(-renewBefore(lifetime, p))
	// A hint not later than the issue time is stale (kept from an earlier
	// token) or nonsense; honouring it would refresh at once, forever.
	if hint.After(issuedAt) && hint.Before(at) {
		at = hint
	}
	at = at.Add(-jitter(lifetime, p.JitterSeed))
	if latest := latestRefresh(issuedAt, expiresAt, p.MinRemaining); at.After(latest) {
		at = latest
	}
	if floor := issuedAt.Add(min(p.MinInterval, lifetime/2)); at.Before(floor) {
		at = floor
	}
	return at.Truncate(time.Second)
}

// renewBefore is how much validity is left at the planned refresh. Like
// cert-manager, a RenewBefore not shorter than the lifetime falls back to
// the default instead of refreshing continuously.
func renewBefore(lifetime time.Duration, p Policy) time.Duration {
	if rb := p.RenewBefore; rb != nil && *rb > 0 && *rb < lifetime {
		return *rb
	}
	if pct := p.RenewBeforePercentage; pct != nil && *pct >= minPercentage && *pct <= maxPercentage {
		return lifetime * time.Duration(*pct) / 100
	}
	return lifetime / 3
}

// latestRefresh is the floor: enough validity left for propagation, or for
// tokens too short for that, half their lifetime.
func latestRefresh(issuedAt, expiresAt time.Time, minRemaining time.Duration) time.Time {
	lifetime := expiresAt.Sub(issuedAt)
	if lifetime <= minRemaining {
		return issuedAt.Add(lifetime / 2)
	}
	return expiresAt.Add(-minRemaining)
}

// jitter is a stable share of min(5% of lifetime, 1m) chosen by the seed.
func jitter(lifetime time.Duration, seed string) time.Duration {
	if seed == "" {
		return 0
	}
	bound := min(time.Duration(float64(lifetime)*jitterFraction), maxJitter)
	return time.Duration(unitHash(seed) * float64(bound))
}

// Backoff returns the wait before retrying after failedAttempts failed
// refreshes in a row: 5s, 10s, 20s … capped at 5m, shortened by up to 10%
// by a jitter derived from seed and the attempt (none when seed is empty),
// and never shorter than retryAfter (the server's Retry-After).
func Backoff(failedAttempts int32, retryAfter time.Duration, seed string) time.Duration {
	d := backoffMax
	// Beyond 7 doublings 5s exceeds the cap; stopping there avoids overflow.
	if n := max(failedAttempts, 1) - 1; n < 7 {
		d = min(backoffBase<<n, backoffMax)
	}
	if seed != "" {
		h := unitHash(seed + "/" + strconv.Itoa(int(failedAttempts)))
		d -= time.Duration(h * backoffJitterFraction * float64(d))
	}
	return max(d, retryAfter)
}

// Jitter is a stable share of bound chosen by seed and attempt; zero when
// seed is empty.
func Jitter(seed string, attempt int32, bound time.Duration) time.Duration {
	if seed == "" || bound <= 0 {
		return 0
	}
	return time.Duration(unitHash(seed+"/"+strconv.Itoa(int(attempt))) * float64(bound))
}

// Due reports whether a refresh planned at refreshAt is due at now, and
// otherwise how long until it is.
func Due(now, refreshAt time.Time) (bool, time.Duration) {
	if wait := refreshAt.Sub(now); wait > 0 {
		return false, wait
	}
	return true, 0
}

// unitHash maps s to a stable number in [0, 1).
func unitHash(s string) float64 {
	sum := sha256.Sum256([]byte(s))
	return float64(binary.BigEndian.Uint64(sum[:8])>>11) / (1 << 53)
}
