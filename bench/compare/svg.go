package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// chartRow is one bar of the chart.
type chartRow struct {
	label string
	rps   float64
	p99   float64
	logs  bool
}

// svg returns the chart of the small-GET scenario: two panels of
// horizontal bars, requests per second and p99 latency, a row per
// contender (the access-log-on runs in a lighter shade).
func (r *report) svg() string {
	var rows []chartRow
	for _, run := range r.rowsOf(scenSmall) {
		if run.Err != "" || run.Wrk == nil {
			continue
		}
		rows = append(rows, chartRow{label: run.label(), rps: run.Wrk.OKRPS, p99: run.Wrk.P99ms, logs: run.LogsOn})
	}
	return renderChart(rows, r.Started.Format("2006-01-02"))
}

// Chart geometry, in pixels.
const (
	rowH       = 26
	barH       = 18
	labelW     = 150
	panelW     = 300
	panelGap   = 40
	topPad     = 64
	bottomPad  = 36
	valueSpace = 80
	chartW     = labelW + 2*(panelW+valueSpace) + panelGap + 16
)

// renderChart draws the rows; date goes in the title.
func renderChart(rows []chartRow, date string) string {
	h := topPad + max(len(rows), 1)*rowH + bottomPad
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="13">
<title>Small keep-alive GETs: requests per second and p99 latency per contender</title>
<rect width="100%%" height="100%%" fill="#ffffff"/>
<text x="16" y="24" font-size="16" font-weight="bold" fill="#222">Small keep-alive GETs (bench/run, %s)</text>
`, chartW, h, chartW, h, html.EscapeString(date))
	maxRPS, maxP99 := 0.0, 0.0
	for _, r := range rows {
		maxRPS = math.Max(maxRPS, r.rps)
		maxP99 = math.Max(maxP99, r.p99)
	}
	panels := []struct {
		title string
		x     int
		max   float64
		value func(chartRow) float64
		text  func(float64) string
		color string
		light string
	}{
		{"requests/s (higher is better)", labelW, maxRPS, func(r chartRow) float64 { return r.rps }, func(v float64) string { return num(v) }, "#2f6db5", "#9dbde3"},
		{"p99 latency (lower is better)", labelW + panelW + valueSpace + panelGap, maxP99, func(r chartRow) float64 { return r.p99 }, ms, "#d9822b", "#f0c699"},
	}
	for _, p := range panels {
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold" fill="#333">%s</text>
<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999"/>
`, p.x, topPad-14, html.EscapeString(p.title), p.x, topPad-4, p.x, topPad+len(rows)*rowH)
		for i, r := range rows {
			y := topPad + i*rowH
			v := p.value(r)
			w := 0.0
			if p.max > 0 {
				w = v / p.max * panelW
			}
			fill := p.color
			if r.logs {
				fill = p.light
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>
<text x="%.1f" y="%d" fill="#222">%s</text>
`, p.x, y+(rowH-barH)/2, w, barH, fill, float64(p.x)+w+6, y+rowH/2+5, html.EscapeString(p.text(v)))
		}
	}
	for i, r := range rows {
		y := topPad + i*rowH + rowH/2 + 5
		weight := "normal"
		if strings.HasPrefix(r.label, "gatewise") {
			weight = "bold"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" font-weight="%s" fill="#222">%s</text>
`, labelW-8, y, weight, html.EscapeString(r.label))
	}
	if len(rows) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#a00">no small-GET run succeeded</text>
`, labelW, topPad+rowH/2)
	}
	fmt.Fprintf(&b, `<text x="16" y="%d" font-size="11" fill="#555">Load generator, proxy and upstream share the same CPUs; lighter bars: access log on. See docs/benchmarks.md.</text>
</svg>
`, h-12)
	return b.String()
}
