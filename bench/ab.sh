#!/usr/bin/env bash
# bench/ab.sh compares two gatewise builds, A and B, side by side: both run
# at the same time in front of one shared upstream, each under its own wrk,
# in rounds whose start order alternates (bench/abtest/). It prints the
# ratio B/A of their requests/s per round, its median and range, and each
# build's median requests/s, p99 and CPU per request. Running both at once
# is what lets a 2-5% difference show on a machine whose speed drifts by a
# third from minute to minute; differences within about ±2% are noise.
#
# A and B are each a git revision (built in a temporary git worktree,
# removed at the end), a gatewise binary, or "worktree" (this checkout as
# it is, uncommitted changes included). The default is A = HEAD, B = the
# working tree: what the changes not yet committed are worth.
#
# Usage:
#   bash bench/ab.sh                                HEAD against the working tree
#   bash bench/ab.sh --a HEAD~3                     three commits back against the working tree
#   bash bench/ab.sh --a HEAD --b HEAD              one build against itself: the noise
#   bash bench/ab.sh --a main --b topic -rounds 7 -json ab.json
#   bash bench/ab.sh --a /tmp/old/gatewise --b worktree -access-log file
#
# Every other argument goes to bench/abtest: -rounds N (default 5),
# -duration (10s), -warmup (2s, both at once, not measured), -connections
# (25 per gateway), -threads (1 per wrk), -path (/small), -access-log
# off|file, -json FILE, -keep (keep the work directory). Five rounds take
# about 75 seconds.
#
# As root on Debian or Ubuntu, wrk is installed with apt-get when missing;
# as another user the script prints the install line and exits 1.
set -euo pipefail

start_dir=$PWD
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

script=bench/ab.sh
keep=0
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

a=HEAD
b=worktree
pass=()
while (($# > 0)); do
	case $1 in
	-h | --help) usage "${BASH_SOURCE[0]}"; exit 0 ;;
	--a=*) a=${1#*=}; shift ;;
	--b=*) b=${1#*=}; shift ;;
	--a | --b)
		(($# >= 2)) || fail "$1 needs a git revision, a gatewise binary or worktree"
		if [[ $1 == --a ]]; then a=$2; else b=$2; fi
		shift 2
		;;
	*) pass+=("$1"); shift ;;
	esac
done
[[ -n $a && -n $b ]] || fail "--a and --b need a git revision, a gatewise binary or worktree"

need_go
if ! have wrk; then install_missing wrk; fi
have wrk || fail "wrk is still missing after installing it"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gatewise-ab.XXXXXX")
worktrees=()
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	local wt
	for wt in "${worktrees[@]}"; do
		git -C "$root" worktree remove --force "$wt" >/dev/null 2>&1 || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

# build_side NAME SPEC builds (or finds) the gatewise binary of SPEC,
# a binary, a git revision or "worktree", and sets bin to its path and
# what to a description. The binaries are built with -trimpath, so that
# two checkouts of the same code build alike and share Go's build cache.
build_side() {
	local name=$1 spec=$2 path=$2 sha
	if [[ $path != /* ]]; then path=$start_dir/$path; fi
	if [[ $spec == worktree ]]; then
		echo "==> $name: go build ./cmd/gatewise (the working tree)"
		bin=$tmp/$name-worktree/gatewise
		go build -trimpath -o "$bin" ./cmd/gatewise || fail "$name: building the working tree failed"
		what="the working tree"
	elif [[ -f $path ]]; then
		[[ -x $path ]] || fail "$name: $spec is not an executable file"
		bin=$path
		what="the binary $spec"
	elif sha=$(git rev-parse --verify --quiet "$spec^{commit}"); then
		local wt=$tmp/wt-$name
		echo "==> $name: git worktree add $spec (${sha:0:12}); go build ./cmd/gatewise"
		git worktree add --quiet --detach "$wt" "$sha" || fail "$name: git worktree add $spec failed"
		worktrees+=("$wt")
		bin=$tmp/$name-${sha:0:12}/gatewise
		(cd "$wt" && go build -trimpath -o "$bin" ./cmd/gatewise) || fail "$name: building $spec failed"
		what="$spec (${sha:0:12})"
	else
		fail "--${name,,} $spec: neither a gatewise binary, a git revision nor worktree"
	fi
}

build_side A "$a"
a_bin=$bin a_what=$what
build_side B "$b"
b_bin=$bin b_what=$what
echo "==> go build ./bench/abtest ./bench/compare"
go build -o "$tmp/bin/abtest" ./bench/abtest || fail "building bench/abtest failed"
go build -o "$tmp/bin/compare" ./bench/compare || fail "building bench/compare failed"

echo "==> A = $a_what, B = $b_what"
# From the directory the script was started in, so that a relative -json
# FILE lands there.
cd "$start_dir"
"$tmp/bin/abtest" -a "$a_bin" -b "$b_bin" -compare "$tmp/bin/compare" "${pass[@]}"
