package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gatewise/gatewise/internal/check"
)

// checkUsage is the help of `gatewise check`.
const checkUsage = `Usage: gatewise check URL [--json] [--cookie NAME=VALUE ...|--cookies FILE] [--resolver IP] [--control URL ...] [--attempts N]

Is it me, or is it the site? Requests URL a few times with backoff, resolves
its host with your system's resolver and with a second one, reaches control
sites, times each phase, compares the request with and without your cookies
and with Cache-Control: no-cache, and reads which hop produced an error
(the CDN, the site's proxy, or its application) from the response's headers
and body. Prints a verdict, the chain with the failing hop marked, what you
can do, and a message for the site's owner. Requests go only to URL, the
resolver and the control URLs (defaults below; change them with the flags).

Exit status: 0 when the site works, 1 when something fails, 2 for a bad
command line.

Flags:
`

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// checkFlags are the flags of `gatewise check`.
type checkFlags struct {
	json     bool
	cookies  listFlag
	file     string
	resolver string
	controls listFlag
	attempts int
	timeout  time.Duration
}

// runCheck runs `gatewise check`.
func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return checkCommand(ctx, args, check.Options{}, stdout, stderr)
}

// checkCommand is runCheck with base options (the system resolver, the
// TLS roots) as a parameter, for tests.
func checkCommand(ctx context.Context, args []string, base check.Options, stdout, stderr io.Writer) error {
	var f checkFlags
	fs := newFlagSet("check", stderr)
	fs.BoolVar(&f.json, "json", false, "print one JSON document: verdict, at_fault (visitor, network, cdn, proxy, application or none), hops, advice and every measurement")
	fs.Var(&f.cookies, "cookie", "a cookie to send, NAME=VALUE (or several joined by \"; \"); repeat for more")
	fs.StringVar(&f.file, "cookies", "", "a file of cookies to send: a browser's cookies.txt export (Netscape format) or one line of NAME=VALUE pairs")
	fs.StringVar(&f.resolver, "resolver", "1.1.1.1", "the second DNS resolver, IP or IP:port, compared with your system's; off to skip")
	fs.Var(&f.controls, "control", "a control URL to tell your connection from the site's; repeat for more; none to skip (default "+strings.Join(check.DefaultControls(), " and ")+")")
	fs.IntVar(&f.attempts, "attempts", check.DefaultAttempts, fmt.Sprintf("requests to the URL, 1 to %d, with a backoff from 1s doubling up to %s", check.MaxAttempts, check.MaxBackoff))
	fs.DurationVar(&f.timeout, "timeout", check.DefaultTimeout, "the limit of each request and DNS lookup")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), checkUsage)
		fs.PrintDefaults()
	}
	// The URL may come before the flags.
	var rawURL string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		rawURL, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	rest := fs.Args()
	if rawURL == "" && len(rest) > 0 {
		rawURL, rest = rest[0], rest[1:]
	}
	if rawURL == "" {
		return usageError("missing URL")
	}
	if len(rest) > 0 {
		return usageError("one URL at a time: unexpected %q", rest[0])
	}
	u, err := check.ParseURL(rawURL)
	if err != nil {
		return usageError("%v", err)
	}
	opts := base
	opts.Attempts = f.attempts
	if f.attempts < 1 || f.attempts > check.MaxAttempts {
		return usageError("--attempts %d: must be 1 to %d", f.attempts, check.MaxAttempts)
	}
	if f.timeout <= 0 || f.timeout > check.MaxTimeout {
		return usageError("--timeout %s: must be positive and at most %s", f.timeout, check.MaxTimeout)
	}
	opts.Timeout = f.timeout
	if opts.Resolver, err = check.ParseResolver(f.resolver); err != nil {
		return usageError("--resolver: %v", err)
	}
	switch {
	case len(f.controls) == 1 && (f.controls[0] == "none" || f.controls[0] == "off"):
		opts.Controls = []string{}
	case len(f.controls) > 0:
		if len(f.controls) > check.MaxControls {
			return usageError("--control given %d times: at most %d", len(f.controls), check.MaxControls)
		}
		for _, c := range f.controls {
			if _, err := check.ParseURL(c); err != nil {
				return usageError("--control: %v", err)
			}
		}
		opts.Controls = f.controls
	}
	if len(f.cookies) > 0 && f.file != "" {
		return usageError("--cookie and --cookies exclude each other")
	}
	if len(f.cookies) > 0 {
		if opts.Cookie, err = check.JoinCookies(f.cookies); err != nil {
			return usageError("--cookie: %v", err)
		}
	}
	if f.file != "" {
		data, err := readLimited(f.file, check.MaxCookieFileBytes)
		if err != nil {
			return err
		}
		if opts.Cookie, err = check.CookieHeader(data, u); err != nil {
			return fmt.Errorf("--cookies %s: %w", f.file, err)
		}
		if opts.Cookie == "" {
			fmt.Fprintf(stderr, "gatewise check: note: %s has no cookie for %s\n", f.file, u.Hostname())
		}
	}
	rep, err := check.Run(ctx, u.String(), opts)
	if err != nil {
		if errors.Is(err, check.ErrBadURL) || errors.Is(err, check.ErrBadOption) {
			return usageError("%v", err)
		}
		return err
	}
	if f.json {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if rep.AtFault != check.AtFaultNone {
		return errSilentFailure
	}
	return nil
}

// readLimited reads a file of at most max bytes.
func readLimited(name string, max int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, max)
	}
	return data, nil
}
