// Package tokencache shares values that are expensive to fetch, such as app
// tokens, between the consumers that need them, and fetches each value once
// however many consumers miss it at the same time.
package tokencache

import (
	"container/list"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
	"k8s.io/utils/clock"
)

// DefaultFetchTimeout bounds a fetch when Options.FetchTimeout is zero: a
// fetch with no deadline would block every later Get of its key.
const DefaultFetchTimeout = 30 * time.Second

// Outcome says how Get obtained its value.
type Outcome string

const (
	// Hit means a fresh cached value was served.
	Hit Outcome = "hit"
	// Miss means this caller started the fetch (or gave up waiting for it).
	Miss Outcome = "miss"
	// Shared means this caller joined a fetch another caller had started.
	Shared Outcome = "shared"
)

// Options configures a Cache. The zero value is usable.
type Options[V any] struct {
	// Expired reports that a value is useless at the given time (the token
	// has expired); such entries are dropped when accessed. Nil means never.
	Expired func(V, time.Time) bool
	// Clock is the time source for Expired; nil means the real clock.
	Clock clock.PassiveClock
	// FetchTimeout bounds each fetch; zero means DefaultFetchTimeout.
	FetchTimeout time.Duration
	// OnEvict is called, outside the cache lock, when the last user of a key
	// lets it go and everything cached for the key is dropped.
	OnEvict func(key string)
	// MaxBytes bounds the bytes of the cached values, as Size counts them,
	// on top of the bound by users: a store that goes over it drops the
	// values stored longest ago (their users fetch again), and a value
	// larger than MaxBytes is not kept. Zero means no byte bound.
	MaxBytes int64
	// Size is a value's size in bytes; MaxBytes needs it.
	Size func(V) int64
}

// entry is a cached value, its size and its place in the store order.
type entry[V any] struct {
	v     V
	size  int64
	order *list.Element // of the key, in c.order
}

// Cache maps keys to values held on behalf of users. A user holds one key
// at a time; a key no user holds is dropped, so memory is bounded by the
// number of live users, and by Options.MaxBytes when set. Errors are never
// cached.
type Cache[V any] struct {
	expired      func(V, time.Time) bool
	clock        clock.PassiveClock
	fetchTimeout time.Duration
	onEvict      func(key string)
	maxBytes     int64
	size         func(V) int64

	group singleflight.Group

	mu      sync.RWMutex
	entries map[string]*entry[V] // key → last successful fetch
	users   map[string]string    // user → key it holds
	holders map[string]int       // key → number of users holding it
	order   *list.List           // keys of entries, stored longest ago first
	bytes   int64                // sum of the entries' sizes

	// joined, when set by tests, runs after a caller has attached to the
	// fetch of its key, so tests can release the fetch deterministically.
	joined func(key string)
}

// New returns an empty cache.
func New[V any](opts Options[V]) *Cache[V] {
	c := &Cache[V]{
		expired:      opts.Expired,
		clock:        opts.Clock,
		fetchTimeout: opts.FetchTimeout,
		onEvict:      opts.OnEvict,
		maxBytes:     opts.MaxBytes,
		size:         opts.Size,
		entries:      map[string]*entry[V]{},
		users:        map[string]string{},
		holders:      map[string]int{},
		order:        list.New(),
	}
	if c.size == nil {
		c.maxBytes = 0
	}
	if c.expired == nil {
		c.expired = func(V, time.Time) bool { return false }
	}
	if c.clock == nil {
		c.clock = clock.RealClock{}
	}
	if c.fetchTimeout <= 0 {
		c.fetchTimeout = DefaultFetchTimeout
	}
	return c
}

// Get returns the value cached for key when fresh accepts it. Otherwise it
// runs fetch, once per key however many callers miss together. The fetch
// runs on a context detached from ctx's cancellation and bounded by
// FetchTimeout, so one caller giving up does not fail the others; each
// caller still returns early, with ctx's error, when its own ctx is done.
// Get records that user now holds key, releasing any key it held before.
// fresh and fetch must not call back into the cache.
func (c *Cache[V]) Get(ctx context.Context, user, key string, fresh func(V) bool, fetch func(context.Context) (V, error)) (V, Outcome, error) {
	if v, ok := c.lookup(user, key); ok && fresh(v) {
		return v, Hit, nil
	}
	return c.fetch(ctx, key, fetch)
}

