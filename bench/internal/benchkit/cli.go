package benchkit

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// ErrUsage is returned by ParseFlags for a bad command line, whose
// message the flag set has already printed; ExitCode turns it into exit
// status 2.
var ErrUsage = errors.New("usage")

// ParseFlags parses args with fs (made with flag.ContinueOnError) and
// accepts no argument after the flags. It returns flag.ErrHelp for -h and
// -help, and ErrUsage for a bad flag (which fs has reported) or an
// argument left over (reported on stderr as "NAME: unexpected argument",
// NAME being fs's name).
func ParseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return ErrUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return ErrUsage
	}
	return nil
}

// Usagef returns the error of a command line the flag set accepted but
// the program cannot (a value out of range, an unknown name): it is an
// ErrUsage, so the exit status is 2 as for a bad flag, and ExitCode
// prints its message.
func Usagef(format string, a ...any) error {
	return usageError{msg: fmt.Sprintf(format, a...)}
}

// usageError is Usagef's error.
type usageError struct{ msg string }

func (e usageError) Error() string        { return e.msg }
func (e usageError) Is(target error) bool { return target == ErrUsage }

// ExitCode is a benchmark program's exit status for the error its run
// returned: 0 for none or flag.ErrHelp, 2 for ErrUsage (reported already
// by the flag set, or a Usagef error, written as below), and 1 for any
// other, written to stderr on one line as "NAME: error".
func ExitCode(name string, err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrUsage):
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(stderr, name+": "+OneLine(err.Error()))
		}
		return 2
	}
	fmt.Fprintln(stderr, name+": "+OneLine(err.Error()))
	return 1
}

// Main runs a benchmark program: run gets the command-line arguments
// after the program's name, its output streams, and a context cancelled
// by SIGINT or SIGTERM (so that every process it started is stopped).
// Main returns ExitCode's status for run's error, for os.Exit: an error
// on systems other than Linux (Supported), and a panic in run becomes an
// "internal error" line after run's deferred clean-up has stopped what it
// started.
func Main(name string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) int {
	if !Supported {
		return ExitCode(name, errors.New(name+" runs on Linux only"), os.Stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return ExitCode(name, runRecovered(ctx, run), os.Stderr)
}

// runRecovered calls run, turning a panic into an error.
func runRecovered(ctx context.Context, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error: %v", r)
		}
	}()
	return run(ctx, os.Args[1:], os.Stdout, os.Stderr)
}

// RefusedCase is a command line a program must refuse (Args), and what its
// one line must say (Want).
type RefusedCase struct {
	Args []string
	Want string
}

// CheckRefused runs a benchmark program's run with each case's args, as
// Main would, and returns one error for each case that was not refused as
// a usage error (exit status 2) with stderr holding its Want. It is for
// the programs' tests of their command lines.
func CheckRefused(name string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error, cases []RefusedCase) []error {
	var errs []error
	for _, tc := range cases {
		err := run(context.Background(), tc.Args, io.Discard, io.Discard)
		var stderr strings.Builder
		code := ExitCode(name, err, &stderr)
		if !errors.Is(err, ErrUsage) || code != 2 || !strings.Contains(stderr.String(), tc.Want) {
			errs = append(errs, fmt.Errorf("%q: exit %d, %q (%v); want exit 2 with %q", tc.Args, code, stderr.String(), err, tc.Want))
		}
	}
	return errs
}
