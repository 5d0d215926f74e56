package renewal

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func dur(d time.Duration) *time.Duration { return &d }
func pct(p int32) *int32                 { return &p }

// at is t0 plus d, to keep the tables readable.
func at(d time.Duration) time.Time { return t0.Add(d) }

func TestRefreshTime(t *testing.T) {
	const minRemaining = 2 * time.Minute
	tests := []struct {
		name            string
		issued, expires time.Time
		hint            time.Time
		policy          Policy
		want            time.Time
		now             time.Time // when set, also check Due(now, got)
		wantDue         bool
		noMinRemaining  bool
	}{
		{
			name:   "a one hour token refreshes when a third of it is left",
			issued: t0, expires: at(time.Hour), want: at(40 * time.Minute),
		},
		{
			name:   "token with 10 minutes left and renewBefore 15m is due now",
			issued: t0, expires: at(time.Hour), policy: Policy{RenewBefore: dur(15 * time.Minute)},
			want: at(45 * time.Minute), now: at(50 * time.Minute), wantDue: true,
		},
		{
			name:   "token with 20 minutes left and renewBefore 15m is not due yet",
			issued: t0, expires: at(time.Hour), policy: Policy{RenewBefore: dur(15 * time.Minute)},
			want: at(45 * time.Minute), now: at(40 * time.Minute), wantDue: false,
		},
		{
			name:   "renewBefore longer than the lifetime falls back to the default",
			issued: t0, expires: at(time.Hour), policy: Policy{RenewBefore: dur(2 * time.Hour)},
			want: at(40 * time.Minute),
		},
		{
			name:   "renewBefore equal to the lifetime falls back to the default",
			issued: t0, expires: at(time.Hour), policy: Policy{RenewBefore: dur(time.Hour)},
			want: at(40 * time.Minute),
		},
		{
			name:   "renewBeforePercentage 50 refreshes at half the lifetime",
			issued: t0, expires: at(time.Hour), policy: Policy{RenewBeforePercentage: pct(50)},
			want: at(30 * time.Minute),
		},
		{
			name:   "renewBefore wins over renewBeforePercentage",
			issued: t0, expires: at(time.Hour), policy: Policy{RenewBefore: dur(10 * time.Minute), RenewBeforePercentage: pct(50)},
			want: at(50 * time.Minute),
		},
		{
			name:   "renewBeforePercentage outside 1 to 90 is ignored",
			issued: t0, expires: at(time.Hour), policy: Policy{RenewBeforePercentage: pct(95)},
			want: at(40 * time.Minute),
		},
		{
			name:   "a refresh hint earlier than two thirds wins",
			issued: t0, expires: at(time.Hour), hint: at(30 * time.Minute),
			want: at(30 * time.Minute),
		},
		{
			name:   "a refresh hint later than two thirds is ignored",
			issued: t0, expires: at(time.Hour), hint: at(50 * time.Minute),
			want: at(40 * time.Minute),
		},
		{
			name:   "a refresh hint earlier than renewBefore wins too",
			issued: t0, expires: at(time.Hour), hint: at(20 * time.Minute), policy: Policy{RenewBefore: dur(5 * time.Minute)},
			want: at(20 * time.Minute),
		},
		{
			name:   "a refresh hint before issuance is stale and ignored",
			issued: t0, expires: at(time.Hour), hint: at(-time.Hour),
			want: at(40 * time.Minute),
		},
		{
			name:   "the minimum interval holds back a hint one second after issuance",
			issued: t0, expires: at(time.Hour), hint: at(time.Second), policy: Policy{MinInterval: 30 * time.Second},
			want: at(30 * time.Second),
		},
		{
			name:   "the minimum interval is at most half the lifetime",
			issued: t0, expires: at(20 * time.Second), hint: at(time.Second), policy: Policy{MinInterval: 30 * time.Second}, noMinRemaining: true,
			want: at(10 * time.Second),
		},
		{
			name:   "a refresh hint at the issue time is ignored",
			issued: t0, expires: at(time.Hour), hint: t0,
			want: at(40 * time.Minute),
		},
		{
			name:   "a 10 s token refreshes at 5 s",
			issued: t0, expires: at(10 * time.Second), want: at(5 * time.Second),
		},
		{
			name:   "a token as long as minRemaining refreshes at half its lifetime",
			issued: t0, expires: at(2 * time.Minute), want: at(time.Minute),
		},
		{
			name:   "a 3 minute token still keeps 2 minutes for propagation",
			issued: t0, expires: at(3 * time.Minute), want: at(time.Minute),
		},
		{
			name:   "renewBefore shorter than minRemaining is raised to it",
			issued: t0, expires: at(time.Hour), policy: Policy{RenewBefore: dur(time.Minute)},
			want: at(58 * time.Minute),
		},
		{
			name:   "without minRemaining renewBefore 1m is kept",
			issued: t0, expires: at(time.Hour), policy: Policy{RenewBefore: dur(time.Minute)},
			want: at(59 * time.Minute), noMinRemaining: true,
		},
		{
			name:   "a token that expires when issued refreshes at once",
			issued: t0, expires: t0, want: t0, now: t0, wantDue: true,
		},
		{
			name:   "the refresh time is truncated to whole seconds",
			issued: at(700 * time.Millisecond), expires: at(time.Hour + 700*time.Millisecond),
			want: at(40 * time.Minute),
		},
		{
			name:   "a sub-second hint is truncated to whole seconds",
			issued: t0, expires: at(time.Hour), hint: at(10*time.Minute + 999*time.Millisecond),
			want: at(10 * time.Minute),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.policy
			if !tt.noMinRemaining {
				p.MinRemaining = minRemaining
			}
			got := RefreshTime(tt.issued, tt.expires, tt.hint, p)
			if !got.Equal(tt.want) {
				t.Fatalf("RefreshTime = %s, want %s", got.Sub(t0), tt.want.Sub(t0))
			}
			if tt.now.IsZero() {
				return
			}
			if due, _ := Due(tt.now, got); due != tt.wantDue {
				t.Errorf("Due(%s) = %v, want %v", tt.now.Sub(t0), due, tt.wantDue)
			}
		})
	}
}