// Lookup returns the cached value for key if fresh accepts it, without
// fetching, and records that user holds key.
func (c *Cache[V]) Lookup(user, key string, fresh func(V) bool) (V, bool) {
	v, ok := c.lookup(user, key)
	return v, ok && fresh(v)
}

// Forget releases whatever key user holds; use it when the consumer is
// gone. A key no other user holds is dropped.
func (c *Cache[V]) Forget(user string) {
	c.mu.Lock()
	key, evicted := c.release(user)
	c.mu.Unlock()
	if evicted {
		c.notify(key)
	}
}

// Len returns the number of cached values.
func (c *Cache[V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// Bytes returns the size of the cached values, as Options.Size counts them.
func (c *Cache[V]) Bytes() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.bytes
}

// lookup records that user holds key and returns the cached value unless
// it is missing or expired. The common case, a user asking again for the
// key it already holds, only takes the read lock.
func (c *Cache[V]) lookup(user, key string) (V, bool) {
	c.mu.RLock()
	e, cached := c.entries[key]
	held, known := c.users[user]
	c.mu.RUnlock()
	if known && held == key && cached && !c.expired(e.v, c.clock.Now()) {
		return e.v, true
	}

	c.mu.Lock()
	old, evicted := c.hold(user, key)
	e, cached = c.entries[key]
	if cached && c.expired(e.v, c.clock.Now()) {
		c.drop(key)
		cached = false
	}
	c.mu.Unlock()
	if evicted {
		c.notify(old)
	}
	if !cached {
		var zero V
		return zero, false
	}
	return e.v, true
}

// fetch runs or joins the single fetch for key and waits for it or ctx.
func (c *Cache[V]) fetch(ctx context.Context, key string, fetch func(context.Context) (V, error)) (V, Outcome, error) {
	var started atomic.Bool
	ch := c.group.DoChan(key, func() (any, error) {
		started.Store(true)
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.fetchTimeout)
		defer cancel()
		v, err := fetch(fctx)
		if err == nil {
			c.store(key, v)
		}
		return v, err
	})
	if c.joined != nil {
		c.joined(key)
	}
	var zero V
	select {
	case <-ctx.Done():
		return zero, Miss, ctx.Err()
	case res := <-ch:
		outcome := Shared
		if started.Load() {
			outcome = Miss
		}
		if res.Err != nil {
			return zero, outcome, res.Err
		}
		return res.Val.(V), outcome, nil
	}
}

// store keeps a fetched value, unless every user let the key go while the
// fetch ran: storing it then would leak an entry nobody can release. Over
// the byte budget, the values stored longest ago make room.
func (c *Cache[V]) store(key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drop(key)
	if c.holders[key] == 0 {
		return
	}
	var size int64
	if c.maxBytes > 0 {
		if size = c.size(v); size > c.maxBytes {
			return
		}
		for c.bytes+size > c.maxBytes {
			c.drop(c.order.Front().Value.(string))
		}
	}
	c.entries[key] = &entry[V]{v: v, size: size, order: c.order.PushBack(key)}
	c.bytes += size
}

// drop removes key's value, if any. Needs c.mu.
func (c *Cache[V]) drop(key string) {
	e, ok := c.entries[key]
	if !ok {
		return
	}
	delete(c.entries, key)
	c.order.Remove(e.order)
	c.bytes -= e.size
}

// hold makes user hold key. If user held another key it is released, and
// evicted reports whether that left the old key unheld. Needs c.mu.
func (c *Cache[V]) hold(user, key string) (old string, evicted bool) {
	if held, ok := c.users[user]; ok && held == key {
		return "", false
	}
	old, evicted = c.release(user)
	c.users[user] = key
	c.holders[key]++
	return old, evicted
}

// release drops user's hold and, if user was the last holder, the key's
// entry. It returns the key and whether it was dropped. Needs c.mu.
func (c *Cache[V]) release(user string) (string, bool) {
	key, ok := c.users[user]
	if !ok {
		return "", false
	}
	delete(c.users, user)
	if c.holders[key]--; c.holders[key] > 0 {
		return key, false
	}
	delete(c.holders, key)
	c.drop(key)
	return key, true
}

func (c *Cache[V]) notify(key string) {
	if c.onEvict != nil {
		c.onEvict(key)
	}
}
