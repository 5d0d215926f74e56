package tokencache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// token stands in for an access token: a value and its expiry.
type token struct {
	value   string
	expires time.Time
}

type fixture struct {
	clock   *clocktesting.FakePassiveClock
	cache   *Cache[token]
	evicted []string
	mu      sync.Mutex
}

func newFixture() *fixture {
	f := &fixture{clock: clocktesting.NewFakePassiveClock(t0)}
	f.cache = New(Options[token]{
		Expired:      func(v token, now time.Time) bool { return !now.Before(v.expires) },
		Clock:        f.clock,
		FetchTimeout: time.Minute,
		OnEvict: func(key string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.evicted = append(f.evicted, key)
		},
	})
	return f
}

func (f *fixture) evictions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.evicted)
}

// fresh accepts tokens with more than 5 minutes left, as the token engine would.
func (f *fixture) fresh(v token) bool { return f.clock.Now().Add(5 * time.Minute).Before(v.expires) }

// fetchOK returns a token valid for an hour and counts calls.
func (f *fixture) fetchOK(calls *atomic.Int32, value string) func(context.Context) (token, error) {
	return func(context.Context) (token, error) {
		calls.Add(1)
		return token{value: value, expires: f.clock.Now().Add(time.Hour)}, nil
	}
}

func (f *fixture) get(t *testing.T, user, key string, fetch func(context.Context) (token, error)) (token, Outcome) {
	t.Helper()
	v, out, err := f.cache.Get(context.Background(), user, key, f.fresh, fetch)
	if err != nil {
		t.Fatalf("Get(%s, %s): %v", user, key, err)
	}
	return v, out
}

// concurrentGets runs n Gets, user i asking for key i%keys. The fetch blocks
// until all n callers have attached to a fetch, so every caller but one per
// key must share, whatever the scheduling.
func concurrentGets(t *testing.T, n, keys int) (calls int32, outcomes map[Outcome]int) {
	f := newFixture()
	var joined sync.WaitGroup
	joined.Add(n)
	f.cache.joined = func(string) { joined.Done() }
	allJoined := make(chan struct{})
	go func() { joined.Wait(); close(allJoined) }()

	var count atomic.Int32
	fetch := func(context.Context) (token, error) {
		count.Add(1)
		<-allJoined
		return token{value: "v", expires: t0.Add(time.Hour)}, nil
	}
	results := make(chan Outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, out, err := f.cache.Get(context.Background(), fmt.Sprintf("ns/tr-%d", i), fmt.Sprintf("key-%d", i%keys), f.fresh, fetch)
			if err != nil {
				t.Error(err)
			}
			results <- out
		})
	}
	wg.Wait()
	close(results)
	outcomes = map[Outcome]int{}
	for out := range results {
		outcomes[out]++
	}
	return count.Load(), outcomes
}

func TestConcurrentMisses(t *testing.T) {
	tests := []struct {
		name        string
		gets, keys  int
		wantFetches int32
	}{
		{"A hundred concurrent gets of one key fetch once", 100, 1, 1},
		{"A hundred concurrent gets over ten keys fetch once per key", 100, 10, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls, outcomes := concurrentGets(t, tt.gets, tt.keys)
			if calls != tt.wantFetches {
				t.Errorf("fetches = %d, want %d", calls, tt.wantFetches)
			}
			want := map[Outcome]int{Miss: int(tt.wantFetches), Shared: tt.gets - int(tt.wantFetches)}
			if outcomes[Miss] != want[Miss] || outcomes[Shared] != want[Shared] || outcomes[Hit] != 0 {
				t.Errorf("outcomes = %v, want %v", outcomes, want)
			}
		})
	}
}

