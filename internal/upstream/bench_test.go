package upstream

import (
	"fmt"
	"testing"

	"github.com/gatewise/gatewise/internal/config"
)

// BenchmarkPick measures one pick (and the Begin and end of its request)
// from a pool of 10 targets of mixed weights, by policy, on the first try
// and on a retry.
func BenchmarkPick(b *testing.B) {
	for _, policy := range []string{"p2c_ewma", "round_robin", "least_requests", "hash"} {
		for _, retry := range []bool{false, true} {
			name := policy
			if retry {
				name += "/retry"
			}
			b.Run(name, func(b *testing.B) {
				pc := &config.Pool{Name: "bench", Policy: policy}
				for i := range 10 {
					pc.Targets = append(pc.Targets, config.Target{URL: fmt.Sprintf("http://10.0.0.%d:80", i+1), Weight: 1 + i%3})
				}
				p, err := NewPool(pc, config.Limits{}, PoolOptions{})
				if err != nil {
					b.Fatal(err)
				}
				defer p.Close()
				r := request("192.0.2.7")
				var tried []*Target
				if retry {
					tried = p.Targets[3:4]
				}
				b.ReportAllocs()
				for b.Loop() {
					t, _ := p.Pick(r, tried)
					t.Begin()(success)
				}
			})
		}
	}
}

// BenchmarkPickParallel measures picks from many goroutines at once.
func BenchmarkPickParallel(b *testing.B) {
	for _, policy := range []string{"p2c_ewma", "round_robin", "least_requests", "hash"} {
		b.Run(policy, func(b *testing.B) {
			pc := &config.Pool{Name: "bench", Policy: policy}
			for i := range 10 {
				pc.Targets = append(pc.Targets, config.Target{URL: fmt.Sprintf("http://10.0.0.%d:80", i+1), Weight: 1 + i%3})
			}
			p, err := NewPool(pc, config.Limits{}, PoolOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := request("192.0.2.7")
				for pb.Next() {
					t, _ := p.Pick(r, nil)
					t.Begin()(success)
				}
			})
		})
	}
}
