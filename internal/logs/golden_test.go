package logs

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden files")

// goldenRef is the reference time of the golden files' year-less stamps.
var goldenRef = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// renderEvents prints what scanning a file found, one event per line, for
// the golden files.
func renderEvents(st FileStats, events []Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "format: %s compressed: %v lines: %d events: %d unreadable: %d\n", st.Format, st.Compressed, st.Lines, st.Events, st.Unreadable)
	if st.FirstUnreadable != "" {
		fmt.Fprintf(&b, "first unreadable: %q\n", st.FirstUnreadable)
	}
	for _, ev := range events {
		t := "-"
		if !ev.Time.IsZero() {
			t = ev.Time.UTC().Format(time.RFC3339Nano)
		}
		fmt.Fprintf(&b, "%d %s %s", ev.Line, t, ev.Label())
		for _, kv := range [][2]string{{"process", ev.Process}, {"upstream", ev.Upstream}, {"method", ev.Method}, {"path", ev.Path}, {"detail", ev.Detail}, {"request_id", ev.RequestID}} {
			if kv[1] != "" {
				fmt.Fprintf(&b, " %s=%q", kv[0], kv[1])
			}
		}
		if ev.Status != 0 {
			fmt.Fprintf(&b, " status=%d", ev.Status)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// scanFile scans one file with the golden settings (UTC, goldenRef).
func scanFile(t *testing.T, path string) (FileStats, []Event) {
	t.Helper()
	rd, err := NewReader(Options{Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var events []Event
	st, err := rd.Scan(context.Background(), Source{Name: filepath.Base(path), R: f, Ref: goldenRef}, func(ev Event) { events = append(events, ev) })
	if err != nil {
		t.Fatal(err)
	}
	return st, events
}

// TestGolden scans every testdata/*.log (and *.log.gz, *.log.1) and
// compares the events with testdata/NAME.golden; -update rewrites them.
func TestGolden(t *testing.T) {
	t.Parallel()
	paths, err := filepath.Glob("testdata/*.log*")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 10 {
		t.Fatalf("found %d testdata logs, want at least 10", len(paths))
	}
	for _, path := range paths {
		if strings.HasSuffix(path, ".golden") {
			continue
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			st, events := scanFile(t, path)
			got := renderEvents(st, events)
			golden := path + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s (run with -update if the change is right):\ngot:\n%s\nwant:\n%s", path, golden, got, want)
			}
		})
	}
}

// TestGoldenFormats checks each golden file's detected format, so a
// detection regression fails here with a clear message.
func TestGoldenFormats(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want Format
	}{
		{"nginx_error.log", FormatNginxError},
		{"nginx_access.log", FormatNginxAccess},
		{"gatewise.log", FormatGatewise},
		{"kern.log", FormatSyslog},
		{"journal_k.log", FormatSyslog},
		{"dmesg.log", FormatKernel},
		{"dmesg_T.log", FormatKernel},
		{"kmsg.log", FormatKernel},
		{"caddy.log", FormatCaddy},
		{"traefik.json.log", FormatTraefikJSON},
		{"traefik.log", FormatTraefik},
		{"mariadb.log", FormatMySQL},
		{"mysql8.log", FormatMySQL},
		{"apache22_error.log", FormatApacheError},
		{"apache_fcgi_error.log", FormatApacheError},
		{"fpm_syslog.log", FormatSyslog},
		{"real_haproxy_haproxy.log", FormatHAProxy},
		{"real_nginxandphpfpm_php-fpm.log", FormatPHPFPM},
		{"real_nginxandphpfpm_php_errors.log", FormatPHP},
		{"real_apache_error.log", FormatApacheError},
	}
	for _, tc := range tests {
		data, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		if got := Detect(data); got != tc.want {
			t.Errorf("Detect(%s) = %s, want %s", tc.file, got, tc.want)
		}
	}
}

// TestCompressedAndRotated reads a gzip-compressed copy (detected by its
// magic bytes, whatever its name) and gets the same events.
func TestCompressedAndRotated(t *testing.T) {
	t.Parallel()
	plainSt, plain := scanFile(t, "testdata/nginx_error.log")
	gzSt, gz := scanFile(t, "testdata/nginx_error.log.2.gz")
	if !gzSt.Compressed {
		t.Errorf("nginx_error.log.2.gz: Compressed = false, want true")
	}
	if gzSt.Format != plainSt.Format || len(gz) != len(plain) {
		t.Fatalf("gzip copy: format %s, %d events; plain: format %s, %d events", gzSt.Format, len(gz), plainSt.Format, len(plain))
	}
	for i := range plain {
		if gz[i].Label() != plain[i].Label() || !gz[i].Time.Equal(plain[i].Time) {
			t.Errorf("event %d: gzip %s %v, plain %s %v", i, gz[i].Label(), gz[i].Time, plain[i].Label(), plain[i].Time)
		}
	}
	if bytes.Contains([]byte(renderEvents(gzSt, gz)), []byte("unreadable: 0")) == (plainSt.Unreadable != 0) {
		t.Errorf("gzip copy: unreadable %d, plain %d", gzSt.Unreadable, plainSt.Unreadable)
	}
}