func TestCachedValueIsServedWhileFreshAndRefetchedAfter(t *testing.T) {
	f := newFixture()
	var calls atomic.Int32

	if v, out := f.get(t, "ns/a", "app", f.fetchOK(&calls, "first")); out != Miss || v.value != "first" {
		t.Fatalf("first get = %v %v, want miss of first", v.value, out)
	}
	f.clock.SetTime(t0.Add(50 * time.Minute))
	if v, out := f.get(t, "ns/b", "app", f.fetchOK(&calls, "second")); out != Hit || v.value != "first" {
		t.Fatalf("get while fresh = %v %v, want hit of first", v.value, out)
	}
	f.clock.SetTime(t0.Add(56 * time.Minute))
	if v, out := f.get(t, "ns/a", "app", f.fetchOK(&calls, "second")); out != Miss || v.value != "second" {
		t.Fatalf("get when stale = %v %v, want miss of second", v.value, out)
	}
	if v, out := f.get(t, "ns/b", "app", f.fetchOK(&calls, "third")); out != Hit || v.value != "second" {
		t.Fatalf("get after refetch = %v %v, want hit of second", v.value, out)
	}
	if calls.Load() != 2 {
		t.Errorf("fetches = %d, want 2", calls.Load())
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	f := newFixture()
	var calls atomic.Int32
	boom := errors.New("token service unavailable")
	failing := func(context.Context) (token, error) { calls.Add(1); return token{}, boom }

	for range 2 {
		if _, _, err := f.cache.Get(context.Background(), "ns/a", "app", f.fresh, failing); !errors.Is(err, boom) {
			t.Fatalf("err = %v, want %v", err, boom)
		}
	}
	if calls.Load() != 2 || f.cache.Len() != 0 {
		t.Errorf("fetches = %d, entries = %d; want 2 fetches and nothing cached", calls.Load(), f.cache.Len())
	}
}

func TestFailedRefetchKeepsTheCachedValue(t *testing.T) {
	f := newFixture()
	var calls atomic.Int32
	f.get(t, "ns/a", "app", f.fetchOK(&calls, "first"))

	f.clock.SetTime(t0.Add(56 * time.Minute)) // stale but not expired
	failing := func(context.Context) (token, error) { return token{}, errors.New("down") }
	if _, _, err := f.cache.Get(context.Background(), "ns/a", "app", f.fresh, failing); err == nil {
		t.Fatal("want the fetch error")
	}
	always := func(token) bool { return true }
	v, out, err := f.cache.Get(context.Background(), "ns/a", "app", always, failing)
	if err != nil || out != Hit || v.value != "first" {
		t.Errorf("get = %v %v %v, want hit of first", v.value, out, err)
	}
}

func TestExpiredEntriesAreDroppedOnAccess(t *testing.T) {
	f := newFixture()
	var calls atomic.Int32
	f.get(t, "ns/a", "app", f.fetchOK(&calls, "first"))

	f.clock.SetTime(t0.Add(2 * time.Hour))
	always := func(token) bool { return true } // even a lenient caller gets no expired token
	failing := func(context.Context) (token, error) { return token{}, errors.New("down") }
	if _, _, err := f.cache.Get(context.Background(), "ns/a", "app", always, failing); err == nil {
		t.Fatal("an expired entry was served")
	}
	if f.cache.Len() != 0 {
		t.Errorf("entries = %d, want the expired one dropped", f.cache.Len())
	}
}

func TestCanceledCallerDoesNotCancelTheSharedFetch(t *testing.T) {
	f := newFixture()
	release := make(chan struct{})
	fetchErr := make(chan error, 1)
	var joined sync.WaitGroup
	joined.Add(2)
	f.cache.joined = func(string) { joined.Done() }
	fetch := func(ctx context.Context) (token, error) {
		<-release
		err := ctx.Err()
		if _, ok := ctx.Deadline(); !ok {
			err = errors.New("fetch context has no deadline")
		}
		fetchErr <- err
		return token{value: "v", expires: t0.Add(time.Hour)}, nil
	}

	ctxA, cancelA := context.WithCancel(context.Background())
	errA := make(chan error, 1)
	go func() { _, _, err := f.cache.Get(ctxA, "ns/a", "app", f.fresh, fetch); errA <- err }()
	type result struct {
		v   token
		out Outcome
		err error
	}
	resB := make(chan result, 1)
	go func() {
		v, out, err := f.cache.Get(context.Background(), "ns/b", "app", f.fresh, fetch)
		resB <- result{v, out, err}
	}()

	joined.Wait()
	cancelA()
	if err := <-errA; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled caller err = %v, want context.Canceled", err)
	}
	close(release)
	if err := <-fetchErr; err != nil {
		t.Fatalf("fetch context: %v", err)
	}
	b := <-resB
	if b.err != nil || b.v.value != "v" {
		t.Errorf("other caller got %v %v, want the value", b.v, b.err)
	}
}

