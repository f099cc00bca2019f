package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/heapfloor"
	"github.com/gatewise/gatewise/internal/server"
)

// serveFlags are the flags of `gatewise serve`.
type serveFlags struct {
	configFile            string
	listen                string
	upstreams             multiFlag
	adminListen           string
	dialTimeout           time.Duration
	responseHeaderTimeout time.Duration
	accessLog             string
	logLevel              string
	rateLimit             string
	maxInFlight           int
	root                  string
	index                 string
}

// multiFlag is a flag that may repeat.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f serveFlags
	fs := newFlagSet("serve", stderr)
	fs.StringVar(&f.configFile, "config", "", "config file (gatewise.yaml); excludes the quick-start flags")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8080", "quick start: address to serve visitors on")
	fs.Var(&f.upstreams, "upstream", "quick start: upstream URL, http://host:port or https://host:port, or PHP-FPM as fastcgi://host:port or fastcgi+unix:///path.sock (repeat for more targets)")
	fs.StringVar(&f.adminListen, "admin-listen", "127.0.0.1:9090", "quick start: admin listener address (metrics), or off")
	fs.DurationVar(&f.dialTimeout, "dial-timeout", 5*time.Second, "quick start: upstream connect timeout")
	fs.DurationVar(&f.responseHeaderTimeout, "response-header-timeout", 30*time.Second, "quick start: wait for upstream response headers")
	fs.StringVar(&f.accessLog, "access-log", "stdout", "quick start: access log destination: stdout, stderr, off or a file")
	fs.StringVar(&f.logLevel, "log-level", "info", "process log level on stderr: debug, info, warn, error")
	fs.StringVar(&f.rateLimit, "rate-limit", "", "quick start: a rate limit per client IP, such as 50/s (default: none)")
	fs.IntVar(&f.maxInFlight, "max-in-flight", 0, "quick start: a fixed limit of requests in flight to the upstreams (default: learned from their latency)")
	fs.StringVar(&f.root, "root", "", "quick start, PHP-FPM upstreams: the document root, as PHP-FPM sees it (required with them)")
	fs.StringVar(&f.index, "index", config.DefaultFastCGIIndex, "quick start, PHP-FPM upstreams: the directory index and front controller")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: gatewise serve --upstream URL [--upstream URL ...] [--listen ADDR] [flags]\n       gatewise serve --upstream fastcgi+unix:///run/php/php8.2-fpm.sock --root /var/www/html [flags]\n       gatewise serve --config gatewise.yaml\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return usageError("--log-level: want debug, info, warn or error, got %q", f.logLevel)
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg, err := serveConfig(fs, &f)
	if err != nil {
		return err
	}
	srv, err := server.New(cfg, server.Options{Stdout: stdout, Logger: logger})
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	// One heap floor per process (not per server: tests run many): the
	// collector runs a few times a second under load, not dozens.
	floor := heapfloor.FloorWithin(srv.MemoryLimit())
	if keeper := heapfloor.Start(floor, os.Getenv); keeper != nil {
		defer keeper.Stop()
		logger.Debug("garbage collector heap floor", slog.Int64("floor_bytes", floor))
	}
	return serveUntilDone(ctx, srv, cfg, logger)
}

// serveConfig builds the config from --config or from the quick-start flags.
func serveConfig(fs *flag.FlagSet, f *serveFlags) (*config.Config, error) {
	quick := []string{}
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "listen", "upstream", "admin-listen", "dial-timeout", "response-header-timeout", "access-log", "rate-limit", "max-in-flight", "root", "index":
			quick = append(quick, "--"+fl.Name)
		}
	})
	if f.configFile != "" {
		if len(quick) > 0 {
			return nil, usageError("--config excludes %s: put those settings in the file", strings.Join(quick, ", "))
		}
		cfg, err := config.LoadValid(f.configFile)
		if err != nil {
			return nil, firstConfigError(f.configFile, err)
		}
		return cfg, nil
	}
	if len(f.upstreams) == 0 {
		return nil, usageError("give --upstream URL (or --config FILE)")
	}
	cfg := &config.Config{
		Listeners: []config.Listener{{Address: f.listen}},
		Admin:     config.Admin{Address: f.adminListen},
		AccessLog: f.accessLog,
		Pools:     map[string]*config.Pool{"default": {}},
	}
	fastcgi := false
	for _, u := range f.upstreams {
		if err := checkUpstreamFlag(u); err != nil {
			return nil, err
		}
		fastcgi = fastcgi || config.IsFastCGIURL(u)
		cfg.Pools["default"].Targets = append(cfg.Pools["default"].Targets, config.Target{URL: u, Weight: 1})
	}
	if err := fastcgiFlags(fs, f, cfg.Pools["default"], fastcgi); err != nil {
		return nil, err
	}
	if f.rateLimit != "" {
		if _, err := config.ParseRate(f.rateLimit); err != nil {
			return nil, usageError("--rate-limit: %v", err)
		}
		cfg.RateLimit = &config.RateLimit{Rate: f.rateLimit}
	}
	if f.maxInFlight < 0 {
		return nil, usageError("--max-in-flight: must be positive, got %d", f.maxInFlight)
	}
	if f.maxInFlight > 0 {
		off := false
		cfg.Pools["default"].Concurrency = config.Concurrency{MaxInFlight: f.maxInFlight, Adaptive: &off}
	}
	cfg.ApplyDefaults()
	p := cfg.Pools["default"]
	p.Timeouts.Dial.Duration = f.dialTimeout
	p.Timeouts.ResponseHeader.Duration = f.responseHeaderTimeout
	if err := cfg.Validate(); err != nil {
		return nil, flagConfigError(err)
	}
	return cfg, nil
}

