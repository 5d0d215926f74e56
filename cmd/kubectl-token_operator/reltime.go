package main

import (
	"fmt"
	"time"
)

// relTime renders t relative to now: "in 41m", "3m ago", "now", or "-" for
// the zero time.
func relTime(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := t.Sub(now)
	switch {
	case d > -time.Second && d < time.Second:
		return "now"
	case d > 0:
		return "in " + formatAge(d)
	}
	return formatAge(-d) + " ago"
}

// formatAge renders a positive duration in its two largest units, rounded
// down: "45s", "3m20s", "41m", "2h5m", "3d4h".
func formatAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 10*60:
		return pair(s/60, "m", s%60, "s")
	case s < 60*60:
		return fmt.Sprintf("%dm", s/60)
	case s < 24*60*60:
		return pair(s/3600, "h", s%3600/60, "m")
	}
	return pair(s/86400, "d", s%86400/3600, "h")
}

// pair renders "<a><unitA><b><unitB>", leaving out a zero b.
func pair(a int64, unitA string, b int64, unitB string) string {
	if b == 0 {
		return fmt.Sprintf("%d%s", a, unitA)
	}
	return fmt.Sprintf("%d%s%d%s", a, unitA, b, unitB)
}