func TestForget(t *testing.T) {
	f := newFixture()
	var calls atomic.Int32
	f.get(t, "ns/a", "shared", f.fetchOK(&calls, "s"))
	f.get(t, "ns/b", "shared", f.fetchOK(&calls, "s"))
	f.get(t, "ns/c", "own", f.fetchOK(&calls, "o"))

	steps := []struct {
		name        string
		user        string
		wantLen     int
		wantEvicted []string
	}{
		{"Forgetting the only user of a key drops it", "ns/c", 1, []string{"own"}},
		{"Forgetting one of two users keeps the key", "ns/a", 1, []string{"own"}},
		{"Forgetting an unknown user changes nothing", "ns/unknown", 1, []string{"own"}},
		{"Forgetting the last user drops the key", "ns/b", 0, []string{"own", "shared"}},
	}
	for _, s := range steps {
		f.cache.Forget(s.user)
		if got := f.cache.Len(); got != s.wantLen {
			t.Errorf("%s: entries = %d, want %d", s.name, got, s.wantLen)
		}
		if got := f.evictions(); !slices.Equal(got, s.wantEvicted) {
			t.Errorf("%s: evicted = %v, want %v", s.name, got, s.wantEvicted)
		}
	}
}

func TestUserSwitchingKeysReleasesTheOldOne(t *testing.T) {
	f := newFixture()
	var calls atomic.Int32
	f.get(t, "ns/a", "old-secret", f.fetchOK(&calls, "1"))
	f.get(t, "ns/b", "shared", f.fetchOK(&calls, "2"))
	f.get(t, "ns/a", "rotated-secret", f.fetchOK(&calls, "3"))
	f.get(t, "ns/b", "rotated-secret", f.fetchOK(&calls, "4"))

	if got := f.evictions(); !slices.Equal(got, []string{"old-secret", "shared"}) {
		t.Errorf("evicted = %v, want old-secret then shared", got)
	}
	if f.cache.Len() != 1 || calls.Load() != 3 {
		t.Errorf("entries = %d, fetches = %d; want 1 and 3", f.cache.Len(), calls.Load())
	}
}

func TestFetchFinishingAfterEveryUserLeftIsNotStored(t *testing.T) {
	f := newFixture()
	release := make(chan struct{})
	started := make(chan struct{})
	fetch := func(context.Context) (token, error) {
		close(started)
		<-release
		return token{value: "late", expires: t0.Add(time.Hour)}, nil
	}
	done := make(chan token, 1)
	go func() {
		v, _, _ := f.cache.Get(context.Background(), "ns/a", "app", f.fresh, fetch)
		done <- v
	}()
	<-started
	f.cache.Forget("ns/a")
	close(release)

	if v := <-done; v.value != "late" {
		t.Errorf("waiting caller got %q, want the fetched value", v.value)
	}
	if f.cache.Len() != 0 {
		t.Errorf("entries = %d, want 0: nobody holds the key", f.cache.Len())
	}
}

func BenchmarkGetHit(b *testing.B) {
	f := newFixture()
	var calls atomic.Int32
	fetch := f.fetchOK(&calls, "v")
	ctx := context.Background()
	for b.Loop() {
		if _, _, err := f.cache.Get(ctx, "ns/a", "app", f.fresh, fetch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetParallelHit models many TokenRequests sharing one app token.
func BenchmarkGetParallelHit(b *testing.B) {
	f := newFixture()
	var calls atomic.Int32
	fetch := f.fetchOK(&calls, "v")
	ctx := context.Background()
	var next atomic.Int32
	b.RunParallel(func(pb *testing.PB) {
		user := fmt.Sprintf("ns/tr-%d", next.Add(1))
		for pb.Next() {
			if _, _, err := f.cache.Get(ctx, user, "app", f.fresh, fetch); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
