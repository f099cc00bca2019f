package main

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// noiseNote is the summary's last sentence: what the setup's noise is,
// from a run of one build against itself (docs/performance.md, "Comparing
// two builds").
const noiseNote = "Differences within about ±2% are this setup's noise: one build against itself measured B/A " +
	"0.982 to 1.012 (median 0.999) in 5 rounds, and CPU per request 0.997 to 1.018, on this 2-core VM (docs/performance.md)."

// buildSummary is one build's medians over the rounds.
type buildSummary struct {
	RPS   float64 `json:"median_requests_per_second"`
	P50ms float64 `json:"median_p50_ms"`
	P99ms float64 `json:"median_p99_ms"`
	CPUus float64 `json:"median_cpu_us_per_request"`
}

// summary is what the rounds add up to.
type summary struct {
	A      buildSummary `json:"a"`
	B      buildSummary `json:"b"`
	Ratios []float64    `json:"ratios_b_over_a"`
	// The median, least, greatest and geometric mean of Ratios; the
	// geometric mean of an even number of rounds cancels the start order's
	// bias exactly.
	MedianRatio  float64 `json:"median_ratio"`
	MinRatio     float64 `json:"min_ratio"`
	MaxRatio     float64 `json:"max_ratio"`
	GeoMeanRatio float64 `json:"geometric_mean_ratio"`
	// CPU per request, B over A: each round's and their median.
	CPURatios      []float64 `json:"cpu_ratios_b_over_a"`
	MedianCPURatio float64   `json:"median_cpu_ratio"`
}

// summarize returns the medians and ratios of rounds.
func summarize(rounds []*roundResult) summary {
	var s summary
	per := func(pick func(*roundResult) *sideResult) buildSummary {
		var rps, p50, p99, cpu []float64
		for _, r := range rounds {
			side := pick(r)
			rps = append(rps, side.Wrk.OKRPS)
			p50 = append(p50, side.Wrk.P50ms)
			p99 = append(p99, side.Wrk.P99ms)
			cpu = append(cpu, side.CPUus)
		}
		return buildSummary{RPS: median(rps), P50ms: median(p50), P99ms: median(p99), CPUus: median(cpu)}
	}
	s.A = per(func(r *roundResult) *sideResult { return r.A })
	s.B = per(func(r *roundResult) *sideResult { return r.B })
	for _, r := range rounds {
		s.Ratios = append(s.Ratios, r.Ratio)
		s.CPURatios = append(s.CPURatios, r.CPURatio)
	}
	s.MedianRatio = median(s.Ratios)
	s.MinRatio, s.MaxRatio = minMax(s.Ratios)
	s.GeoMeanRatio = geoMean(s.Ratios)
	s.MedianCPURatio = median(s.CPURatios)
	return s
}

// finiteOnly returns the finite values of v, in order.
func finiteOnly(v []float64) []float64 {
	out := make([]float64, 0, len(v))
	for _, x := range v {
		if finite(x) {
			out = append(out, x)
		}
	}
	return out
}

// median returns the median of the finite values of v (the mean of the
// middle two for an even count), NaN when there is none.
func median(v []float64) float64 {
	s := finiteOnly(v)
	if len(s) == 0 {
		return math.NaN()
	}
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// minMax returns the least and greatest finite values of v, NaN and NaN
// when there is none.
func minMax(v []float64) (float64, float64) {
	s := finiteOnly(v)
	if len(s) == 0 {
		return math.NaN(), math.NaN()
	}
	return slices.Min(s), slices.Max(s)
}

// geoMean returns the geometric mean of the finite, positive values of v,
// NaN when there is none.
func geoMean(v []float64) float64 {
	var sum float64
	n := 0
	for _, x := range finiteOnly(v) {
		if x > 0 {
			sum += math.Log(x)
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return math.Exp(sum / float64(n))
}

// ratio returns b/a, NaN when a is not positive or either is not finite.
func ratio(b, a float64) float64 {
	if a <= 0 || !finite(a) || !finite(b) {
		return math.NaN()
	}
	return b / a
}

// errNoRequests is returned by cpuPerRequest when no request was served.
var errNoRequests = errors.New("no request was answered in the measured window")

// cpuPerRequest returns cpu per request in microseconds.
func cpuPerRequest(cpu time.Duration, requests int64) (float64, error) {
	if requests <= 0 {
		return 0, errNoRequests
	}
	if cpu < 0 {
		return 0, fmt.Errorf("the CPU time went back by %v: a process of the group exited", -cpu)
	}
	return float64(cpu) / float64(time.Microsecond) / float64(requests), nil
}

// text is the report's summary, for stdout.
func (rep *report) text() string {
	var b strings.Builder
	s := rep.Summary
	st := rep.Settings
	fmt.Fprintf(&b, "\nabtest: %d rounds of %s, wrk -t%d -c%d on each gateway at once, GET %s, access log %s\n",
		st.Rounds, st.Duration, st.Threads, st.Connections, st.Path, st.AccessLog)
	fmt.Fprintf(&b, "A: %s (%s)\nB: %s (%s)\n", rep.A.Bin, rep.A.Version, rep.B.Bin, rep.B.Version)
	fmt.Fprintf(&b, "%s\n\n", rep.Machine.Describe())
	fmt.Fprintf(&b, "%-5s %14s %9s %9s %9s\n", "build", "req/s", "p50", "p99", "CPU/req")
	for _, r := range []struct {
		name string
		s    buildSummary
	}{{"A", s.A}, {"B", s.B}} {
		fmt.Fprintf(&b, "%-5s %14s %9s %9s %9s\n", r.name, thousands(r.s.RPS), ms(r.s.P50ms), ms(r.s.P99ms), oneDecimal(r.s.CPUus)+" µs")
	}
	fmt.Fprintf(&b, "(medians of the rounds)\n\n")
	var per []string
	for _, r := range rep.Rounds {
		per = append(per, fmt.Sprintf("%.3f (%s first)", r.Ratio, r.First))
	}
	fmt.Fprintf(&b, "B/A requests/s per round: %s\n", strings.Join(per, ", "))
	fmt.Fprintf(&b, "B/A requests/s: median %.3f, min %.3f, max %.3f, geometric mean %.3f\n",
		s.MedianRatio, s.MinRatio, s.MaxRatio, s.GeoMeanRatio)
	cmin, cmax := minMax(s.CPURatios)
	fmt.Fprintf(&b, "B/A CPU per request: median %.3f, min %.3f, max %.3f\n", s.MedianCPURatio, cmin, cmax)
	fmt.Fprintf(&b, "%s\n", noiseNote)
	return b.String()
}

// thousands formats v rounded to a whole number with commas: 14,081.
func thousands(v float64) string {
	if !finite(v) {
		return "-"
	}
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// ms formats milliseconds: 6.1 ms, 0.85 ms under 1 ms.
func ms(v float64) string {
	switch {
	case !finite(v):
		return "-"
	case v < 1:
		return fmt.Sprintf("%.2f ms", v)
	}
	return fmt.Sprintf("%.1f ms", v)
}

// oneDecimal formats v with one decimal.
func oneDecimal(v float64) string {
	if !finite(v) {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}
