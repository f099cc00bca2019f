// Package logs reads the logs of the servers around a site (nginx, Apache,
// PHP-FPM, PHP, HAProxy, Caddy, Traefik, the kernel, MySQL/MariaDB and
// gatewise itself), detects each file's format from its first lines, and
// turns every line that explains a failed request into an Event carrying a
// cause from the one taxonomy (internal/cause). Summarize ranks the causes,
// builds a timeline and links events across files into likely chains (an
// OOM kill, then the pool restarting, then refused connections).
//
// Reading streams: a file is never loaded whole, lines longer than MaxLine
// are counted as unreadable, and lines that explain nothing cost no
// allocation.
package logs

import (
	"time"

	"github.com/gatewise/gatewise/internal/cause"
)

// MaxLine is the longest line read, in bytes (64 KiB). A longer line is
// skipped and counted as unreadable, so memory stays bounded.
const MaxLine = 64 << 10

// maxRaw is how much of a line an Event keeps in Raw, in bytes.
const maxRaw = 512

// Format names a log format. Detect returns one of the constants below.
type Format string

// The formats the reader knows.
const (
	FormatNginxError  Format = "nginx-error"
	FormatNginxAccess Format = "nginx-access"
	FormatApacheError Format = "apache-error"
	FormatPHPFPM      Format = "php-fpm"
	FormatPHP         Format = "php"
	FormatHAProxy     Format = "haproxy"
	FormatCaddy       Format = "caddy"
	FormatTraefikJSON Format = "traefik-json"
	FormatTraefik     Format = "traefik"
	FormatKernel      Format = "kernel"   // dmesg, dmesg -T, /dev/kmsg
	FormatSyslog      Format = "syslog"   // kern.log, syslog, journalctl short: the program is on each line
	FormatMySQL       Format = "mysql"    // MySQL and MariaDB error logs
	FormatGatewise    Format = "gatewise" // gatewise's JSON access log and warnings
	FormatUnknown     Format = "unknown"  // every server's signatures are tried on each line
)

// Kind says what an event is. Most events are a cause of the taxonomy;
// the others are what happens around the failures and explains them.
type Kind string

// The kinds of events.
const (
	// KindCause is a line that maps to a cause of the taxonomy (Event.Cause).
	KindCause Kind = "cause"
	// KindOOMKill is the kernel's OOM killer killing a process
	// (Event.Process names the victim), or systemd reporting that a unit's
	// process was killed by it.
	KindOOMKill Kind = "oom_kill"
	// KindWorkerExit is a worker process that died of a signal (a PHP-FPM
	// child exiting on SIGKILL or SIGSEGV) when the taxonomy has no cause
	// for it.
	KindWorkerExit Kind = "worker_exit"
	// KindRestart is a service starting or restarting (PHP-FPM ready to
	// handle connections, MySQL ready for connections, nginx or Apache
	// starting).
	KindRestart Kind = "restart"
	// KindStatus is a response with status 502, 503 or 504 in an access
	// log that does not say why (nginx's combined format): Summarize links
	// it to the cause events of the same second in other files.
	KindStatus Kind = "http_status"
	// KindDependency is a dependency failing (MySQL's "Too many
	// connections", a MySQL crash).
	KindDependency Kind = "dependency"
)

// Event is one relevant log line.
type Event struct {
	// Time is when the line says it happened; zero when the line has no
	// time the reader understands.
	Time time.Time `json:"time,omitzero"`
	// Source is the file the line came from ("-" for the standard input).
	Source string `json:"source"`
	// Format is the format of the file.
	Format Format `json:"format"`
	// Line is the line's number in the file, from 1.
	Line int64 `json:"line"`
	// Kind says what the event is.
	Kind Kind `json:"kind"`
	// Cause is the cause of the taxonomy, for KindCause.
	Cause cause.ID `json:"cause,omitempty"`
	// Detail is a short note: the OOM victim, the signal, a status.
	Detail string `json:"detail,omitempty"`
	// Process is the process named by the line (the OOM victim, the
	// service), when there is one.
	Process string `json:"process,omitempty"`
	// Upstream is the upstream the proxy was talking to, when the line
	// names one.
	Upstream string `json:"upstream,omitempty"`
	// Method and Path are the client request, when the line names it.
	Method string `json:"method,omitempty"`
	Path   string `json:"path,omitempty"`
	// RequestID is the request's ID, when the line has one (gatewise's).
	RequestID string `json:"request_id,omitempty"`
	// Status is the HTTP status sent to the client, when the line has it.
	Status int `json:"status,omitempty"`
	// Raw is the line itself, cut to 512 bytes.
	Raw string `json:"raw"`
}

// Label returns the name under which the event is counted: the cause ID
// for KindCause, the kind otherwise.
func (e *Event) Label() string {
	if e.Kind == KindCause {
		return string(e.Cause)
	}
	return string(e.Kind)
}

// rawString returns line as a string cut to maxRaw bytes on a rune
// boundary, without its line ending.
func rawString(line []byte) string {
	line = trimEOL(line)
	if len(line) > maxRaw {
		cut := maxRaw
		for cut > 0 && line[cut]&0xC0 == 0x80 {
			cut--
		}
		return string(line[:cut]) + "…"
	}
	return string(line)
}

// trimEOL drops a trailing "\n" or "\r\n".
func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}
