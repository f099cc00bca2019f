#!/usr/bin/env bash
# bench/fastcgi.sh serves hello.php from one php-fpm pool through nginx
# (fastcgi_pass, FastCGI keep-alive) and through gatewise (a
# fastcgi+unix:// target), side by side in one run with wrk
# (bench/fastcgi/), and writes docs/fastcgi-bench.md: requests/s, p50,
# p99 and the CPU time per request of each proxy.
#
# Usage:
#   bash bench/fastcgi.sh                       10s of load per proxy
#   bash bench/fastcgi.sh --duration 5s         a quick run
#   bash bench/fastcgi.sh --gatewise BIN        use this gatewise binary instead of building one
#   bash bench/fastcgi.sh --conns 16 --out ''   more connections, no report page
#
# Options: --duration D, --warmup D, --conns N (wrk connections),
# --children N (php-fpm's pm.max_children), --runs LIST (nginx, gatewise),
# --gatewise BIN, --out FILE (default docs/fastcgi-bench.md; '' for none),
# and --keep (keep the work directory's binaries).
#
# As root on Debian or Ubuntu, nginx, wrk and php8.2-fpm are installed
# with apt-get when missing; as another user the script prints the install
# line and exits 1.
#
# A command line it refuses (an unknown option, a value out of range)
# exits 2 with one line saying why, and leaves no work directory behind.
set -euo pipefail

start_dir=$PWD
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

script=bench/fastcgi.sh
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

duration=10s
warmup=2s
conns=8
children=4
runs=nginx,gatewise
gatewise_bin=""
out=$root/docs/fastcgi-bench.md
keep=0
while (($# > 0)); do
	case $1 in
	--duration | --warmup | --conns | --children | --runs | --gatewise | --out)
		(($# >= 2)) || refuse "$1 needs a value"
		opt=$1
		val=$2
		shift 2
		;;
	--*=*)
		opt=${1%%=*}
		val=${1#*=}
		shift
		;;
	--keep)
		keep=1
		shift
		continue
		;;
	-h | --help)
		usage "${BASH_SOURCE[0]}"
		exit 0
		;;
	*) refuse "unknown argument $1 (see --help)" ;;
	esac
	case $opt in
	--duration) duration=$val ;;
	--warmup) warmup=$val ;;
	--conns) conns=$val ;;
	--children) children=$val ;;
	--runs) runs=$val ;;
	--gatewise) gatewise_bin=$val ;;
	--out) out=$val ;;
	*) refuse "unknown option $opt (see --help)" ;;
	esac
done

# Paths given relative to where the script was started from.
from_start_dir gatewise_bin out

missing=()
have wrk || missing+=(wrk)
have php-fpm8.2 || missing+=(php8.2-fpm)
if [[ ,$runs, == *,nginx,* ]] && ! have nginx; then missing+=(nginx); fi
install_missing "${missing[@]}"

need_go

make_workdir fastcgi

gatewise_note=""
if [[ -n $gatewise_bin ]]; then
	gatewise_note="binary $gatewise_bin given with --gatewise"
elif [[ ,$runs, == *,gatewise,* ]]; then
	build_gatewise
fi
echo "==> go build ./bench/fastcgi"
go build -o "$tmp/bin/fastcgi" ./bench/fastcgi || fail "building bench/fastcgi failed"

echo "==> fastcgi: hello.php, wrk -c$conns for $duration per proxy after $warmup of warm-up; $runs"
ran=1
set +e
"$tmp/bin/fastcgi" -gatewise "$gatewise_bin" -duration "$duration" -warmup "$warmup" -conns "$conns" \
	-children "$children" -runs "$runs" -dir "$tmp" -out "$out" -repo "$root" -gatewise-note "$gatewise_note"
status=$?
set -e
if ((status != 2)); then # 2: the command line was refused; nothing ran
	echo "work directory (configs, logs, results.json): $tmp"
fi
exit "$status"
