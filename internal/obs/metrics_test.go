package obs

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestSeriesMapMakesEachOnce checks the lock-free series lookup under
// concurrent use: every key's handle is made once, every goroutine gets
// that same handle, and a series added later does not lose the earlier
// ones (each addition copies the map).
func TestSeriesMapMakesEachOnce(t *testing.T) {
	t.Parallel()
	var s seriesMap[int, *int]
	var made atomic.Int64
	const keys, workers = 64, 8
	got := make([][keys]*int, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range keys {
				k := (i + w*7) % keys // each worker in its own order
				got[w][k] = s.get(k, func() *int {
					made.Add(1)
					v := k
					return &v
				})
			}
		})
	}
	wg.Wait()
	if n := made.Load(); n != keys {
		t.Errorf("%d handles made for %d keys, want one each", n, keys)
	}
	for k := range keys {
		for w := range workers {
			if got[w][k] != got[0][k] || *got[w][k] != k {
				t.Fatalf("key %d: worker %d got another handle", k, w)
			}
		}
		if again := s.get(k, func() *int { t.Fatalf("key %d made again", k); return nil }); again != got[0][k] {
			t.Errorf("key %d: a later lookup got another handle", k)
		}
	}
}
