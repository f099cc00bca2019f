// Package doctor runs the site owner's checklist after a 502, the one a
// support desk reads out over the phone: free memory as `free -m` reads it,
// OOM kills, disk space, inodes, file descriptors and load, every upstream
// of the config (DNS, connect, TLS, a request and its latency), PHP-FPM's
// status page, MySQL/MariaDB, Memcached and Redis, recent package, config
// and plugin changes set against when the errors began, and the logs
// through internal/logs' reader.
//
// Each check returns Findings with a status (ok, warn, fail, or skip for a
// check that could not run), the evidence, the fix and, where one applies,
// a cause of the one taxonomy (internal/cause). Run ranks them, failures
// first and the most likely cause first among them, and Result renders them
// for a terminal, as JSON, and as a Markdown support report with every
// secret redacted (Redact).
//
// System facts are read from files under Options.Root (/proc, /sys,
// /var/log, /etc), so tests point the checks at fixture trees; every
// network check is bounded by Options.CheckTimeout and never hangs.
package doctor
