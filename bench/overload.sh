#!/usr/bin/env bash
# bench/overload.sh offers 5× an upstream's capacity to it straight,
# through nginx and through gatewise, side by side (bench/overload/), and
# writes docs/overload.md.
#
# Usage:
#   bash bench/overload.sh                       10s of load per contender
#   bash bench/overload.sh --duration 5s         a quick run
#   bash bench/overload.sh --gatewise BIN        use this gatewise binary instead of building one
#   bash bench/overload.sh --runs nginx,gatewise --out ''
#
# Options: --duration D, --slots N, --service D (the upstream's service
# time), --factor F (the load as a multiple of its capacity), --runs LIST
# (direct, nginx, gatewise, gatewise-fixed), --gatewise BIN, --out FILE
# (default docs/overload.md; '' for none), and --keep (keep the work
# directory's binaries).
#
# As root on Debian or Ubuntu, nginx is installed with apt-get when
# missing; as another user the script prints the install line and exits 1.
#
# A command line it refuses (an unknown option, a value out of range)
# exits 2 with one line saying why, and leaves no work directory behind.
set -euo pipefail

start_dir=$PWD
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

script=bench/overload.sh
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

duration=10s
slots=8
service=50ms
factor=5
runs=direct,nginx,gatewise,gatewise-fixed
gatewise_bin=""
out=$root/docs/overload.md
keep=0
while (($# > 0)); do
	case $1 in
	--duration | --slots | --service | --factor | --runs | --gatewise | --out)
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
	--slots) slots=$val ;;
	--service) service=$val ;;
	--factor) factor=$val ;;
	--runs) runs=$val ;;
	--gatewise) gatewise_bin=$val ;;
	--out) out=$val ;;
	*) refuse "unknown option $opt (see --help)" ;;
	esac
done

# Paths given relative to where the script was started from.
from_start_dir gatewise_bin out

if [[ ,$runs, == *,nginx,* ]] && ! have nginx; then
	install_missing nginx
	have nginx || fail "nginx is still missing after apt-get install"
fi

need_go

make_workdir overload

gatewise_note=""
if [[ -n $gatewise_bin ]]; then
	gatewise_note="binary $gatewise_bin given with --gatewise"
elif [[ ,$runs, == *,gatewise* ]]; then
	build_gatewise
fi
echo "==> go build ./bench/overload"
go build -o "$tmp/bin/overload" ./bench/overload || fail "building bench/overload failed"

echo "==> overload: $duration per contender, $factor× the capacity of $slots slots of $service; $runs"
ran=1
set +e
"$tmp/bin/overload" -gatewise "$gatewise_bin" -duration "$duration" -slots "$slots" -service "$service" \
	-factor "$factor" -runs "$runs" -dir "$tmp" -out "$out" -repo "$root" -gatewise-note "$gatewise_note"
status=$?
set -e
if ((status != 2)); then # 2: the command line was refused; nothing ran
	echo "work directory (configs, logs, results.json): $tmp"
fi
exit "$status"
