package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/bisect"
	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/server"
	"github.com/gatewise/gatewise/internal/testkit"
)

// startBisectFPM starts a php-fpm master without a php.ini, with one pool
// on a unix socket in a temporary directory, and returns the pool's target
// URL (fastcgi+unix://...). It is stopped when the test ends.
func startBisectFPM(t *testing.T) string {
	t.Helper()
	f := testkit.StartPHPFPM(t, testkit.PHPFPMConfig{Pools: []testkit.Pool{{Name: "www", MaxChildren: 3,
		Extra: []string{"catch_workers_output = yes", "php_flag[log_errors] = on", "php_flag[display_errors] = off"}}}})
	return "fastcgi+unix://" + f.Address("www")
}

// phpSite is a PHP site served by a real php-fpm behind a real gatewise:
// index.php includes plugins/NAME.php for every line NAME of plugins.txt
// that is not commented out with #, then prints a welcome page.
type phpSite struct {
	dir      string // the document root
	list     string // plugins.txt
	original []byte // plugins.txt as written
	url      string // the gateway's URL of the home page
	journal  string
}

// The plugins of the test sites. A good plugin does nothing much.
const (
	goodPlugin = "<?php\n$GLOBALS['loaded'][] = basename(__FILE__, '.php');\n"
	// brokenPlugin calls a function that does not exist: a PHP fatal error.
	brokenPlugin = "<?php\nfunction gallery_init() { return gallery_render_lightbox(); }\ngallery_init();\n"
	// seoPro and seoLite declare the same function: either works alone,
	// both together are a fatal "Cannot redeclare".
	seoPro  = "<?php\nfunction seo_meta_tags() { return 'pro'; }\n"
	seoLite = "<?php\nfunction seo_meta_tags() { return 'lite'; }\n"
	// flakyPlugin fails every other request.
	flakyPlugin = "<?php\n$f = __DIR__ . '/../flaky.count';\n$n = (int) @file_get_contents($f);\nfile_put_contents($f, (string) ($n + 1));\nif ($n % 2 === 1) { throw new RuntimeException('cache backend timed out'); }\n"
	// brokenCore makes index.php fail whatever the plugins.
	brokenCore = "require __DIR__ . '/wp-config-missing.php';\n"
)

