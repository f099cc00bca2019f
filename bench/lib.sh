# bench/lib.sh is sourced by bench/run, bench/chaos.sh, bench/overload.sh
# and bench/fastcgi.sh: what they share. The sourcing script sets script (its
# name, for messages), root (the repository), start_dir (where it was
# started from) and keep, before calling these.

# fail prints the script's name and its arguments on stderr and exits 1.
fail() {
	printf '%s: %s\n' "$script" "$*" >&2
	exit 1
}

# refuse is fail for a command line the script refuses: it exits 2.
refuse() {
	printf '%s: %s\n' "$script" "$*" >&2
	exit 2
}

# have reports whether a program is on PATH or in the sbin directories,
# where Debian puts nginx and haproxy.
have() {
	command -v "$1" >/dev/null 2>&1 || [[ -x /usr/sbin/$1 || -x /sbin/$1 ]]
}

# usage prints the comment at the top of FILE (from its second line up to
# "set -euo"), without the comment marks: the script's --help.
usage() {
	sed -n '2,/^set -euo/p' "$1" | sed '$d' | sed 's/^# \{0,1\}//'
}

# from_start_dir NAME... makes each variable NAME that holds a relative
# path relative to start_dir, where the script was started from; empty
# and absolute paths are left as they are.
from_start_dir() {
	local name
	for name in "$@"; do
		if [[ -n ${!name} && ${!name} != /* ]]; then printf -v "$name" '%s' "$start_dir/${!name}"; fi
	done
}

# install_missing PKG... installs the Debian packages PKG with apt-get as
# root, then stops the services the packages start (nginx's on port 80):
# the benchmark runs its own instances. As another user, or without
# apt-get, it prints the install line and exits 1. The caller checks that
# what it needs is there afterwards.
install_missing() {
	(($# > 0)) || return 0
	local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@")
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
		{
			echo "$script: missing: $*"
			echo "Install them (Debian 12 or Ubuntu), then run $script again:"
			echo "  sudo apt-get update && sudo ${install[*]}"
		} >&2
		exit 1
	fi
	echo "==> installing $*"
	apt-get update
	"${install[@]}" || fail "apt-get install $* failed"
	# Without systemd (a container) nothing was started.
	if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
		local p
		for p in "$@"; do systemctl stop "$p" >/dev/null 2>&1 || true; done
	fi
}

# need_go puts /usr/local/go/bin on PATH when go is not there, or fails.
need_go() {
	if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
		PATH=/usr/local/go/bin:$PATH
	fi
	command -v go >/dev/null 2>&1 || fail "go is not on PATH: install Go $(sed -n 's/^go //p' go.mod) from https://go.dev/dl/"
}

# make_workdir NAME sets tmp to a new work directory, removed on exit when
# the benchmark did not run (ran=0) or refused its command line (status 2:
# a bad flag or value); after a successful run (status=0) without keep,
# only its binaries are removed.
make_workdir() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/gatewise-$1.XXXXXX")
	status=1
	ran=0
	trap finish EXIT
}

# shellcheck disable=SC2317 # called by the EXIT trap
finish() {
	if ((ran == 0 || status == 2)); then
		rm -rf "$tmp"
	elif ((status == 0 && keep == 0)); then
		# Keep the results and configs; drop the binaries.
		rm -rf "${tmp:?}/bin"
	fi
}

# build_gatewise builds cmd/gatewise into $tmp/bin and sets gatewise_bin.
build_gatewise() {
	echo "==> go build ./cmd/gatewise"
	go build -o "$tmp/bin/gatewise" ./cmd/gatewise ||
		fail "building gatewise failed; fix the build or pass --gatewise BIN"
	gatewise_bin=$tmp/bin/gatewise
}
