package errorpage

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/gatewise/gatewise/internal/cause"
)

const chromiumPath = "/usr/bin/chromium"

// TestChromium renders the HTML page of one cause per hop in a real headless
// Chromium and checks that it renders, that its style is allowed by its own
// Content-Security-Policy, that it loads nothing else, that it fits a 375 px
// wide screen, and that exactly the failing hop is marked.
//
// Set ERRORPAGE_SCREENSHOTS to a directory to keep the screenshots it takes
// (mobile, desktop, dark); otherwise they go to a temporary directory.
func TestChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatal("chromium not found: apt-get install -y chromium")
	}
	table := cause.NewTable()
	dependency := cause.Cause{
		ID: "dependency_down", Title: "Database unavailable", Status: 503, ProxyStatusError: "destination_unavailable",
		Hop: cause.HopDependency, Retryable: true,
		Visitor: "A service the site's application needs is not answering.",
		Owner:   "The application could not reach its database.",
	}
	causes := map[string]cause.Cause{string(dependency.ID): dependency}
	for _, c := range table.All() {
		causes[string(c.ID)] = c
	}

	r, err := New(Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		q := req.URL.Query()
		c, ok := causes[q.Get("cause")]
		if !ok {
			http.NotFound(w, req)
			return
		}
		r.Write(w, req, Problem{
			Cause: c, RequestID: "01JD6Z4W8Q2N3V5X7Y9A1B3C5D", Detail: q.Get("detail"),
			ShowInternal: q.Has("owner"), Internal: "dial tcp 10.0.3.17:8080: connect: connection refused",
			Route: "www", Upstream: "php-pool",
		})
	}))
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	pageURL := func(id string, extra ...string) string {
		v := url.Values{"cause": {id}}
		for _, e := range extra {
			v.Set(e, "1")
		}
		return srv.URL + "/?" + v.Encode()
	}

	tests := []struct {
		desc    string
		cause   string
		owner   bool // show the details for the site owner
		wantHop string
	}{
		{"visitor hop: rate limited", string(cause.RateLimited), false, "visitor"},
		{"network hop: DNS error marks the link", string(cause.DNSError), false, "network"},
		{"gateway hop: concurrency limit", string(cause.ConnectionLimitReached), false, "gateway"},
		{"upstream hop: connection refused", string(cause.ConnectionRefused), false, "upstream"},
		{"application hop: response timeout", string(cause.HTTPResponseTimeout), false, "application"},
		{"dependency hop: a custom cause", string(dependency.ID), false, "dependency"},
		{"owner details: the longest cause id", string(cause.HTTPResponseHeaderSectionSize), true, "application"},
		{"owner details: network", string(cause.DNSError), true, "network"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			tab, cancelTab := chromedp.NewContext(browser)
			defer cancelTab()
			var extra []string
			if tt.owner {
				extra = append(extra, "owner")
			}
			if err := chromedp.Do(tab, chromedp.EmulateViewport(375, 800), chromedp.Navigate(pageURL(tt.cause, extra...))); err != nil {
				t.Fatalf("load page: %v", err)
			}
			title, err := chromedp.Run(tab, chromedp.Title())
			if err != nil {
				t.Fatal(err)
			}
			if want := causes[tt.cause].Title; title == "" || !contains(title, want) {
				t.Errorf("title = %q, want it to contain %q", title, want)
			}
			width, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
			if err != nil {
				t.Fatal(err)
			}
			if width > 375 {
				t.Errorf("scrollWidth at a 375 px viewport = %d, want <= 375", width)
			}
			marked, err := chromedp.Run(tab, chromedp.Evaluate[[]string](
				`Array.from(document.querySelectorAll('.chain .failed')).map(e => e.getAttribute('data-hop'))`))
			if err != nil {
				t.Fatal(err)
			}
			if len(marked) != 1 || marked[0] != tt.wantHop {
				t.Errorf("failing elements' data-hop = %q, want exactly [%q]", marked, tt.wantHop)
			}
			// The style sets --gw: 1 on :root; it is there only if the
			// Content-Security-Policy let the inline style apply.
			gw, err := chromedp.Run(tab, chromedp.Evaluate[string](
				`getComputedStyle(document.documentElement).getPropertyValue('--gw').trim()`))
			if err != nil {
				t.Fatal(err)
			}
			if gw != "1" {
				t.Errorf("custom property --gw = %q, want \"1\": the page's own style was blocked", gw)
			}
			loaded, err := chromedp.Run(tab, chromedp.Evaluate[int](`performance.getEntriesByType('resource').length`))
			if err != nil {
				t.Fatal(err)
			}
			if loaded != 0 {
				t.Errorf("the page loaded %d resources, want 0 (self-contained)", loaded)
			}
		})
	}

	// Screenshots, to judge the design by eye.
	dir := os.Getenv("ERRORPAGE_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	shots := []struct {
		desc          string
		file          string
		url           string
		width, height int64
		dark          bool
	}{
		{"mobile, connection refused", "mobile.png", pageURL(string(cause.ConnectionRefused)), 375, 800, false},
		{"mobile, dark, DNS error", "mobile-dark.png", pageURL(string(cause.DNSError)), 375, 800, true},
		{"mobile, rate limited", "mobile-visitor.png", pageURL(string(cause.RateLimited)), 375, 800, false},
		{"mobile, owner details", "mobile-owner.png", pageURL(string(cause.HTTPResponseTimeout), "owner"), 375, 800, false},
		{"desktop, dependency", "desktop.png", pageURL(string(dependency.ID)), 1280, 900, false},
		{"just wider than the one-column layout, dependency", "tablet.png", pageURL(string(dependency.ID)), 740, 900, false},
		{"desktop, dark, owner details", "desktop-dark.png", pageURL(string(cause.DNSError), "owner"), 1280, 900, true},
	}
	for _, s := range shots {
		t.Run("screenshot "+s.desc, func(t *testing.T) {
			tab, cancelTab := chromedp.NewContext(browser)
			defer cancelTab()
			scheme := "light"
			if s.dark {
				scheme = "dark"
			}
			png, err := chromedp.Run(tab, func(ctx context.Context, tg *chromedp.Target) ([]byte, error) {
				if _, err := chromedp.EmulateViewport(s.width, s.height)(ctx, tg); err != nil {
					return nil, err
				}
				if _, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
					Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
				}); err != nil {
					return nil, err
				}
				if _, err := chromedp.Navigate(s.url)(ctx, tg); err != nil {
					return nil, err
				}
				return chromedp.FullScreenshot(100)(ctx, tg)
			})
			if err != nil {
				t.Fatalf("screenshot: %v", err)
			}
			if len(png) == 0 {
				t.Fatal("screenshot is empty")
			}
			path := filepath.Join(dir, s.file)
			if err := os.WriteFile(path, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot: %s", path)
		})
	}
}