func TestRefreshJitter(t *testing.T) {
	tests := []struct {
		name             string
		expires          time.Time
		earliest, latest time.Time
	}{
		{"jitter on a one hour token is at most one minute", at(time.Hour), at(39 * time.Minute), at(40 * time.Minute)},
		{"jitter on a ten minute token is at most 5 percent of it", at(10 * time.Minute), at(6*time.Minute + 10*time.Second), at(6*time.Minute + 40*time.Second)},
		{"jitter on a day long token is at most one minute", at(24 * time.Hour), at(16*time.Hour - time.Minute), at(16 * time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			distinct := map[time.Time]bool{}
			for i := range 200 {
				p := Policy{MinRemaining: 2 * time.Minute, JitterSeed: fmt.Sprintf("ns/tr-%d", i)}
				got := RefreshTime(t0, tt.expires, time.Time{}, p)
				if got.Before(tt.earliest) || got.After(tt.latest) {
					t.Fatalf("seed %s: %s outside [%s, %s]", p.JitterSeed, got.Sub(t0), tt.earliest.Sub(t0), tt.latest.Sub(t0))
				}
				if again := RefreshTime(t0, tt.expires, time.Time{}, p); !again.Equal(got) {
					t.Fatalf("seed %s: %s then %s, want stable", p.JitterSeed, got.Sub(t0), again.Sub(t0))
				}
				distinct[got] = true
			}
			// 200 seeds over a 30 s or 60 s window must spread, not bunch.
			if len(distinct) < 20 {
				t.Errorf("only %d distinct refresh times for 200 seeds", len(distinct))
			}
		})
	}
}

func TestJitterNeverBreaksTheFloor(t *testing.T) {
	p := Policy{MinRemaining: 2 * time.Minute, RenewBefore: dur(time.Minute), JitterSeed: "ns/a"}
	if got := RefreshTime(t0, at(time.Hour), time.Time{}, p); got.After(at(58 * time.Minute)) {
		t.Errorf("RefreshTime = %s, want no later than 58m", got.Sub(t0))
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		name       string
		attempts   int32
		retryAfter time.Duration
		want       time.Duration
	}{
		{"first failure waits 5s", 1, 0, 5 * time.Second},
		{"zero attempts waits like the first", 0, 0, 5 * time.Second},
		{"second failure waits 10s", 2, 0, 10 * time.Second},
		{"third failure waits 20s", 3, 0, 20 * time.Second},
		{"sixth failure waits 160s", 6, 0, 160 * time.Second},
		{"seventh failure is capped at 5m", 7, 0, 5 * time.Minute},
		{"thousands of failures stay capped without overflow", 1 << 30, 0, 5 * time.Minute},
		{"a longer Retry-After wins", 1, 30 * time.Second, 30 * time.Second},
		{"a shorter Retry-After is ignored", 3, time.Second, 20 * time.Second},
		{"Retry-After beyond the cap is honored", 9, 10 * time.Minute, 10 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Backoff(tt.attempts, tt.retryAfter, ""); got != tt.want {
				t.Errorf("Backoff = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestBackoffJitter(t *testing.T) {
	for attempts := int32(1); attempts <= 10; attempts++ {
		nominal := Backoff(attempts, 0, "")
		distinct := map[time.Duration]bool{}
		for i := range 50 {
			seed := fmt.Sprintf("ns/tr-%d", i)
			got := Backoff(attempts, 0, seed)
			if got > nominal || got < nominal*9/10 {
				t.Fatalf("attempt %d seed %s: %s outside [90%%, 100%%] of %s", attempts, seed, got, nominal)
			}
			if again := Backoff(attempts, 0, seed); again != got {
				t.Fatalf("attempt %d seed %s: %s then %s, want stable", attempts, seed, got, again)
			}
			distinct[got] = true
		}
		if len(distinct) < 25 {
			t.Errorf("attempt %d: only %d distinct backoffs for 50 seeds", attempts, len(distinct))
		}
	}
	if got := Backoff(1, time.Minute, "ns/a"); got != time.Minute {
		t.Errorf("jittered backoff below Retry-After: %s", got)
	}
}

func TestDue(t *testing.T) {
	tests := []struct {
		name      string
		now       time.Time
		refreshAt time.Time
		wantDue   bool
		wantWait  time.Duration
	}{
		{"a refresh in 90 seconds is not due", t0, at(90 * time.Second), false, 90 * time.Second},
		{"a refresh planned for now is due", t0, t0, true, 0},
		{"a refresh planned in the past is due", at(time.Minute), t0, true, 0},
		{"a refresh never planned is due", t0, time.Time{}, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			due, wait := Due(tt.now, tt.refreshAt)
			if due != tt.wantDue || wait != tt.wantWait {
				t.Errorf("Due = %v, %s; want %v, %s", due, wait, tt.wantDue, tt.wantWait)
			}
		})
	}
}
