package controller

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// callSlots bounds the token calls each namespace has under way. A worker
// that finds its namespace's slots taken requeues instead of waiting, so a
// namespace whose token service stalls can hold at most perNamespace
// reconcile workers and never the rest of the cluster's.
type callSlots struct {
	perNamespace int

	mu    sync.Mutex
	inUse map[string][]time.Time // namespace → start of each call under way; absent when none
}

func newCallSlots(perNamespace int) *callSlots {
	return &callSlots{perNamespace: perNamespace, inUse: map[string][]time.Time{}}
}

// slowCalls is how long a namespace's calls may all be under way before its
// waiting TokenRequests say so in their status.
const slowCalls = 5 * time.Second

// tryAcquire takes a slot for namespace if one is free and returns its
// release. Otherwise it returns nil and since when every slot has been taken.
// A nil receiver or a non-positive limit means no limit.
func (s *callSlots) tryAcquire(namespace string, now time.Time) (release func(), busySince time.Time) {
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

func (s *callSlots) release(namespace string, started time.Time) {
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

func (s *callSlots) busyMessage() string {
	return fmt.Sprintf("this namespace's %d token calls have been under way for more than %s; waiting for one to finish", s.perNamespace, slowCalls)
}

// slotRetryDelay is how long a TokenRequest whose namespace had no free slot
// waits: one to two seconds, spread so that waiting requests do not return
// together.
func slotRetryDelay() time.Duration {
	return time.Second + rand.N(time.Second)
}
