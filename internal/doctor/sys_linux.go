package doctor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// statfs reads a file system's usage with the statfs system call.
func statfs(path string) (DiskUsage, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return DiskUsage{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	bs := int64(st.Bsize)
	return DiskUsage{
		ID:        fmt.Sprintf("%x:%x", st.Fsid.X__val[0], st.Fsid.X__val[1]),
		Total:     int64(st.Blocks) * bs,
		Avail:     int64(st.Bavail) * bs,
		Files:     int64(st.Files),
		FilesFree: int64(st.Ffree),
	}, nil
}

// readKmsg reads what the kernel's ring buffer holds now, without waiting
// for more: /dev/kmsg is read record by record with O_NONBLOCK until it
// says EAGAIN. A regular file (a test fixture) is read whole. At most
// maxKmsg bytes are kept.
func readKmsg(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().IsRegular() {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return io.ReadAll(io.LimitReader(f, maxKmsg))
	}
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	var out []byte
	buf := make([]byte, 8192)
	for len(out) < maxKmsg {
		n, err := syscall.Read(fd, buf)
		switch {
		case errors.Is(err, syscall.EAGAIN):
			return out, nil
		case errors.Is(err, syscall.EPIPE):
			continue // a record was overwritten while reading: go on
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return out, &os.PathError{Op: "read", Path: path, Err: err}
		case n == 0:
			return out, nil
		}
		out = append(out, buf[:n]...)
		if buf[n-1] != '\n' {
			out = append(out, '\n')
		}
	}
	return out, nil
}
