package obs

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// slogLine writes l as log/slog's JSONHandler did before appendJSON
// replaced it: the reference the line's format must keep.
func slogLine(t testing.TB, l *accessLine) []byte {
	t.Helper()
	var buf bytes.Buffer
	h := slog.NewJSONHandler(&buf, nil)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	rec := slog.NewRecord(l.time, slog.LevelInfo, "request", 0)
	rec.AddAttrs(
		slog.String("request_id", l.requestID), slog.String("remote", l.remote), slog.String("method", l.method),
		slog.String("host", l.host), slog.String("path", l.path), slog.String("proto", l.proto),
		slog.Int("status", l.status), slog.String("cause", l.cause), slog.String("route", l.route),
		slog.String("pool", l.pool), slog.String("upstream", l.upstream), slog.Int("attempts", l.attempts),
		slog.Int("upstream_status", l.upstreamStatus), slog.Int64("bytes_in", l.bytesIn), slog.Int64("bytes_out", l.bytesOut),
		slog.Float64("duration_ms", ms(l.duration)), slog.Float64("dns_ms", ms(l.dns)), slog.Float64("connect_ms", ms(l.connect)),
		slog.Float64("tls_ms", ms(l.tls)), slog.Float64("first_byte_ms", ms(l.firstByte)), slog.Bool("reused", l.reused),
		slog.String("user_agent", l.userAgent),
	)
	if l.phase != "" {
		rec.AddAttrs(slog.String("phase", l.phase))
	}
	if err := h.Handle(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestAccessLineMatchesSlog checks that the access log's own encoder
// writes what log/slog's JSONHandler wrote, byte for byte, for ordinary
// lines and for hostile strings, and that every line is valid JSON whose
// fields read back as written.
func TestAccessLineMatchesSlog(t *testing.T) {
	t.Parallel()
	hostile := []string{
		"", "plain", `quote " and \ backslash`, "new\nline\r\ttab", "ctl \x00\x01\x1f\x7f", "bad utf-8 \xff\xfe end",
		"cut rune \xe2\x82", "line sep \u2028 para sep \u2029", "html <script>&amp;</script>", "émoji 🎉 ok",
		`{"forged":"field"}`, strings.Repeat("long/", 500),
	}
	base := accessLine{
		time: time.Date(2026, 11, 23, 22, 53, 39, 635866822, time.UTC), requestID: "72ba259fb11ff1277820",
		remote: "127.0.0.1", method: "GET", host: "example.com", path: "/a?b=c", proto: "HTTP/1.1", status: 200,
		route: "default", pool: "default", upstream: "127.0.0.1:9001", attempts: 1, upstreamStatus: 200,
		bytesOut: 13, duration: 2357 * time.Microsecond, firstByte: 1234567 * time.Microsecond, reused: true,
		userAgent: "curl/8.0",
	}
	lines := []accessLine{base}
	failed := base
	failed.status, failed.cause, failed.phase, failed.upstreamStatus = 502, "connection_refused", "connect", 0
	failed.time = time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))
	lines = append(lines, failed)
	for i, s := range hostile {
		l := base
		l.path, l.host, l.userAgent, l.method = s, s, s, s
		l.duration = time.Duration(i) * 1001 * time.Nanosecond
		lines = append(lines, l)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		l := base
		l.duration = time.Duration(r.Int64N(int64(10 * time.Minute)))
		l.dns, l.connect, l.tls = time.Duration(r.Int64N(1e9)), time.Duration(r.Int64N(1e6)), time.Duration(r.Int64N(1e3))
		l.bytesIn, l.bytesOut = r.Int64(), r.Int64N(1<<40)
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		l.userAgent = string(b)
		lines = append(lines, l)
	}
	for i := range lines {
		l := &lines[i]
		got := l.appendJSON(nil)
		want := slogLine(t, l)
		if !bytes.Equal(got, want) {
			t.Errorf("line %d:\n got %s\nwant %s", i, got, want)
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(got, &m); err != nil {
			t.Errorf("line %d is not JSON: %v: %s", i, err, got)
		}
	}
}

// BenchmarkAccessLine measures one line's encoding, beside log/slog's.
func BenchmarkAccessLine(b *testing.B) {
	l := accessLine{time: time.Now(), requestID: "72ba259fb11ff1277820", remote: "203.0.113.7", method: "GET",
		host: "example.com", path: "/cart?id=42", proto: "HTTP/1.1", status: 200, route: "app", pool: "app",
		upstream: "10.0.0.5:8080", attempts: 1, upstreamStatus: 200, bytesOut: 5120, duration: 1500 * time.Microsecond,
		connect: 200 * time.Microsecond, firstByte: 1200 * time.Microsecond, userAgent: "Mozilla/5.0 (X11; Linux x86_64)"}
	b.Run("own", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf = l.appendJSON(buf[:0])
		}
	})
	b.Run("slog", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = slogLine(b, &l)
		}
	})
}

// TestAppendMillis checks the integer form against the float64 one it
// replaces (strconv's shortest form, which encoding/json writes) over
// every microsecond of the first 2 seconds, every 997th up to 200
// seconds, and some far values, either sign.
func TestAppendMillis(t *testing.T) {
	check := func(us int64) {
		d := time.Duration(us) * time.Microsecond
		got := string(appendMillis(nil, "k", d))
		want := string(strconv.AppendFloat([]byte(`,"k":`), float64(us)/1000, 'f', -1, 64))
		if got != want {
			t.Fatalf("%v: %s, want %s", d, got, want)
		}
	}
	for us := int64(-2000); us <= 2_000_000; us++ {
		check(us)
	}
	for us := int64(2_000_000); us <= 200_000_000; us += 997 {
		check(us)
	}
	for _, us := range []int64{86_400_000_000, 1<<40 + 7, 9_007_199_254_740, -86_400_000_001} {
		check(us)
	}
}

// BenchmarkAppendMillis measures the integer form; BenchmarkAppendMillisFloat
// the float64 form it replaced.
func BenchmarkAppendMillis(b *testing.B) {
	buf := make([]byte, 0, 64)
	for i := range b.N {
		buf = appendMillis(buf[:0], "duration_ms", time.Duration(i%5_000_000)*time.Microsecond)
	}
}

func BenchmarkAppendMillisFloat(b *testing.B) {
	buf := make([]byte, 0, 64)
	for i := range b.N {
		buf = strconv.AppendFloat(appendKey(buf[:0], "duration_ms"), float64(i%5_000_000)/1000, 'f', -1, 64)
	}
}
