package proxy

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestReplayBody(t *testing.T) {
	t.Parallel()
	const body = "0123456789abcdefghij"
	tests := []struct {
		desc       string
		limit      int64
		firstRead  int // bytes the first attempt reads before failing
		wantReplay bool
	}{
		{"nothing read yet: any size replays", 4, 0, true},
		{"read within the limit", 16, 10, true},
		{"read exactly the limit", 10, 10, true},
		{"read past the limit", 8, 10, false},
		{"whole body kept", 64, len(body), true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			b := newReplayBody(strings.NewReader(body), tc.limit)
			first := b.reader()
			if _, err := io.ReadFull(first, make([]byte, tc.firstRead)); err != nil {
				t.Fatalf("first read: %v", err)
			}
			if got := b.replayable(); got != tc.wantReplay {
				t.Fatalf("replayable: got %v, want %v", got, tc.wantReplay)
			}
			second := b.reader()
			if _, err := first.Read(make([]byte, 1)); !errors.Is(err, errSuperseded) {
				t.Errorf("the first attempt's reader still reads after a retry: %v", err)
			}
			got, err := io.ReadAll(second)
			if !tc.wantReplay {
				if !errors.Is(err, errNotReplayable) {
					t.Errorf("replaying a body past the limit: got %v, want errNotReplayable", err)
				}
				return
			}
			if err != nil || string(got) != body {
				t.Errorf("replayed body: got %q, %v; want %q", got, err, body)
			}
		})
	}
}

func TestRetryBudget(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	b := newRetryBudget(20, 1, clock)
	// Over one quiet window the floor alone allows 10 retries (1/s × 10s).
	allowed := 0
	for range 100 {
		if b.allow() {
			allowed++
		}
	}
	if allowed != 10 {
		t.Errorf("floor: got %d retries, want 10", allowed)
	}
	// 1000 requests in the window raise the cap to 20% of them plus the floor.
	for range 1000 {
		b.request(clock())
	}
	for range 1000 {
		if b.allow() {
			allowed++
		}
	}
	if want := 200 + 10; allowed != want {
		t.Errorf("share: got %d retries in all, want %d", allowed, want)
	}
	// Ten seconds later the window has forgotten everything.
	now = now.Add(10 * time.Second)
	n := 0
	for range 100 {
		if b.allow() {
			n++
		}
	}
	if n != 10 {
		t.Errorf("after the window: got %d retries, want 10", n)
	}
}
