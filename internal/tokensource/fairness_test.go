package tokensource

import (
	"fmt"
	"testing"
	"time"
)

var fairNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func TestCallSlotsBoundEachNamespaceAndFreeOnRelease(t *testing.T) {
	s := NewCallSlots(2)
	r1, _ := s.TryAcquire("a", fairNow)
	r2, _ := s.TryAcquire("a", fairNow.Add(time.Second))
	if r1 == nil || r2 == nil {
		t.Fatal("the first two calls of a namespace got no slot")
	}
	r3, busySince := s.TryAcquire("a", fairNow.Add(2*time.Second))
	if r3 != nil {
		t.Fatal("a third call under way in one namespace")
	}
	if !busySince.Equal(fairNow.Add(time.Second)) {
		t.Errorf("busy since %v, want the start of the newest call %v", busySince, fairNow.Add(time.Second))
	}
	if rb, _ := s.TryAcquire("b", fairNow); rb == nil {
		t.Error("another namespace waits for a's slots")
	} else {
		rb()
	}
	r1()
	again, _ := s.TryAcquire("a", fairNow) // the same start time as r1's call
	if again == nil {
		t.Fatal("a released slot is not free again")
	}
	r1() // a second release frees nothing more
	if r, _ := s.TryAcquire("a", fairNow.Add(3*time.Second)); r != nil {
		t.Error("a double release freed another call's slot")
	}
	again()
	r2()
	if n := len(s.inUse); n != 0 {
		t.Errorf("%d namespaces left in the map with no call under way", n)
	}
	var none *CallSlots
	if r, _ := none.TryAcquire("a", fairNow); r == nil {
		t.Error("no limit refuses a call")
	}
}

func TestCallRateGivesOutTurnsAtTheRateAfterTheBurst(t *testing.T) {
	c := NewCallRate(2, 3)
	for i := range 3 {
		if ok, _, _ := c.Take("a", fmt.Sprint("tr-", i), fairNow); !ok {
			t.Fatalf("call %d of the burst refused", i)
		}
	}
	ok, turn4, since := c.Take("a", "tr-3", fairNow)
	if ok || !turn4.Equal(fairNow.Add(500*time.Millisecond)) || !since.Equal(fairNow) {
		t.Fatalf("the 4th call: ok %v, turn %v, limited since %v; want a turn 0.5 s later", ok, turn4, since)
	}
	if _, turn5, _ := c.Take("a", "tr-4", fairNow); !turn5.Equal(fairNow.Add(time.Second)) {
		t.Errorf("the 5th call's turn %v, want 1 s later: turns are not shared", turn5)
	}
	if ok, again, _ := c.Take("a", "tr-3", fairNow.Add(100*time.Millisecond)); ok || !again.Equal(turn4) {
		t.Errorf("coming back early: ok %v, turn %v; want the same turn %v", ok, again, turn4)
	}
	if ok, _, _ := c.Take("b", "tr-0", fairNow); !ok {
		t.Error("another namespace waits for a's rate")
	}
	if ok, _, _ := c.Take("a", "tr-3", turn4); !ok {
		t.Error("the reserved turn is refused")
	}
	if ok, _, _ := c.Take("a", "tr-9", turn4); ok {
		t.Error("a newcomer took a token the turns had already promised")
	}
	var none *CallRate
	if ok, _, _ := none.Take("a", "x", fairNow); !ok {
		t.Error("no limit refuses a call")
	}
}

func TestCallRateBoundsItsTurnsAndForgetsIdleNamespaces(t *testing.T) {
	c := NewCallRate(1, 1)
	for i := range 100 {
		c.Take("a", fmt.Sprint("tr-", i), fairNow)
	}
	if n := len(c.buckets["a"].turns); n > int(maxRateWait/time.Second) {
		t.Errorf("%d turns given out at 1 per second, more than %s ahead", n, maxRateWait)
	}
	if ok, retry, _ := c.Take("a", "late", fairNow); ok || !retry.Equal(fairNow.Add(maxRateWait)) {
		t.Errorf("past the bound: ok %v, retry %v; want a retry %s later without a turn", ok, retry, maxRateWait)
	}
	for i := range 1000 {
		c.Take(fmt.Sprint("ns-", i), "tr", fairNow)
	}
	// Long after every turn, the next call scans: only its own namespace remains.
	c.Take("z", "tr", fairNow.Add(10*time.Minute))
	if n := len(c.buckets); n != 1 {
		t.Errorf("%d buckets kept after the namespaces went idle, want 1", n)
	}
}

func TestCallRateDefaultsServeAThousandRequestsInAboutFortyFiveSeconds(t *testing.T) {
	c := NewCallRate(20, 100)
	next := map[string]time.Time{}
	for i := range 1000 {
		next[fmt.Sprint("tr-", i)] = fairNow
	}
	var last time.Time
	for len(next) > 0 {
		for caller, at := range next {
			ok, retry, _ := c.Take("big", caller, at)
			if ok {
				delete(next, caller)
				if at.After(last) {
					last = at
				}
				continue
			}
			next[caller] = retry
			if floor := at.Add(time.Second); retry.Before(floor) {
				next[caller] = floor // a requeue waits at least a second
			}
		}
	}
	if took := last.Sub(fairNow); took > 46*time.Second || took < 44*time.Second {
		t.Errorf("1,000 calls took %s, want about 45 s", took)
	}
}
