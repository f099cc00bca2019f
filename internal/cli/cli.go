// Package cli implements gatewise's command line: one file per subcommand,
// each with its flags in a struct. Run is the only entry point; it returns
// the process's exit code and never panics on bad input.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"sort"
	"strings"
)

// Exit codes returned by Run.
const (
	// ExitOK means success.
	ExitOK = 0
	// ExitFailure means the command ran and found a problem (an invalid
	// config, a failed check) or could not do its work.
	ExitFailure = 1
	// ExitUsage means the command line itself was wrong.
	ExitUsage = 2
)

// errUsage marks an error in the command line: Run prints it with a hint
// and returns ExitUsage.
var errUsage = errors.New("usage")

// usageError returns an error for a bad command line, matched with
// errors.Is(err, errUsage).
func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands returns the subcommands by name. It is built on each call so no
// state is shared between runs.
func commands() map[string]command {
	return map[string]command{
		"serve":  {summary: "run the gateway", run: runServe},
		"config": {summary: "validate a config file (config validate FILE)", run: runConfig},
		"demo":   {summary: "run the gateway in front of three demo upstreams", run: runDemo},
		"causes": {summary: "list the cause taxonomy", run: runCauses},
		"logs":   {summary: "read servers' logs and say why the 502s happened", run: runLogs},
		"check":  {summary: "is it me or the site? check a URL and say which hop fails", run: runCheck},
		"bisect": {summary: "find the plugin that breaks a site, and put every plugin back", run: runBisect},
		"doctor": {summary: "run the owner's checklist after a 502 and write a support report", run: runDoctor},
	}
}

// Run runs gatewise with the arguments after the program name and returns
// the exit code. Errors go to stderr as one line starting with "gatewise:".
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 {
		printUsage(stderr, cmds)
		return ExitUsage
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout, cmds)
		return ExitOK
	}
	if args[0] == "version" || args[0] == "--version" {
		fmt.Fprintln(stdout, "gatewise", version())
		return ExitOK
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "gatewise: unknown command %q (run 'gatewise help' for the list)\n", args[0])
		return ExitUsage
	}
	err := cmd.run(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.Is(err, errUsage):
		msg := strings.TrimPrefix(err.Error(), errUsage.Error()+": ")
		fmt.Fprintf(stderr, "gatewise %s: %s (run 'gatewise %s -h' for help)\n", args[0], msg, args[0])
		return ExitUsage
	case errors.Is(err, errSilentFailure):
		return ExitFailure
	case errors.As(err, new(exitCode)):
		// The command printed its result and chose its exit code.
		var code exitCode
		errors.As(err, &code)
		return int(code)
	default:
		fmt.Fprintf(stderr, "gatewise %s: %s\n", args[0], oneLine(err.Error()))
		return ExitFailure
	}
}

// errSilentFailure is returned by a command that has already printed why it
// failed; Run exits 1 without printing more.
var errSilentFailure = errors.New("failed")

// version returns the module version the binary was built from (set by
// `go install module@version`), or "dev" for a build from a work tree.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func printUsage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "gatewise: a reverse proxy that prevents 502s and explains the rest")
	fmt.Fprintln(w, "\nUsage: gatewise COMMAND [flags]\n\nCommands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "  version  print the version")
}

// oneLine collapses an error message to one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// newFlagSet returns a flag set that reports errors instead of exiting and
// prints its usage to w.
func newFlagSet(name string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("gatewise "+name, flag.ContinueOnError)
	fs.SetOutput(w)
	return fs
}

// parseFlags parses args into fs, turning a flag error into a usage error
// (the flag package has printed nothing: its output goes to io.Discard
// until help is asked for).
func parseFlags(fs *flag.FlagSet, args []string, helpOut io.Writer) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(helpOut)
		fs.Usage()
		return flag.ErrHelp
	}
	if err != nil {
		return usageError("%s", err.Error())
	}
	return nil
}
