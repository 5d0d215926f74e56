package tokencache

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func newBudgetCache(maxBytes int64) (*Cache[token], *clocktesting.FakePassiveClock) {
	clk := clocktesting.NewFakePassiveClock(t0)
	return New(Options[token]{
		Expired:  func(v token, now time.Time) bool { return !now.Before(v.expires) },
		Clock:    clk,
		MaxBytes: maxBytes,
		Size:     func(v token) int64 { return int64(len(v.value)) },
	}), clk
}

func fetchSized(clk *clocktesting.FakePassiveClock, calls *atomic.Int32, size int) func(context.Context) (token, error) {
	return func(context.Context) (token, error) {
		calls.Add(1)
		return token{value: strings.Repeat("t", size), expires: clk.Now().Add(time.Hour)}, nil
	}
}

func always(token) bool { return true }

func TestTheByteBudgetDropsTheValuesStoredLongestAgo(t *testing.T) {
	c, clk := newBudgetCache(1000)
	var calls atomic.Int32
	for i := range 5 { // 5 × 300 bytes into 1000: the first two make room
		if _, _, err := c.Get(context.Background(), fmt.Sprint("user-", i), fmt.Sprint("key-", i), always, fetchSized(clk, &calls, 300)); err != nil {
			t.Fatal(err)
		}
	}
	if c.Len() != 3 || c.Bytes() != 900 {
		t.Fatalf("after 5 stores of 300 bytes under 1000: %d entries, %d bytes; want 3 and 900", c.Len(), c.Bytes())
	}
	for i, want := range []bool{false, false, true, true, true} {
		if _, ok := c.Lookup(fmt.Sprint("user-", i), fmt.Sprint("key-", i), always); ok != want {
			t.Errorf("key-%d cached = %v, want %v", i, ok, want)
		}
	}
	// A dropped value is fetched again for its user, which makes room in turn.
	before := calls.Load()
	if _, outcome, _ := c.Get(context.Background(), "user-0", "key-0", always, fetchSized(clk, &calls, 300)); outcome != Miss || calls.Load() != before+1 {
		t.Errorf("a dropped value: outcome %s, %d fetches", outcome, calls.Load()-before)
	}
	if c.Bytes() > 1000 {
		t.Errorf("%d bytes cached, budget 1000", c.Bytes())
	}
}

func TestAValueLargerThanTheBudgetIsNotKept(t *testing.T) {
	c, clk := newBudgetCache(1000)
	var calls atomic.Int32
	if _, _, err := c.Get(context.Background(), "small", "small", always, fetchSized(clk, &calls, 400)); err != nil {
		t.Fatal(err)
	}
	tok, _, err := c.Get(context.Background(), "big", "big", always, fetchSized(clk, &calls, 1001))
	if err != nil || len(tok.value) != 1001 {
		t.Fatalf("the caller still gets its value: %d bytes, %v", len(tok.value), err)
	}
	if c.Len() != 1 || c.Bytes() != 400 {
		t.Errorf("%d entries, %d bytes; want only the small one (400)", c.Len(), c.Bytes())
	}
}

func TestTheByteCountFollowsReplacementsExpiryAndRelease(t *testing.T) {
	c, clk := newBudgetCache(10_000)
	var calls atomic.Int32
	get := func(user, key string, size int, fresh func(token) bool) {
		t.Helper()
		if _, _, err := c.Get(context.Background(), user, key, fresh, fetchSized(clk, &calls, size)); err != nil {
			t.Fatal(err)
		}
	}
	get("a", "k1", 100, always)
	get("b", "k1", 0, always) // a hit: nothing new stored
	get("c", "k2", 200, always)
	if c.Bytes() != 300 {
		t.Fatalf("%d bytes, want 300", c.Bytes())
	}
	get("a", "k1", 150, func(token) bool { return false }) // a refresh replaces the value
	if c.Bytes() != 350 {
		t.Fatalf("after a replacement: %d bytes, want 350", c.Bytes())
	}
	c.Forget("c") // k2's last user
	if c.Bytes() != 150 || c.Len() != 1 {
		t.Fatalf("after a release: %d bytes in %d entries, want 150 in 1", c.Bytes(), c.Len())
	}
	clk.SetTime(t0.Add(2 * time.Hour)) // k1 expires and is dropped when looked up
	if _, ok := c.Lookup("a", "k1", always); ok || c.Bytes() != 0 || c.Len() != 0 {
		t.Fatalf("after expiry: cached %v, %d bytes in %d entries", ok, c.Bytes(), c.Len())
	}
}

func TestNoBudgetWithoutSize(t *testing.T) {
	c := New(Options[token]{MaxBytes: 1})
	var calls atomic.Int32
	clk := clocktesting.NewFakePassiveClock(t0)
	for i := range 3 {
		if _, _, err := c.Get(context.Background(), fmt.Sprint(i), fmt.Sprint(i), always, fetchSized(clk, &calls, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if c.Len() != 3 {
		t.Errorf("%d entries, want 3: MaxBytes without Size bounds nothing", c.Len())
	}
}
