package tokensource

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// CallSlots bounds the token calls each namespace has under way. A worker
// that finds its namespace's slots taken requeues instead of waiting, so a
// namespace whose token service stalls can hold at most perNamespace
// reconcile workers and never the rest of the cluster's.
type CallSlots struct {
	perNamespace int

	mu    sync.Mutex
	inUse map[string][]time.Time // namespace → start of each call under way; absent when none
}

func NewCallSlots(perNamespace int) *CallSlots {
	return &CallSlots{perNamespace: perNamespace, inUse: map[string][]time.Time{}}
}

// SlowCalls is how long a namespace's calls may all be under way before its
// waiting TokenRequests say so in their status.
const SlowCalls = 5 * time.Second

// TryAcquire takes a slot for namespace if one is free and returns its
// release. Otherwise it returns nil and since when every slot has been taken.
// A nil receiver or a non-positive limit means no limit.
func (s *CallSlots) TryAcquire(namespace string, now time.Time) (release func(), busySince time.Time) {
	if s == nil || s.perNamespace <= 0 {
		return func() {}, time.Time{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	calls := s.inUse[namespace]
	if len(calls) >= s.perNamespace {
		newest := calls[0]
		for _, t := range calls[1:] {
			if t.After(newest) {
				newest = t
			}
		}
		return nil, newest
	}
	s.inUse[namespace] = append(calls, now)
	var once sync.Once
	return func() { once.Do(func() { s.release(namespace, now) }) }, time.Time{}
}

func (s *CallSlots) release(namespace string, started time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	calls := s.inUse[namespace]
	for i, t := range calls {
		if t.Equal(started) {
			calls = append(calls[:i], calls[i+1:]...)
			break
		}
	}
	if len(calls) == 0 {
		delete(s.inUse, namespace) // keeps the map as small as the calls under way
		return
	}
	s.inUse[namespace] = calls
}

// BusyMessage is the status message of a namespace whose slots stay taken.
func (s *CallSlots) BusyMessage() string {
	return fmt.Sprintf("this namespace's %d token calls have been under way for more than %s; waiting for one to finish", s.perNamespace, SlowCalls)
}

// SlotRetryDelay is how long a TokenRequest whose namespace had no free slot
// waits: one to two seconds, spread so that waiting requests do not return
// together.
func SlotRetryDelay() time.Duration {
	return time.Second + rand.N(time.Second)
}

// CallRate is a token bucket per namespace on calls to token services (a
// shared-cache hit costs none): many TokenRequests cannot storm a client
// they share, nor one namespace the token services everyone uses. A
// TokenRequest that finds its namespace's bucket empty reserves the next
// free turn and requeues until then, holding no worker. Reservations are
// bounded (maxWait of them), and a bucket that is full and has none is
// dropped, so the map is as large as the namespaces calling right now.
type CallRate struct {
	perSecond float64
	burst     float64

	mu       sync.Mutex
	buckets  map[string]*bucket
	lastScan time.Time
}

type bucket struct {
	tokens float64 // may go below zero by the reservations made
	at     time.Time
	// turns are the reservations (TokenRequest → when it may call).
	turns map[string]time.Time
	// limitedSince is when the bucket last ran dry; zero while it has tokens.
	limitedSince time.Time
}

// maxRateWait bounds how far ahead turns are given out; past it a
// TokenRequest retries later without a reservation.
const maxRateWait = time.Minute

func NewCallRate(perSecond float64, burst int) *CallRate {
	return &CallRate{perSecond: perSecond, burst: float64(max(burst, 1)), buckets: map[string]*bucket{}}
}

// take lets the caller (a TokenRequest's key) call now, or says when to
// come back and since when the namespace has been waiting. A nil receiver
// or a non-positive rate means no limit.
func (c *CallRate) Take(namespace, caller string, now time.Time) (ok bool, retryAt, limitedSince time.Time) {
	if c == nil || c.perSecond <= 0 {
		return true, time.Time{}, time.Time{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scan(now)
	b := c.buckets[namespace]
	if b == nil {
		b = &bucket{tokens: c.burst, at: now}
		c.buckets[namespace] = b
	}
	c.refill(b, now)
	if turn, reserved := b.turns[caller]; reserved {
		if now.Before(turn) {
			return false, turn, b.limitedSince
		}
		delete(b.turns, caller) // its token was taken when the turn was given
		return true, time.Time{}, time.Time{}
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, time.Time{}, time.Time{}
	}
	if b.limitedSince.IsZero() {
		b.limitedSince = now
	}
	wait := time.Duration((1 - b.tokens) / c.perSecond * float64(time.Second))
	if wait > maxRateWait {
		return false, now.Add(maxRateWait), b.limitedSince
	}
	b.tokens--
	if b.turns == nil {
		b.turns = map[string]time.Time{}
	}
	b.turns[caller] = now.Add(wait)
	return false, now.Add(wait), b.limitedSince
}

func (c *CallRate) refill(b *bucket, now time.Time) {
	if now.After(b.at) {
		b.tokens = min(c.burst, b.tokens+now.Sub(b.at).Seconds()*c.perSecond)
		b.at = now
	}
	if b.tokens >= 1 {
		b.limitedSince = time.Time{}
	}
}

// scan, at most once per maxRateWait, drops turns long past (their
// TokenRequest went away) and buckets that are full again.
func (c *CallRate) scan(now time.Time) {
	if now.Sub(c.lastScan) < maxRateWait {
		return
	}
	c.lastScan = now
	for ns, b := range c.buckets {
		c.refill(b, now)
		for caller, turn := range b.turns {
			if now.Sub(turn) > maxRateWait {
				delete(b.turns, caller)
			}
		}
		if b.tokens >= c.burst && len(b.turns) == 0 {
			delete(c.buckets, ns)
		}
	}
}

// BusyMessage is the status message of a namespace that waits for its turn.
func (c *CallRate) BusyMessage() string {
	return fmt.Sprintf("this namespace's token calls are limited to %g per second (burst %g) and it has been using them all for more than %s; waiting for its turn", c.perSecond, c.burst, SlowCalls)
}