// newPHPSite writes a site whose enabled plugins are names (in this order,
// with code from code, goodPlugin by default) and starts a gateway in front
// of it on fpm; header goes at the top of plugins.txt and coreTail at the
// end of index.php's PHP.
func newPHPSite(t *testing.T, fpm string, names []string, code map[string]string, header, coreTail string) *phpSite {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "www")
	if err := os.MkdirAll(filepath.Join(root, "plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := &phpSite{dir: root, list: filepath.Join(root, "plugins.txt"), journal: filepath.Join(dir, "journal.json")}
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("index.php", `<?php
foreach (file(__DIR__ . '/plugins.txt', FILE_IGNORE_NEW_LINES) as $line) {
    $name = trim($line);
    if ($name === '' || $name[0] === '#') {
        continue;
    }
    require __DIR__ . '/plugins/' . $name . '.php';
}
`+coreTail+`echo "<html><body>Welcome to the site</body></html>\n";
`)
	for _, n := range names {
		c, ok := code[n]
		if !ok {
			c = goodPlugin
		}
		write("plugins/"+n+".php", c)
	}
	s.original = []byte(header + strings.Join(names, "\n") + "\n")
	write("plugins.txt", string(s.original))

	cfg := &config.Config{
		Listeners: []config.Listener{{Address: "127.0.0.1:0"}},
		Admin:     config.Admin{Address: "off"},
		AccessLog: "off",
		Pools:     map[string]*config.Pool{"php": {FastCGI: &config.FastCGI{Root: root}, Targets: []config.Target{{URL: fpm}}}},
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	srv, err := server.New(cfg, server.Options{Stdout: io.Discard, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	s.url = "http://" + srv.Addrs()[0].String() + "/"
	return s
}

// sedArgs are the flags that switch the site's plugins with sed on
// plugins.txt, a line commented out with # being a disabled plugin.
func (s *phpSite) sedArgs() []string {
	q := bisect.Quote(s.list)
	return []string{
		"--probe", s.url, "--match", "Welcome to the site", "--journal", s.journal,
		"--disable", `sed -i 's/^{}$/#{}/' ` + q,
		"--enable", `sed -i 's/^#{}$/{}/' ` + q,
	}
}

// checkRestored fails the test unless plugins.txt is as written, byte for
// byte, and the journal is gone.
func (s *phpSite) checkRestored(t *testing.T) {
	t.Helper()
	got, err := os.ReadFile(s.list)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, s.original) {
		t.Errorf("plugins.txt is not restored:\ngot  %q\nwant %q", got, s.original)
	}
	if _, err := os.Stat(s.journal); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the journal %s is still there (%v)", s.journal, err)
	}
}

// bisectJSON is the part of `gatewise bisect --json` the tests read.
type bisectJSON struct {
	Verdict      string     `json:"verdict"`
	Culprits     []string   `json:"culprits"`
	Sets         [][]string `json:"culprit_sets"`
	Probes       int        `json:"probes"`
	Requests     int        `json:"requests"`
	Restored     bool       `json:"restored"`
	KeepDisabled []string   `json:"keep_disabled"`
	Message      string     `json:"message"`
}

// runBisectCmd runs `gatewise bisect args...` in-process.
func runBisectCmd(ctx context.Context, stderr io.Writer, args ...string) (int, string) {
	var out bytes.Buffer
	code := Run(ctx, append([]string{"bisect"}, args...), &out, stderr)
	return code, out.String()
}

func decodeBisect(t *testing.T, stdout string) bisectJSON {
	t.Helper()
	var r bisectJSON
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("stdout is not the JSON report: %v: %q", err, stdout)
	}
	return r
}

var sitePlugins = []string{"akismet", "seo-pro", "contact-form", "jetpack", "wordfence", "broken-gallery", "seo-lite", "elementor", "flaky-cache", "woocommerce"}

// TestBisectPHPSite bisects real PHP sites behind a real gateway, with sed
// commands on the list file run by the real shell.
func TestBisectPHPSite(t *testing.T) {
	t.Parallel()
	fpm := startBisectFPM(t)
	pick := func(skip ...string) []string {
		var out []string
		for _, p := range sitePlugins {
			keep := true
			for _, s := range skip {
				keep = keep && p != s
			}
			if keep {
				out = append(out, p)
			}
		}
		return out
	}
	code := map[string]string{"broken-gallery": brokenPlugin, "seo-pro": seoPro, "seo-lite": seoLite, "flaky-cache": flakyPlugin}
	for _, tc := range []struct {
		desc         string
		plugins      []string
		coreTail     string
		extra        []string
		wantCode     int
		wantVerdict  string
		wantCulprits []string
		wantMessage  []string
		wantProgress []string
	}{
		{
			desc:    "one plugin with a fatal error",
			plugins: pick("seo-lite", "flaky-cache"), extra: []string{"--list-cmd", "grep -v '^#' PLUGINS"},
			wantCode: 0, wantVerdict: "found", wantCulprits: []string{"broken-gallery"},
			wantMessage:  []string{"broken-gallery (the site fails with it enabled alone)"},
			wantProgress: []string{"step 1 of about 6: every plugin enabled (8): FAIL (500 php_fatal_error)", "every plugin disabled: pass (200)", "only broken-gallery enabled: FAIL (500 php_fatal_error)"},
		},
		{
			desc:    "two plugins that fail only together",
			plugins: pick("broken-gallery", "flaky-cache"), extra: []string{"--items", "PLUGINS"},
			wantCode: 0, wantVerdict: "found", wantCulprits: []string{"seo-pro", "seo-lite"},
			wantMessage:  []string{"seo-pro + seo-lite (they fail only together"},
			wantProgress: []string{"no single plugin explains the failure: delta debugging"},
		},
		{
			desc:    "a plugin that fails every other request, probed 3 times a state",
			plugins: pick("broken-gallery", "seo-lite"), extra: []string{"--items", "PLUGINS", "--repeat", "3"},
			wantCode: 1, wantVerdict: "flaky", wantCulprits: []string{},
			wantMessage:  []string{"fails only some of the time with every plugin enabled", "1 of 3 probes failed: 200; 500 php_fatal_error", "not one broken plugin"},
			wantProgress: []string{"FLAKY: 1 of 3 failed"},
		},
		{
			desc:    "a site that fails with every plugin disabled",
			plugins: pick("broken-gallery", "seo-lite", "flaky-cache"), coreTail: brokenCore, extra: []string{"--items", "PLUGINS"},
			wantCode: 1, wantVerdict: "not_a_plugin", wantCulprits: []string{},
			wantMessage:  []string{"fails even with every plugin disabled (500 php_fatal_error)", "not a plugin", "gatewise doctor"},
			wantProgress: []string{"every plugin disabled: FAIL (500 php_fatal_error)"},
		},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			s := newPHPSite(t, fpm, tc.plugins, code, "# plugins enabled on this site\n", tc.coreTail)
			args := append(s.sedArgs(), "--json")
			for _, a := range tc.extra {
				args = append(args, strings.ReplaceAll(a, "PLUGINS", s.list))
			}
			var stderr syncBuffer
			gotCode, stdout := runBisectCmd(context.Background(), &stderr, args...)
			t.Logf("stderr:\n%s", stderr.String())
			r := decodeBisect(t, stdout)
			if gotCode != tc.wantCode {
				t.Errorf("exit code: got %d, want %d", gotCode, tc.wantCode)
			}
			if r.Verdict != tc.wantVerdict || strings.Join(r.Culprits, ",") != strings.Join(tc.wantCulprits, ",") || !r.Restored {
				t.Errorf("got %s %q restored=%v, want %s %q restored", r.Verdict, r.Culprits, r.Restored, tc.wantVerdict, tc.wantCulprits)
			}
			if r.Culprits == nil {
				t.Errorf("culprits is null in the JSON, want []")
			}
			for _, w := range tc.wantMessage {
				if !strings.Contains(r.Message, w) {
					t.Errorf("message %q lacks %q", r.Message, w)
				}
			}
			for _, w := range tc.wantProgress {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("progress lacks %q", w)
				}
			}
			for _, c := range r.Culprits {
				want := `sed -i 's/^` + c + `$/#` + c + `/' ` + s.list
				found := false
				for _, k := range r.KeepDisabled {
					found = found || k == want
				}
				if !found {
					t.Errorf("keep_disabled %q lacks %q", r.KeepDisabled, want)
				}
			}
			s.checkRestored(t)
			t.Logf("%s: %s %v in %d probes (%d requests)", tc.desc, r.Verdict, r.Culprits, r.Probes, r.Requests)
		})
	}
}

