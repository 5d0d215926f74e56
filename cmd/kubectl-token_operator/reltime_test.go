package main

import (
	"testing"
	"time"
)

func TestRelTime(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "now"},
		{500 * time.Millisecond, "now"},
		{-999 * time.Millisecond, "now"},
		{time.Second, "in 1s"},
		{-45 * time.Second, "45s ago"},
		{90 * time.Second, "in 1m30s"},
		{-3 * time.Minute, "3m ago"},
		{3*time.Minute + 59*time.Second + 900*time.Millisecond, "in 3m59s"},
		{41*time.Minute + 30*time.Second, "in 41m"},
		{-59 * time.Minute, "59m ago"},
		{time.Hour, "in 1h"},
		{2*time.Hour + 5*time.Minute + 59*time.Second, "in 2h5m"},
		{-(23*time.Hour + 59*time.Minute), "23h59m ago"},
		{24 * time.Hour, "in 1d"},
		{-(3*24*time.Hour + 4*time.Hour + 30*time.Minute), "3d4h ago"},
		{400 * 24 * time.Hour, "in 400d"},
	} {
		if got := relTime(now.Add(tc.d), now); got != tc.want {
			t.Errorf("relTime(now%+v) = %q, want %q", tc.d, got, tc.want)
		}
	}
	if got := relTime(time.Time{}, now); got != "-" {
		t.Errorf("relTime(zero) = %q, want -", got)
	}
}
