#!/usr/bin/env bash
# bench/chaos.sh runs the same chaos against gatewise, nginx and HAProxy,
# side by side (bench/chaos/), and writes docs/chaos.md.
#
# Usage:
#   bash bench/chaos.sh                      20s of load per proxy
#   bash bench/chaos.sh --duration 5s        a quick run
#   bash bench/chaos.sh --gatewise BIN       use this gatewise binary instead of building one
#   bash bench/chaos.sh --workers 32 --proxies nginx,haproxy --out ''
#
# Options: --duration D, --workers N, --post-percent P, --proxies LIST,
# --gatewise BIN, --out FILE (default docs/chaos.md; '' for none), and
# --keep (keep the work directory; it is kept anyway when the run fails).
#
# As root on Debian or Ubuntu, nginx and HAProxy are installed with apt-get
# when missing; as another user the script prints the install line and
# exits 1.
#
# A command line it refuses (an unknown option, a value out of range)
# exits 2 with one line saying why, and leaves no work directory behind.
set -euo pipefail

start_dir=$PWD
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

script=bench/chaos.sh
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

duration=20s
workers=16
post_percent=20
proxies=gatewise,nginx,haproxy
gatewise_bin=""
out=$root/docs/chaos.md
keep=0
while (($# > 0)); do
	case $1 in
	--duration | --workers | --post-percent | --proxies | --gatewise | --out)
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
	--workers) workers=$val ;;
	--post-percent) post_percent=$val ;;
	--proxies) proxies=$val ;;
	--gatewise) gatewise_bin=$val ;;
	--out) out=$val ;;
	*) refuse "unknown option $opt (see --help)" ;;
	esac
done

# Paths given relative to where the script was started from.
from_start_dir gatewise_bin out

missing=()
for p in nginx haproxy; do
	if [[ ,$proxies, == *,$p,* ]] && ! have "$p"; then missing+=("$p"); fi
done
if ((${#missing[@]} > 0)); then
	install_missing "${missing[@]}"
	for p in "${missing[@]}"; do
		have "$p" || fail "$p is still missing after apt-get install"
	done
fi

need_go

make_workdir chaos

gatewise_note=""
if [[ -n $gatewise_bin ]]; then
	gatewise_note="binary $gatewise_bin given with --gatewise"
else
	build_gatewise
fi
echo "==> go build ./bench/chaos"
go build -o "$tmp/bin/chaos" ./bench/chaos || fail "building bench/chaos failed"

echo "==> chaos: $duration per proxy, $workers clients, $proxies"
ran=1
set +e
"$tmp/bin/chaos" -gatewise "$gatewise_bin" -duration "$duration" -workers "$workers" \
	-post-percent "$post_percent" -proxies "$proxies" -dir "$tmp" -out "$out" -repo "$root" \
	-gatewise-note "$gatewise_note"
status=$?
set -e
if ((status != 2)); then # 2: the command line was refused; nothing ran
	echo "work directory (configs, logs, results.json): $tmp"
fi
exit "$status"