// TestBisectText checks the report for a person on one bisect.
func TestBisectText(t *testing.T) {
	t.Parallel()
	fpm := startBisectFPM(t)
	s := newPHPSite(t, fpm, []string{"akismet", "broken-gallery", "jetpack"}, map[string]string{"broken-gallery": brokenPlugin}, "", "")
	var stderr syncBuffer
	code, stdout := runBisectCmd(context.Background(), &stderr, append(s.sedArgs(), "--items", s.list)...)
	if code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
	}
	for _, w := range []string{"culprit: broken-gallery\n", "keep it disabled:\n  sed -i 's/^broken-gallery$/#broken-gallery/' ", "restored: every plugin is as it was"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("stdout lacks %q:\n%s", w, stdout)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if rest, ok := strings.CutPrefix(l, "gatewise bisect: "); !ok || strings.TrimSpace(rest) == "" || strings.HasPrefix(rest, ";") {
			t.Errorf("progress line without the prefix, or a piece of a line: %q", l)
		}
	}
	s.checkRestored(t)
}

// TestBisectCancelled cancels the command's context (what SIGINT and
// SIGTERM do in the binary) in the middle of a bisect.
func TestBisectCancelled(t *testing.T) {
	t.Parallel()
	fpm := startBisectFPM(t)
	names := []string{"a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "a10", "a11", "a12", "a13", "a14", "a15", "broken-gallery"}
	s := newPHPSite(t, fpm, names, map[string]string{"broken-gallery": brokenPlugin}, "# header kept\n", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan struct{})
	var code int
	var stdout string
	go func() {
		defer close(done)
		code, stdout = runBisectCmd(ctx, &stderr, append(s.sedArgs(), "--items", s.list, "--settle", "100ms", "--json")...)
	}()
	waitForText(t, &stderr, "step 3 of", done)
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the bisect did not stop 30s after the cancel")
	}
	t.Logf("stderr:\n%s", stderr.String())
	r := decodeBisect(t, stdout)
	if code != 1 || r.Verdict != "interrupted" || !r.Restored || len(r.Culprits) != 0 {
		t.Errorf("got exit %d, %s %v restored=%v; want 1, interrupted, restored", code, r.Verdict, r.Culprits, r.Restored)
	}
	if !strings.Contains(stderr.String(), "gatewise bisect: interrupted after") {
		t.Errorf("stderr does not say it was interrupted")
	}
	s.checkRestored(t)
}

