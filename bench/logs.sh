#!/usr/bin/env bash
# bench/logs.sh times `gatewise logs` over a generated 1 GB nginx error log
# (most lines failures, as during an incident), beside `grep -c` over the
# same file as the floor (the cost of reading the bytes and finding lines),
# and prints MB/s and the peak memory of each. The file is written in a
# temporary directory and deleted at the end.
#
# Usage:
#   bash bench/logs.sh                 1 GB (1024 MiB)
#   bash bench/logs.sh --size-mb 256   a quicker run
#   bash bench/logs.sh --gatewise BIN  use this binary instead of building one
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
script=bench/logs.sh
keep=0
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

size_mb=1024
bin=""
while (($# > 0)); do
	case $1 in
	--size-mb) size_mb=$2; shift 2 ;;
	--gatewise) bin=$2; shift 2 ;;
	-h | --help) sed -n '2,12p' "$0"; exit 0 ;;
	*) fail "unknown argument $1 (see --help)" ;;
	esac
done
[[ $size_mb =~ ^[0-9]+$ && $size_mb -gt 0 ]] || fail "--size-mb: want a positive number of MiB, got $size_mb"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gatewise-logs-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if [[ -z $bin ]]; then
	need_go
	bin=$tmp/gatewise
	go build -o "$bin" ./cmd/gatewise
fi

# A 4 MiB block of varied lines (eight kinds: refused, timed out, reset,
# a missing file, a full FPM socket, a buffered response, a PHP warning,
# an early close), repeated to the size asked for.
log=$tmp/error.log
awk 'BEGIN {
	n = 0
	while (bytes < 4 * 1048576) {
		s = sprintf("2026/11/23 %02d:%02d:%02d ", int(n / 360000) % 24, int(n / 6000) % 60, int(n / 100) % 60)
		k = n % 8
		if (k == 0) s = s sprintf("[error] 4121#4121: *%d connect() failed (111: Connection refused) while connecting to upstream, client: 203.0.113.7, server: example.com, request: \"GET /shop/cart?item=%d HTTP/1.1\", upstream: \"http://127.0.0.1:9001/shop/cart?item=%d\", host: \"example.com\"", n, n, n)
		if (k == 1) s = s sprintf("[error] 4121#4121: *%d upstream timed out (110: Connection timed out) while reading response header from upstream, client: 203.0.113.7, server: example.com, request: \"POST /wp-admin/admin-ajax.php?x=%d HTTP/2.0\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"example.com\"", n, n)
		if (k == 2) s = s sprintf("[error] 4121#4121: *%d recv() failed (104: Connection reset by peer) while reading response header from upstream, client: 198.51.100.23, server: example.com, request: \"GET /api/items/%d HTTP/1.1\", upstream: \"http://10.0.0.12:8080/api/items/%d\", host: \"api.example.com\"", n, n, n)
		if (k == 3) s = s sprintf("[error] 4121#4121: *%d open() \"/var/www/html/wp-content/uploads/%d.jpg\" failed (2: No such file or directory), client: 192.0.2.44, server: example.com, request: \"GET /wp-content/uploads/%d.jpg HTTP/1.1\", host: \"example.com\"", n, n, n)
		if (k == 4) s = s sprintf("[error] 4121#4121: *%d connect() to unix:/run/php/php8.2-fpm.sock failed (11: Resource temporarily unavailable) while connecting to upstream, client: 203.0.113.9, server: example.com, request: \"GET /?p=%d HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"example.com\"", n, n)
		if (k == 5) s = s sprintf("[warn] 4121#4121: *%d an upstream response is buffered to a temporary file /var/cache/nginx/fastcgi_temp/1/00/%d while reading upstream, client: 203.0.113.7, server: example.com, request: \"GET /feed/%d HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"example.com\"", n, n, n)
		if (k == 6) s = s sprintf("[error] 4121#4121: *%d FastCGI sent in stderr: \"PHP message: PHP Warning:  Undefined array key \\\"id\\\" in /var/www/html/wp-content/plugins/x/x.php on line %d\" while reading response header from upstream, client: 203.0.113.7, server: example.com, request: \"GET /?id=%d HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"example.com\"", n, n, n)
		if (k == 7) s = s sprintf("[error] 4121#4121: *%d upstream prematurely closed connection while reading response header from upstream, client: 203.0.113.7, server: example.com, request: \"GET /checkout/%d HTTP/1.1\", upstream: \"http://127.0.0.1:9002/checkout/%d\", host: \"example.com\"", n, n, n)
		print s
		bytes += length(s) + 1
		n++
	}
}' >"$tmp/block"
for ((i = 0; i < size_mb / 4; i++)); do cat "$tmp/block"; done >"$log"
bytes=$(stat -c %s "$log")
mb=$(awk -v b="$bytes" 'BEGIN { printf "%.0f", b / 1048576 }')

# timed CMD...: runs CMD with stdout to a file (GNU grep stops at the
# first match when its output is /dev/null) and prints "ELAPSED CPU
# MAXRSS_KB", CPU being user + system seconds: on a shared machine the
# elapsed time includes waiting for a core.
timed() {
	/usr/bin/time -f '%e %U %S %M' -o "$tmp/time" "$@" >"$tmp/out"
	awk '{ printf "%s %.2f %s\n", $1, $2 + $3, $4 }' "$tmp/time"
}

cat "$log" >/dev/null # into the page cache, so both read from memory
read -r g_s g_cpu g_kb < <(timed grep -c upstream "$log")
read -r t_s t_cpu t_kb < <(timed "$bin" logs "$log")
grep -q "error.log: nginx-error" "$tmp/out" || fail "gatewise logs did not read the file as nginx's error log: $(tail -3 "$tmp/out")"
read -r w_s w_cpu w_kb < <(timed "$bin" logs --json --max-events 1000 "$log")

rate() { awk -v b="$bytes" -v s="$1" 'BEGIN { if (s > 0) printf "%.0f", b / 1e6 / s; else print "inf" }'; }
printf '%s MiB nginx error log, %s, %s CPUs, %s\n' "$mb" "$(uname -m)" "$(nproc)" "$(date -u +%F)"
printf 'load average (1, 5, 15 min) after the runs: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-24s %9s %9s %10s %10s %12s\n' "command" "elapsed s" "CPU s" "MB/s wall" "MB/s CPU" "max RSS MiB"
row() { printf '%-24s %9s %9s %10s %10s %12s\n' "$1" "$2" "$3" "$(rate "$2")" "$(rate "$3")" "$(($4 / 1024))"; }
row "grep -c upstream" "$g_s" "$g_cpu" "$g_kb"
row "gatewise logs" "$t_s" "$t_cpu" "$t_kb"
row "gatewise logs --json" "$w_s" "$w_cpu" "$w_kb"
