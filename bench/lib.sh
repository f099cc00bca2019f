# bench/lib.sh is sourced by bench/chaos.sh and bench/overload.sh: what
# they share. The sourcing script sets script (its name, for messages),
# root (the repository), and keep, before calling these.

fail() {
	printf '%s: %s\n' "$script" "$*" >&2
	exit 1
}

# have reports whether a program is on PATH or in the sbin directories,
# where Debian puts nginx and haproxy.
have() {
	command -v "$1" >/dev/null 2>&1 || [[ -x /usr/sbin/$1 || -x /sbin/$1 ]]
}

# need_go puts /usr/local/go/bin on PATH when go is not there, or fails.
need_go() {
	if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
		PATH=/usr/local/go/bin:$PATH
	fi
	command -v go >/dev/null 2>&1 || fail "go is not on PATH: install Go $(sed -n 's/^go //p' go.mod) from https://go.dev/dl/"
}

# make_workdir NAME sets tmp to a new work directory, removed on exit when
# the benchmark did not run (ran=0); after a successful run (status=0)
# without keep, only its binaries are removed.
make_workdir() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/gatewise-$1.XXXXXX")
	status=1
	ran=0
	trap finish EXIT
}

# shellcheck disable=SC2317 # called by the EXIT trap
finish() {
	if ((ran == 0)); then
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