// waitForText waits until w holds text (30s at most, or until done).
func waitForText(t *testing.T, w *syncBuffer, text string, done <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(w.String(), text) {
		select {
		case <-done:
			t.Fatalf("finished before %q was printed:\n%s", text, w.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q not printed after 30s:\n%s", text, w.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBisectWordPressPreset drives the stand-in wp-cli (testdata/wp) with
// --preset wordpress.
func TestBisectWordPressPreset(t *testing.T) {
	t.Parallel()
	fpm := startBisectFPM(t)
	wp, err := filepath.Abs("testdata/wp")
	if err != nil {
		t.Fatal(err)
	}
	s := newPHPSite(t, fpm, []string{"akismet", "jetpack", "wordfence", "broken-gallery", "elementor"}, map[string]string{"broken-gallery": brokenPlugin}, "", "")
	var stderr syncBuffer
	code, stdout := runBisectCmd(context.Background(), &stderr, "--probe", s.url, "--preset", "wordpress", "--wp", bisect.Quote(wp), "--path", s.dir, "--journal", s.journal, "--json")
	t.Logf("stderr:\n%s", stderr.String())
	r := decodeBisect(t, stdout)
	if code != 0 || r.Verdict != "found" || strings.Join(r.Culprits, ",") != "broken-gallery" || !r.Restored {
		t.Errorf("got exit %d, %s %v restored=%v; want 0, found [broken-gallery], restored", code, r.Verdict, r.Culprits, r.Restored)
	}
	want := wp + " plugin deactivate broken-gallery --skip-plugins --skip-themes --path=" + s.dir
	if len(r.KeepDisabled) != 1 || r.KeepDisabled[0] != want {
		t.Errorf("keep_disabled: got %q, want [%q]", r.KeepDisabled, want)
	}
	s.checkRestored(t)

	// A plugin wp-cli does not know: the command's stderr is in the error.
	code, _ = runBisectCmd(context.Background(), &stderr, "--probe", s.url, "--preset", "wordpress", "--wp", bisect.Quote(wp), "--path", filepath.Join(s.dir, "nope"), "--journal", s.journal)
	if code != 1 || !strings.Contains(stderr.String(), "This does not seem to be a WordPress installation") {
		t.Errorf("wrong --path: exit %d, stderr:\n%s", code, stderr.String())
	}
}

func TestBisectBadCommandLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	list := filepath.Join(dir, "plugins.txt")
	if err := os.WriteFile(list, []byte("a\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	journal := filepath.Join(dir, "journal.json")
	base := []string{"--probe", "http://127.0.0.1:1/", "--journal", journal}
	sed := []string{"--disable", "echo off {}", "--enable", "echo on {}"}
	with := func(extra ...string) []string { return append(append(append([]string{}, base...), sed...), extra...) }
	for _, tc := range []struct {
		desc     string
		args     []string
		wantCode int
		want     string
	}{
		{"no probe", append([]string{"--items", list}, sed...), 2, "missing --probe URL"},
		{"a probe that is no URL", append([]string{"--probe", "example.com", "--items", list}, sed...), 2, `--probe "example.com"`},
		{"no items", with(), 2, "missing --items FILE or --list-cmd CMD"},
		{"items and list-cmd", with("--items", list, "--list-cmd", "cat x"), 2, "exclude each other"},
		{"disable without {}", append(base, "--items", list, "--disable", "echo off", "--enable", "echo {}"), 2, "--disable: want a command with {}"},
		{"unknown preset", with("--preset", "drupal"), 2, `--preset "drupal"`},
		{"preset with --disable", append(base, "--preset", "wordpress", "--disable", "x {}"), 2, "--preset wordpress sets --disable itself"},
		{"path without preset", with("--items", list, "--path", dir), 2, "--path goes with --preset wordpress"},
		{"repeat 0", with("--items", list, "--repeat", "0"), 2, "--repeat 0"},
		{"max probes 2", with("--items", list, "--max-probes", "2"), 2, "--max-probes 2"},
		{"bad regexp", with("--items", list, "--match", "("), 2, "--match"},
		{"expect status 42", with("--items", list, "--expect-status", "42"), 2, "--expect-status 42"},
		{"restore with a probe", []string{"--restore", "--probe", "http://x/"}, 2, "--restore takes only"},
		{"force without restore", with("--items", list, "--force"), 2, "--force goes with --restore"},
		{"an argument", with("--items", list, "extra"), 2, `unexpected argument "extra"`},
		{"missing items file", with("--items", filepath.Join(dir, "nope.txt")), 1, "nope.txt"},
		{"an empty list", with("--list-cmd", "true"), 1, "no items"},
		{"a list command that fails", with("--list-cmd", "echo 'Error: database down' >&2; exit 4"), 1, "Error: database down"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			code, stdout := runBisectCmd(context.Background(), &stderr, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit code: got %d, want %d", code, tc.wantCode)
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "gatewise bisect: ") || !strings.Contains(lines[0], tc.want) {
				t.Errorf("stderr: got %q, want one line starting with \"gatewise bisect: \" holding %q", stderr.String(), tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout: got %q, want nothing", stdout)
			}
			if _, err := os.Stat(journal); err == nil {
				t.Errorf("a journal was left by a command line that never started")
			}
		})
	}
	t.Run("restore with no journal", func(t *testing.T) {
		t.Parallel()
		var stderr bytes.Buffer
		code, _ := runBisectCmd(context.Background(), &stderr, "--restore", "--journal", filepath.Join(dir, "none.json"))
		if code != 0 || !strings.Contains(stderr.String(), "nothing to restore") {
			t.Errorf("got %d %q, want 0 and nothing to restore", code, stderr.String())
		}
	})
}
