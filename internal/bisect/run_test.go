package bisect

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// listSite is a real HTTP server whose "plugins" are the uncommented lines
// of a list file, edited by real sed commands: it answers 500 with
// gatewise's Proxy-Status when a broken plugin, or every plugin of a
// conflicting pair, is enabled.
type listSite struct {
	dir, list string
	original  []byte
	url       string
	disable   string
	enable    string
}

func newListSite(t *testing.T, plugins []string, broken []string, pairs [][2]string) *listSite {
	t.Helper()
	dir := t.TempDir()
	s := &listSite{dir: dir, list: filepath.Join(dir, "plugins.txt")}
	s.original = []byte("# active plugins\n" + strings.Join(plugins, "\n") + "\n")
	if err := os.WriteFile(s.list, s.original, 0o644); err != nil {
		t.Fatal(err)
	}
	s.disable = `sed -i 's/^{}$/#{}/' plugins.txt`
	s.enable = `sed -i 's/^#{}$/{}/' plugins.txt`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		data, err := os.ReadFile(s.list)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		on := map[string]bool{}
		for l := range strings.SplitSeq(string(data), "\n") {
			on[l] = true
		}
		fatal := false
		for _, b := range broken {
			fatal = fatal || on[b]
		}
		for _, p := range pairs {
			fatal = fatal || (on[p[0]] && on[p[1]])
		}
		if fatal {
			w.Header().Set("Proxy-Status", `gatewise; error=http_response_incomplete; details="php_fatal_error"`)
			w.WriteHeader(500)
			return
		}
		io.WriteString(w, "<html>site ok</html>")
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *listSite) config(t *testing.T, items []string, log io.Writer) Config {
	return Config{
		Items: items, Disable: s.disable, Enable: s.enable,
		Shell:       Shell{Dir: s.dir, Timeout: 10 * time.Second},
		JournalPath: filepath.Join(s.dir, "journal.json"),
		Probe:       &Probe{URL: s.url, Match: regexp.MustCompile("site ok"), Timeout: 5 * time.Second},
		Log:         log,
	}
}

func (s *listSite) checkRestored(t *testing.T) {
	t.Helper()
	got, err := os.ReadFile(s.list)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, s.original) {
		t.Errorf("the list file is not restored:\ngot  %q\nwant %q", got, s.original)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "journal.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the journal is still there (%v)", err)
	}
}

var plugins = []string{"akismet", "contact-form", "jetpack", "woo", "yoast", "wordfence", "cache", "elementor"}

// TestRunListSite bisects a real HTTP server whose plugins are switched by
// sed on a list file.
func TestRunListSite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc    string
		broken  []string
		pairs   [][2]string
		want    Verdict
		culprit []string
	}{
		{"one broken plugin", []string{"woo"}, nil, VerdictFound, []string{"woo"}},
		{"a pair that fails only together", nil, [][2]string{{"jetpack", "cache"}}, VerdictFound, []string{"jetpack", "cache"}},
		{"no failure", nil, nil, VerdictNoFailure, []string{}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			s := newListSite(t, plugins, tc.broken, tc.pairs)
			var log syncBuffer
			rep, err := Run(context.Background(), s.config(t, plugins, &log))
			t.Logf("progress:\n%s", log.String())
			if err != nil {
				t.Fatal(err)
			}
			if rep.Verdict != tc.want || strings.Join(rep.Culprits, ",") != strings.Join(tc.culprit, ",") || !rep.Restored {
				t.Errorf("got %s %v restored=%v, want %s %v restored", rep.Verdict, rep.Culprits, rep.Restored, tc.want, tc.culprit)
			}
			if tc.want == VerdictFound && !strings.Contains(log.String(), "500 php_fatal_error") {
				t.Errorf("the progress does not show the cause from Proxy-Status")
			}
			s.checkRestored(t)
			var text bytes.Buffer
			rep.WriteText(&text)
			t.Logf("report:\n%s", text.String())
		})
	}
}

