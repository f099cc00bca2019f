package server_test

import (
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// filesChild is set in the environment of the test binary run again for
// TestFileDescriptorsExhausted alone.
const filesChild = "GATEWISE_TEST_FILES_CHILD"

// TestFileDescriptorsExhausted lowers the gateway's open-files limit so
// that two files are left: a visitor's connection (the client's end and
// the gateway's, both in this process) takes them, and the connection to
// the upstream finds none (EMFILE). The answer is 502
// file_descriptors_exhausted, not proxy_internal_error; with the limit
// back, the next request is answered. The files of other tests would move
// the count, so the test runs itself again in a process of its own.
func TestFileDescriptorsExhausted(t *testing.T) {
	if os.Getenv(filesChild) == "" {
		runAlone(t, filesChild)
		return
	}

	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})}
	go func() { _ = up.Serve(upLn) }()
	t.Cleanup(func() { _ = up.Close() })
	cfg := oneTargetConfig("http://" + upLn.Addr().String())
	cfg.AccessLog = "off"
	g := startGateway(t, cfg)

	get := func() (int, string) {
		t.Helper()
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		res, err := c.Get(g.url + "/")
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		return res.StatusCode, res.Header.Get("Proxy-Status")
	}

	var saved syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &saved); err != nil {
		t.Fatal(err)
	}
	// The limit bounds the numbers of new files, which take the lowest
	// free ones: it goes just above the second free number.
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	inUse := map[uint64]bool{}
	for _, f := range fds[:len(fds)-1] { // the last is ReadDir's own, closed now
		n, err := strconv.ParseUint(f.Name(), 10, 64)
		if err != nil {
			t.Fatalf("/proc/self/fd: %v", err)
		}
		inUse[n] = true
	}
	var free []uint64
	for n := uint64(0); len(free) < 2; n++ {
		if !inUse[n] {
			free = append(free, n)
		}
	}
	low := syscall.Rlimit{Cur: free[1] + 1, Max: saved.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatalf("lower the open-files limit to %d: %v", low.Cur, err)
	}
	status, proxyStatus := get()
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &saved); err != nil {
		t.Fatalf("restore the open-files limit: %v", err)
	}
	if status != http.StatusBadGateway || !strings.Contains(proxyStatus, `details="file_descriptors_exhausted: process limit"`) {
		t.Errorf("at the limit (%d files): %d %q, want 502 with file_descriptors_exhausted: process limit", low.Cur, status, proxyStatus)
	}
	if status, proxyStatus := get(); status != http.StatusOK {
		t.Errorf("with the limit back: %d %q, want 200", status, proxyStatus)
	}
}
