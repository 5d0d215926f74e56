package controller

import (
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
	inUse map[string]int // namespace → calls under way; absent when zero
}

func newCallSlots(perNamespace int) *callSlots {
	return &callSlots{perNamespace: perNamespace, inUse: map[string]int{}}
}

// tryAcquire takes a slot for namespace if one is free. A non-positive
// limit means no limit.
func (s *callSlots) tryAcquire(namespace string) bool {
	if s == nil || s.perNamespace <= 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inUse[namespace] >= s.perNamespace {
		return false
	}
	s.inUse[namespace]++
	return true
}

// release gives back a slot taken by tryAcquire.
func (s *callSlots) release(namespace string) {
	if s == nil || s.perNamespace <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inUse[namespace] <= 1 {
		delete(s.inUse, namespace) // keeps the map as small as the calls under way
		return
	}
	s.inUse[namespace]--
}

// slotRetryDelay is how long a TokenRequest whose namespace had no free slot
// waits: one to two seconds, spread so that waiting requests do not return
// together.
func slotRetryDelay() time.Duration {
	return time.Second + rand.N(time.Second)
}
