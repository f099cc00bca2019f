package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/gatewise/gatewise/internal/config"
)

// configUsage is the help of `gatewise config`.
const configUsage = `Usage: gatewise config validate FILE...
       gatewise config defaults

Subcommands:
  validate  check config files without starting anything: YAML syntax, unknown
            keys, types, impossible values, and the files they name (TLS
            certificates and keys, CA bundles, error page templates, access
            log directory). Prints "FILE: ok (...)" or every problem as
            FILE:LINE: field: problem, and exits 1 on a problem.
            FILE "-" reads the config from the standard input.
  defaults  print a commented example config showing every setting and its
            default; it passes validate.
`

// runConfig runs `gatewise config SUBCOMMAND`.
func runConfig(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return configCommand(ctx, args, os.Stdin, stdout, stderr)
}

// configCommand is runConfig with the standard input as a parameter.
func configCommand(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError("missing subcommand: want validate or defaults")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, configUsage)
		return flag.ErrHelp
	case "validate":
		return configValidate(args[1:], stdin, stdout, stderr)
	case "defaults":
		return configDefaults(args[1:], stdout, stderr)
	}
	return usageError("unknown subcommand %q: want validate or defaults", args[0])
}

// configValidateFlags are the flags of `gatewise config validate`.
type configValidateFlags struct {
	// quiet leaves out the "FILE: ok" lines: only problems are printed.
	quiet bool
}

// configValidate runs `gatewise config validate FILE...`.
func configValidate(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var f configValidateFlags
	fs := newFlagSet("config validate", stderr)
	fs.BoolVar(&f.quiet, "q", false, "print only problems, not the ok lines")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), configUsage+"\nFlags of validate:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError("config validate: missing FILE")
	}
	failed := false
	for _, file := range fs.Args() {
		cfg, err := validateOne(file, stdin)
		var errs *config.Errors
		switch {
		case errors.As(err, &errs):
			for _, fe := range errs.List {
				fmt.Fprintln(stderr, fe.Error())
			}
			failed = true
		case err != nil:
			fmt.Fprintf(stderr, "gatewise config: %s\n", oneLine(err.Error()))
			failed = true
		case !f.quiet:
			fmt.Fprintf(stdout, "%s: ok (%s, %s, %s)\n", cfg.File,
				plural(len(cfg.Listeners), "listener"), plural(len(cfg.Pools), "pool"), plural(len(cfg.Routes), "route"))
		}
	}
	if failed {
		return errSilentFailure
	}
	return nil
}

// validateOne loads, completes and validates one config; file "-" is read
// from stdin and named "<stdin>" in messages.
func validateOne(file string, stdin io.Reader) (*config.Config, error) {
	if file != "-" {
		return config.LoadValid(file)
	}
	data, err := io.ReadAll(stdin)
	if err != nil {
		return nil, fmt.Errorf("cannot read config from the standard input: %w", err)
	}
	return config.ParseValid("<stdin>", data)
}

// configDefaults runs `gatewise config defaults`.
func configDefaults(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("config defaults", stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), configUsage) }
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("config defaults: unexpected argument %q", fs.Arg(0))
	}
	_, err := io.WriteString(stdout, config.Example())
	return err
}

// plural writes a count and a noun, with an "s" unless the count is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
