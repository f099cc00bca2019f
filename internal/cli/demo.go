package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/faults"
	"github.com/gatewise/gatewise/internal/server"
)

// demoRoute is one failure the demo shows at its own path.
type demoRoute struct {
	path    string
	modes   []faults.Mode
	target  func(*faults.Server) string // nil: the server's URL
	explain string
}

// runDemo starts three demo upstreams (two healthy, one failing in rotating
// ways) plus one upstream per failure, and the gateway in front of them.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve visitors on")
	admin := fs.String("admin-listen", "127.0.0.1:9090", "admin listener address (metrics), or off")
	details := fs.Bool("show-details", false, "show the owner's details (upstream address, raw error) on error pages to loopback visitors")
	quiet := fs.Bool("quiet", false, "do not print the access log")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: gatewise demo [--listen ADDR] [--admin-listen ADDR] [--show-details]\n\nRuns the gateway in front of demo upstreams that fail on purpose.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}

	var started []*faults.Server
	defer func() {
		for _, s := range started {
			s.Close()
		}
	}()
	start := func(name string, modes ...faults.Mode) (*faults.Server, error) {
		s, err := faults.Start(name, modes...)
		if err != nil {
			return nil, err
		}
		s.SlowDelay = 2 * time.Second
		started = append(started, s)
		return s, nil
	}
	app1, err := start("app-1", faults.OK)
	if err != nil {
		return err
	}
	app2, err := start("app-2", faults.OK)
	if err != nil {
		return err
	}
	flaky, err := start("app-3 (flaky)", faults.OK, faults.Reset, faults.Status502, faults.Close, faults.Slow, faults.Junk, faults.TruncatedHeader)
	if err != nil {
		return err
	}
	dead, err := faults.DeadAddr()
	if err != nil {
		return err
	}
	routes := []demoRoute{
		{path: "/demo/refused", target: func(*faults.Server) string { return "http://" + dead }, explain: "nothing listens on the upstream's port"},
		{path: "/demo/timeout", modes: []faults.Mode{faults.Hang}, explain: "the upstream accepts and never answers (2s timeout)"},
		{path: "/demo/reset", modes: []faults.Mode{faults.Reset}, explain: "the upstream resets the connection"},
		{path: "/demo/closed", modes: []faults.Mode{faults.Close}, explain: "the upstream hangs up without answering"},
		{path: "/demo/junk", modes: []faults.Mode{faults.Junk}, explain: "the upstream answers with bytes that are not HTTP"},
		{path: "/demo/huge-header", modes: []faults.Mode{faults.HugeHeader}, explain: "the upstream sends 2 MiB of headers"},
		{path: "/demo/truncated", modes: []faults.Mode{faults.TruncatedBody}, explain: "the upstream stops halfway through the body"},
		{path: "/demo/upstream-502", modes: []faults.Mode{faults.Status502}, explain: "the upstream answers 502 itself (passed through)"},
		{path: "/demo/tls", modes: []faults.Mode{faults.OK}, target: func(s *faults.Server) string { return "https://" + s.Addr() }, explain: "TLS to a port that speaks plain HTTP"},
		{path: "/demo/dns", target: func(*faults.Server) string { return "http://gatewise-demo.invalid" }, explain: "the upstream's name does not resolve"},
	}

	cfg := &config.Config{
		Listeners: []config.Listener{{Address: *listen}},
		Admin:     config.Admin{Address: *admin},
		AccessLog: "stdout",
		Pools: map[string]*config.Pool{
			"app": {Targets: []config.Target{{URL: app1.URL(), Weight: 1}, {URL: app2.URL(), Weight: 1}, {URL: flaky.URL(), Weight: 1}}},
		},
		Routes: []config.Route{{Name: "app", Path: "/", Pool: "app"}},
	}
	if *quiet {
		cfg.AccessLog = "off"
	}
	if *details {
		cfg.ErrorPages.ShowDetailsTo = []string{"127.0.0.0/8", "::1/128"}
	}
	for _, r := range routes {
		var s *faults.Server
		if len(r.modes) > 0 {
			if s, err = start("demo"+r.path, r.modes...); err != nil {
				return err
			}
		}
		u := ""
		if r.target != nil {
			u = r.target(s)
		} else {
			u = s.URL()
		}
		name := r.path[len("/demo/"):]
		cfg.Pools[name] = &config.Pool{Targets: []config.Target{{URL: u, Weight: 1}}}
		cfg.Routes = append(cfg.Routes, config.Route{Name: name, Path: r.path, Pool: name})
	}
	cfg.ApplyDefaults()
	for _, p := range cfg.Pools {
		p.Timeouts.ResponseHeader.Duration = 2 * time.Second
		p.Timeouts.Dial.Duration = 2 * time.Second
	}
	cfg.Pools["app"].Timeouts.ResponseHeader.Duration = 5 * time.Second
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.New(cfg, server.Options{Stdout: stdout, Logger: logger})
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	base := "http://" + srv.Addrs()[0].String()
	fmt.Fprintf(stderr, "gatewise demo: the gateway is at %s\n\n", base)
	fmt.Fprintf(stderr, "  %s/            three upstreams; app-3 fails in rotating ways: reload a few times\n", base)
	for _, r := range routes {
		fmt.Fprintf(stderr, "  %-40s %s\n", base+r.path, r.explain)
	}
	fmt.Fprintf(stderr, "\nIn a browser you get the HTML page; with curl, text; with an API client, problem+json:\n")
	fmt.Fprintf(stderr, "  curl -i %s/demo/refused\n  curl -i -H 'Accept: application/json' %s/demo/timeout\n", base, base)
	if a := srv.AdminAddr(); a != nil {
		fmt.Fprintf(stderr, "  curl -s http://%s/metrics | grep gatewise_upstream_failures_total\n", a)
	}
	fmt.Fprintf(stderr, "\nThe access log (one JSON line per request) follows; Ctrl-C stops the demo.\n\n")
	return serveUntilDone(ctx, srv, cfg, logger)
}