// TestRunCancelled cancels a bisect after its third step: the list file is
// back byte for byte and the journal gone.
func TestRunCancelled(t *testing.T) {
	t.Parallel()
	s := newListSite(t, plugins, []string{"cache"}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := s.config(t, plugins, io.Discard)
	p := cfg.Probe
	calls := 0
	cfg.Probe = &Probe{URL: p.URL, Match: p.Match, Client: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		calls++
		if calls == 3 {
			cancel()
		}
		return http.DefaultTransport.RoundTrip(r)
	})}}
	rep, err := Run(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if rep == nil || rep.Verdict != VerdictInterrupted || !rep.Restored || rep.Probes != 2 {
		t.Errorf("report %+v, want interrupted and restored after 2 probes", rep)
	}
	s.checkRestored(t)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestJournal checks that a second bisect is refused while a journal is
// there, and that Restore finishes the first one's work.
func TestJournal(t *testing.T) {
	t.Parallel()
	s := newListSite(t, plugins, nil, nil)
	cfg := s.config(t, plugins, io.Discard)
	st, err := newSite(plugins, cfg.Disable, cfg.Enable, cfg.Shell, cfg.JournalPath, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.apply(context.Background(), []int{0, 2, 4}); err != nil {
		t.Fatal(err)
	}
	// A crash here: the deferred restore never runs.
	data, _ := os.ReadFile(s.list)
	if bytes.Equal(data, s.original) {
		t.Fatal("test bug: nothing was disabled")
	}
	if _, err := newSite(plugins, cfg.Disable, cfg.Enable, cfg.Shell, cfg.JournalPath, io.Discard); !errors.Is(err, ErrUnfinished) || !strings.Contains(err.Error(), "--restore") {
		t.Errorf("second bisect: got %v, want ErrUnfinished pointing to --restore", err)
	}
	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrUnfinished) {
		t.Errorf("Run with a journal there: got %v, want ErrUnfinished", err)
	}
	j, err := ReadJournal(cfg.JournalPath)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(j.Disabled, ","), "contact-form,woo,wordfence,cache,elementor"; got != want {
		t.Errorf("journal lists %s, want %s", got, want)
	}
	// Our own pid is alive, as a crashed bisect's would not be.
	restored, err := Restore(context.Background(), cfg.JournalPath, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(restored) != 5 {
		t.Errorf("restored %v, want 5 items", restored)
	}
	s.checkRestored(t)
	if _, err := Restore(context.Background(), cfg.JournalPath, RestoreOptions{}); !errors.Is(err, ErrNoJournal) {
		t.Errorf("restore again: got %v, want ErrNoJournal", err)
	}
}

// TestRestoreFailure makes the enable command fail for one item: the
// journal keeps that item, and the error shows the command's stderr.
func TestRestoreFailure(t *testing.T) {
	t.Parallel()
	s := newListSite(t, plugins, nil, nil)
	cfg := s.config(t, plugins, io.Discard)
	cfg.Enable = `if [ {} = yoast ]; then echo "Error: could not write plugins.txt" >&2; exit 3; fi; ` + s.enable
	st, err := newSite(plugins, cfg.Disable, cfg.Enable, cfg.Shell, cfg.JournalPath, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.apply(context.Background(), []int{0}); err != nil {
		t.Fatal(err)
	}
	_, err = st.restore(context.Background())
	var ce *CommandError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "Error: could not write plugins.txt") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("got %v, want a CommandError with the stderr and exit status", err)
	}
	j, err := ReadJournal(cfg.JournalPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(j.Disabled, ",") != "yoast" {
		t.Errorf("journal lists %v, want only yoast", j.Disabled)
	}
}

func TestShell(t *testing.T) {
	t.Parallel()
	sh := Shell{Dir: t.TempDir(), Timeout: 300 * time.Millisecond}
	for _, item := range []string{"plain", "with space", "it's", `$(touch pwned)`, "a\"b", "-n", "x;y", ""} {
		out, err := sh.Run(context.Background(), Expand("printf '%s' {}", item))
		if err != nil || out != item {
			t.Errorf("item %q: got %q %v, want it back unchanged", item, out, err)
		}
	}
	if _, err := os.Stat(filepath.Join(sh.Dir, "pwned")); err == nil {
		t.Error("an item ran as a command")
	}
	_, err := sh.Run(context.Background(), "sleep 5")
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrCommand) || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("sleep 5 with a 300ms timeout: got %v", err)
	}
	_, err = sh.Run(context.Background(), "echo one >&2; echo two >&2; exit 1")
	if err == nil || !strings.Contains(err.Error(), "one | two") {
		t.Errorf("got %v, want the stderr lines", err)
	}
}

func TestParseItems(t *testing.T) {
	t.Parallel()
	items, err := ParseItems("list", []byte("# comment\n a \n\nb\n"))
	if err != nil || strings.Join(items, ",") != "a,b" {
		t.Errorf("got %v %v", items, err)
	}
	for _, bad := range []string{"", "# only\n", "a\na\n", "a\x01b\n"} {
		if _, err := ParseItems("list", []byte(bad)); !errors.Is(err, ErrBadItems) {
			t.Errorf("%q: got %v, want ErrBadItems", bad, err)
		}
	}
}

func TestProxyStatusCause(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{`gatewise; error=http_response_incomplete; details="php_fatal_error: x"`}, "php_fatal_error"},
		{[]string{`cdn; error=destination_unavailable`, `gatewise; error=connection_refused; details="connection_refused"`}, "connection_refused"},
		{[]string{`gatewise; details="not_a_cause"`}, ""},
		{nil, ""},
	} {
		if got := proxyStatusCause(tc.in); string(got) != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestRunCommandFails makes the disable command fail for one plugin in
// the middle of the bisect: Run stops with the command's stderr, and the
// site is restored.
func TestRunCommandFails(t *testing.T) {
	t.Parallel()
	s := newListSite(t, plugins, []string{"elementor"}, nil)
	cfg := s.config(t, plugins, io.Discard)
	cfg.Disable = `if [ {} = wordfence ]; then echo "Error: database is locked" >&2; exit 5; fi; ` + s.disable
	rep, err := Run(context.Background(), cfg)
	var ce *CommandError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "Error: database is locked") {
		t.Fatalf("got %v, want the failed command with its stderr", err)
	}
	if rep == nil || rep.Verdict != VerdictInterrupted || !rep.Restored {
		t.Errorf("report %+v, want interrupted and restored", rep)
	}
	s.checkRestored(t)
}
