package logs

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"
)

// benchLines are the lines of the generated nginx error log: most say why
// a request failed, as in a log during an incident; the others are the
// usual noise.
func benchLines() []string {
	return []string{
		`[error] 4121#4121: *%d connect() failed (111: Connection refused) while connecting to upstream, client: 203.0.113.7, server: example.com, request: "GET /shop/cart?item=%d HTTP/1.1", upstream: "http://127.0.0.1:9001/shop/cart?item=%d", host: "example.com", referrer: "https://example.com/shop"`,
		`[error] 4121#4121: *%d upstream timed out (110: Connection timed out) while reading response header from upstream, client: 203.0.113.7, server: example.com, request: "POST /wp-admin/admin-ajax.php?x=%d HTTP/2.0", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "example.com", referrer: "https://example.com/wp-admin/%d"`,
		`[error] 4121#4121: *%d recv() failed (104: Connection reset by peer) while reading response header from upstream, client: 198.51.100.23, server: example.com, request: "GET /api/items/%d HTTP/1.1", upstream: "http://10.0.0.12:8080/api/items/%d", host: "api.example.com"`,
		`[error] 4121#4121: *%d open() "/var/www/html/wp-content/uploads/%d.jpg" failed (2: No such file or directory), client: 192.0.2.44, server: example.com, request: "GET /wp-content/uploads/%d.jpg HTTP/1.1", host: "example.com"`,
		`[error] 4121#4121: *%d connect() to unix:/run/php/php8.2-fpm.sock failed (11: Resource temporarily unavailable) while connecting to upstream, client: 203.0.113.9, server: example.com, request: "GET /?p=%d HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "example.com", referrer: "%d"`,
		`[warn] 4121#4121: *%d an upstream response is buffered to a temporary file /var/cache/nginx/fastcgi_temp/1/00/%d while reading upstream, client: 203.0.113.7, server: example.com, request: "GET /feed/%d HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "example.com"`,
		`[error] 4121#4121: *%d FastCGI sent in stderr: "PHP message: PHP Warning:  Undefined array key \"id\" in /var/www/html/wp-content/plugins/x/x.php on line %d" while reading response header from upstream, client: 203.0.113.7, server: example.com, request: "GET /?id=%d HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "example.com"`,
		`[error] 4121#4121: *%d upstream prematurely closed connection while reading response header from upstream, client: 203.0.113.7, server: example.com, request: "GET /checkout/%d HTTP/1.1", upstream: "http://127.0.0.1:9002/checkout/%d", host: "example.com"`,
	}
}

// genNginxError returns about size bytes of nginx error log.
func genNginxError(size int) []byte {
	lines := benchLines()
	var b bytes.Buffer
	b.Grow(size + 1024)
	t := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	for i := 0; b.Len() < size; i++ {
		b.WriteString(t.Add(time.Duration(i) * 10 * time.Millisecond).Format("2006/01/02 15:04:05 "))
		fmt.Fprintf(&b, lines[i%len(lines)], i, i*7, i*13)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// BenchmarkScanNginxError reads a generated nginx error log (64 MiB, most
// lines failures) into events; MB/s is the figure docs/logs.md reports.
func BenchmarkScanNginxError(b *testing.B) {
	data := genNginxError(64 << 20)
	rd, err := NewReader(Options{Location: time.UTC})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		n := 0
		st, err := rd.Scan(context.Background(), Source{Name: "bench", R: bytes.NewReader(data)}, func(Event) { n++ })
		if err != nil || st.Unreadable != 0 || n == 0 {
			b.Fatalf("err %v, %d unreadable, %d events", err, st.Unreadable, n)
		}
	}
}

// BenchmarkScanNginxErrorSummary is the same with every event counted
// into a Summary, as the command does.
func BenchmarkScanNginxErrorSummary(b *testing.B) {
	data := genNginxError(64 << 20)
	rd, err := NewReader(Options{Location: time.UTC})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		sum := NewSummary(nil, 0)
		if _, err := rd.Scan(context.Background(), Source{Name: "bench", R: bytes.NewReader(data)}, sum.Add); err != nil {
			b.Fatal(err)
		}
		_ = sum.Report()
	}
}
