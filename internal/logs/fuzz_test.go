package logs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gatewise/gatewise/internal/cause"
)

// fuzzParse runs one format's parser on a line and checks what every
// parser promises: no panic, the event filled only when it is one, a
// label, and strings of bounded length.
func fuzzParse(f *testing.F, format Format, seeds ...string) {
	if paths, _ := filepath.Glob("testdata/*.log"); len(paths) > 0 {
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			for _, line := range bytes.Split(data, []byte("\n")) {
				f.Add(string(line))
			}
		}
	}
	for _, s := range seeds {
		f.Add(s)
	}
	p, err := newParser(cause.NewTable(), time.UTC)
	if err != nil {
		f.Fatal(err)
	}
	parse := parseFor(format)
	f.Fuzz(func(t *testing.T, line string) {
		var ev Event
		isEvent, readable := parse(p, &lineCtx{ref: goldenRef}, []byte(line), &ev)
		if !isEvent {
			if ev != (Event{}) {
				t.Fatalf("not an event, but the event was changed: %+v", ev)
			}
			return
		}
		if !readable {
			t.Fatalf("an event from an unreadable line")
		}
		if ev.Label() == "" {
			t.Fatalf("event without a label: %+v", ev)
		}
		for _, s := range []string{ev.Upstream, ev.Path, ev.Method, ev.Process, ev.Detail} {
			if len(s) > 600 {
				t.Fatalf("a field of %d bytes", len(s))
			}
		}
		if raw := rawString([]byte(line)); utf8.ValidString(line) && !utf8.ValidString(raw) {
			t.Fatalf("raw cut in the middle of a rune: %q", raw)
		}
	})
}

func FuzzNginxError(f *testing.F) {
	fuzzParse(f, FormatNginxError, `2026/11/23 23:10:05 [error] 1#1: *1 connect() failed (111: x) while connecting to upstream, request: "GET / HTTP/1.1", upstream: "http://a/"`)
}
func FuzzNginxAccess(f *testing.F) {
	fuzzParse(f, FormatNginxAccess, `1.2.3.4 - - [23/Nov/2026:23:10:05 +0000] "GET / HTTP/1.1" 502 1 "-" "-" us=502 ua=1.2.3.4:9`)
}
func FuzzApacheError(f *testing.F) {
	fuzzParse(f, FormatApacheError, `[Mon Nov 23 23:10:05.1 2026] [proxy:error] [pid 1:tid 2] (111)Connection refused: AH00957: http: attempt to connect to 1.2.3.4:9 (x) failed`)
}
func FuzzPHPFPM(f *testing.F) {
	fuzzParse(f, FormatPHPFPM, `[23-Nov-2026 23:10:05] WARNING: [pool www] child 1 exited on signal 9 (SIGKILL) after 1 seconds from start`)
}
func FuzzPHP(f *testing.F) {
	fuzzParse(f, FormatPHP, `[23-Nov-2026 23:10:05 Europe/Paris] PHP Fatal error:  Maximum execution time of 30 seconds exceeded`)
}
func FuzzHAProxy(f *testing.F) {
	fuzzParse(f, FormatHAProxy, `Nov 23 23:10:05 h haproxy[1]: 1.2.3.4:5 [23/Nov/2026:23:10:05.123] fe be/<NOSRV> 0/0/-1/-1/0 503 217 - - SCNN 1/1/0/0/0 0/0 "GET / HTTP/1.1"`)
}
func FuzzCaddy(f *testing.F) {
	fuzzParse(f, FormatCaddy, `{"level":"error","ts":1795475405.1,"logger":"http.log.error","msg":"dial tcp 127.0.0.1:9: connect: connection refused","request":{"method":"GET","uri":"/"},"status":502}`)
}
func FuzzTraefikJSON(f *testing.F) {
	fuzzParse(f, FormatTraefikJSON, `{"level":"debug","msg":"'502 Bad Gateway' caused by: dial tcp 127.0.0.1:9: connect: connection refused","time":"2026-11-23T23:10:05Z"}`)
}
func FuzzTraefik(f *testing.F) {
	fuzzParse(f, FormatTraefik, `time="2026-11-23T23:10:05Z" level=debug msg="'502 Bad Gateway' caused by: dial tcp 127.0.0.1:9: connect: connection refused"`)
}
func FuzzKernel(f *testing.F) {
	fuzzParse(f, FormatKernel, `[Mon Nov 23 23:09:58 2026] Out of memory: Killed process 4242 (php-fpm8.2) total-vm:1kB`, `6,1,2,-;x[1]: segfault at 0`)
}
func FuzzSyslog(f *testing.F) {
	fuzzParse(f, FormatSyslog, `Nov 23 23:09:58 web1 systemd[1]: php8.2-fpm.service: A process of this unit has been killed by the OOM killer.`, `2026-11-23T23:10:05.1+01:00 h mariadbd[1]: 2026-11-23 23:10:05 0 [ERROR] Too many connections`)
}
func FuzzMySQL(f *testing.F) {
	fuzzParse(f, FormatMySQL, `2026-11-23 23:10:05 0 [Note] /usr/sbin/mariadbd: ready for connections.`, `240102  5:04:05 [ERROR] mysqld got signal 11 ;`)
}
func FuzzGatewise(f *testing.F) {
	fuzzParse(f, FormatGatewise, `{"time":"2026-11-23T23:10:05Z","level":"WARN","msg":"x","request_id":"a","cause":"connection_refused","path":"/\u00e9"}`)
}
func FuzzUnknown(f *testing.F) {
	fuzzParse(f, FormatUnknown, `something connect() failed (111: x) 2026/11/23 23:10:05`)
}

// FuzzScan feeds whole inputs (detection, line splitting, gzip) to Scan.
func FuzzScan(f *testing.F) {
	for _, p := range []string{"testdata/nginx_error.log", "testdata/kern.log", "testdata/nginx_error.log.2.gz"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	rd, err := NewReader(Options{Location: time.UTC})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := rd.Scan(context.Background(), Source{Name: "fuzz", R: bytes.NewReader(data), Ref: goldenRef}, func(Event) {})
		if err == nil && st.Events > st.Lines {
			t.Fatalf("%d events from %d lines", st.Events, st.Lines)
		}
	})
}