// checkUpstreamFlag gives a clear error for an --upstream value that is not
// an http(s) or fastcgi URL.
func checkUpstreamFlag(raw string) error {
	u, err := url.Parse(raw)
	if err == nil && u.Scheme == config.SchemeFastCGIUnix {
		return nil // the config's validation says what is wrong with the path
	}
	if err != nil || u.Host == "" {
		return usageError("--upstream %q: want a URL like http://127.0.0.1:9001 or fastcgi+unix:///run/php/php8.2-fpm.sock", raw)
	}
	switch u.Scheme {
	case "http", "https", config.SchemeFastCGI:
		return nil
	}
	return usageError("--upstream %q: scheme %q is not supported; use http://, https://, fastcgi:// or fastcgi+unix://", raw, u.Scheme)
}

// fastcgiFlags applies --root and --index to the quick start's pool p,
// whose targets are PHP-FPM when fastcgi is set. A relative --root is made
// absolute from the working directory.
func fastcgiFlags(fs *flag.FlagSet, f *serveFlags, p *config.Pool, fastcgi bool) error {
	indexSet := false
	fs.Visit(func(fl *flag.Flag) { indexSet = indexSet || fl.Name == "index" })
	switch {
	case !fastcgi && f.root != "":
		return usageError("--root: only for PHP-FPM upstreams (fastcgi:// or fastcgi+unix://)")
	case !fastcgi && indexSet:
		return usageError("--index: only for PHP-FPM upstreams (fastcgi:// or fastcgi+unix://)")
	case !fastcgi:
		return nil
	case f.root == "":
		return usageError("--root: required with a PHP-FPM upstream: the document root as PHP-FPM sees it, such as /var/www/html")
	}
	root, err := filepath.Abs(f.root)
	if err != nil {
		return usageError("--root %q: %v", f.root, err)
	}
	p.FastCGI = &config.FastCGI{Root: root, Index: f.index}
	return nil
}

// firstConfigError turns config errors into one line: the first error and
// how many more there are.
func firstConfigError(file string, err error) error {
	var errs *config.Errors
	if errors.As(err, &errs) && len(errs.List) > 0 {
		msg := errs.List[0].Error()
		if n := len(errs.List) - 1; n > 0 {
			msg += fmt.Sprintf(" (and %d more: run 'gatewise config validate %s')", n, file)
		}
		return errors.New(msg)
	}
	return err
}

// flagConfigError names the flags behind quick-start config errors.
func flagConfigError(err error) error {
	var errs *config.Errors
	if !errors.As(err, &errs) || len(errs.List) == 0 {
		return err
	}
	fe := errs.List[0]
	flagOf := map[string]string{
		"listeners[0].address":                    "--listen",
		"admin.address":                           "--admin-listen",
		"access_log":                              "--access-log",
		"pools.default.timeouts.dial":             "--dial-timeout",
		"pools.default.timeouts.response_header":  "--response-header-timeout",
		"rate_limit.rate":                         "--rate-limit",
		"pools.default.concurrency.max_in_flight": "--max-in-flight",
		"pools.default.fastcgi.root":              "--root",
		"pools.default.fastcgi.index":             "--index",
	}
	name := fe.Field
	if fl, ok := flagOf[fe.Field]; ok {
		name = fl
	} else if strings.HasPrefix(fe.Field, "pools.default.targets") {
		name = "--upstream"
	}
	return usageError("%s: %s", name, fe.Problem)
}

// serveUntilDone runs until ctx is cancelled (SIGINT, SIGTERM) or a
// listener fails, reloading the config file on SIGHUP.
func serveUntilDone(ctx context.Context, srv *server.Server, cfg *config.Config, logger *slog.Logger) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return shutdown(srv, cfg, logger)
		case err := <-srv.Errors():
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = srv.Shutdown(sctx)
			cancel()
			return err
		case <-hup:
			cfg = reload(srv, cfg, logger)
		}
	}
}

// reload reads the config file again and applies it; an invalid file keeps
// the running config, and says why.
func reload(srv *server.Server, cfg *config.Config, logger *slog.Logger) *config.Config {
	if cfg.File == "" {
		logger.Info("SIGHUP: no config file to reload (started with flags); reopening logs only")
		if err := srv.Reload(cfg); err != nil {
			logger.Warn("reload failed; keeping the running config", slog.String("error", err.Error()))
		}
		return cfg
	}
	next, err := config.LoadValid(cfg.File)
	if err == nil {
		err = srv.Reload(next)
	} else {
		srv.CountInvalidReload()
	}
	if err != nil {
		var errs *config.Errors
		if errors.As(err, &errs) {
			for _, fe := range errs.List {
				logger.Warn("reload: invalid config; keeping the running config", slog.String("error", fe.Error()))
			}
		} else {
			logger.Warn("reload failed; keeping the running config", slog.String("error", err.Error()))
		}
		return cfg
	}
	logger.Info("reloaded config", slog.String("file", cfg.File))
	return next
}

// shutdown stops accepting and waits for requests in flight, up to the
// config's shutdown timeout; a second signal stops at once.
func shutdown(srv *server.Server, cfg *config.Config, logger *slog.Logger) error {
	d := cfg.ShutdownTimeout.Duration
	logger.Info("shutting down: no new connections; waiting for requests in flight", slog.Duration("deadline", d))
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	go func() {
		select {
		case <-again:
			logger.Warn("second signal: closing connections now")
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := srv.Shutdown(ctx); err != nil {
		logger.Warn("shutdown deadline passed: closed the connections still open", slog.String("error", err.Error()))
		return nil
	}
	logger.Info("stopped")
	return nil
}
