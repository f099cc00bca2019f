package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestParseHostile feeds configs built to make decoding or validation
// expensive: aliases that multiply, and floods of problems. They must
// finish (quickly: the test would time out otherwise) with a bounded
// list of problems.
func TestParseHostile(t *testing.T) {
	t.Parallel()
	aliased := func(n int) string {
		var b strings.Builder
		b.WriteString("x-t: &t {url: 'ftp://a', weight: bad}\nx-p: &p {targets: [")
		for j := range n {
			if j > 0 {
				b.WriteString(",")
			}
			b.WriteString("*t")
		}
		b.WriteString("]}\npools: {")
		for j := range n {
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "p%d: *p", j)
		}
		b.WriteString("}\n")
		return b.String()
	}
	nested := func(depth, width int) string {
		var b strings.Builder
		b.WriteString("x-0: &a0 {url: http://a}\n")
		for i := 1; i <= depth; i++ {
			fmt.Fprintf(&b, "x-%d: &a%d [", i, i)
			for j := range width {
				if j > 0 {
					b.WriteString(",")
				}
				fmt.Fprintf(&b, "*a%d", i-1)
			}
			b.WriteString("]\n")
		}
		fmt.Fprintf(&b, "pools:\n  p:\n    targets: *a%d\n", depth)
		return b.String()
	}
	listeners := func(n int) string {
		var b strings.Builder
		b.WriteString("listeners:\n")
		for range n {
			b.WriteString("  - address: 0.0.0.0:80\n")
		}
		return b.String()
	}
	routes := func(n int) string {
		var b strings.Builder
		b.WriteString("pools:\n")
		for i := range 2000 {
			fmt.Fprintf(&b, "  pool%d: {targets: [{url: 'http://a'}]}\n", i)
		}
		b.WriteString("routes:\n")
		for i := range n {
			fmt.Fprintf(&b, "  - {pool: poo%d, path: /%d/}\n", i, i)
		}
		return b.String()
	}
	tests := []struct {
		desc, yaml string
	}{
		{"2000 pools aliasing one of 2000 aliased targets", aliased(2000)},
		{"aliases of aliases, 10 deep", nested(10, 10)},
		{"20000 listeners on one address", listeners(20000)},
		{"5000 routes to misspelled pools among 2000", routes(5000)},
		{"a 1MB value", "access_log: [" + strings.Repeat("x", 1<<20) + "]\nadmin: {address: " + strings.Repeat("y", 1<<20) + "}\n"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := ParseValid("hostile.yaml", []byte(tc.yaml))
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("ParseValid: got %v, want an *Errors", err)
			}
			if n := len(errs.List); n > maxErrors+1 {
				t.Errorf("ParseValid: got %d problems, want at most %d", n, maxErrors+1)
			}
			for _, e := range errs.List {
				if len(e.Problem) > maxProblemLen || len(e.Field) > maxProblemLen {
					t.Fatalf("problem longer than %d bytes: %.100s...", maxProblemLen, e.Error())
				}
			}
		})
	}
}
