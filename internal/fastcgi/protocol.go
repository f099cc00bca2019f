package fastcgi

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The FastCGI 1.0 record types and constants this client uses.
const (
	fcgiVersion = 1

	typeBeginRequest    = 1
	typeAbortRequest    = 2
	typeEndRequest      = 3
	typeParams          = 4
	typeStdin           = 5
	typeStdout          = 6
	typeStderr          = 7
	typeData            = 8
	typeGetValues       = 9
	typeGetValuesResult = 10
	typeUnknownType     = 11

	roleResponder = 1
	flagKeepConn  = 1

	// The protocol statuses of FCGI_END_REQUEST.
	statusRequestComplete = 0
	statusCantMpxConn     = 1
	statusOverloaded      = 2
	statusUnknownRole     = 3

	headerLen = 8
	// maxContent is the largest content of one record.
	maxContent = 65535
	// requestID is the only request id used: one request per connection
	// at a time, as PHP-FPM does not multiplex.
	requestID = 1
)

// errProtocol is wrapped by every error about malformed FastCGI input.
var errProtocol = errors.New("fastcgi: protocol error")

// header is a record's 8-byte header.
type header struct {
	Version       uint8
	Type          uint8
	RequestID     uint16
	ContentLength uint16
	PaddingLength uint8
}

// putHeader writes a record header for content of length n into b[:8],
// with the padding that aligns the record to 8 bytes, and returns the
// padding length.
func putHeader(b []byte, typ uint8, n int) int {
	pad := (8 - n%8) % 8
	b[0] = fcgiVersion
	b[1] = typ
	binary.BigEndian.PutUint16(b[2:4], requestID)
	binary.BigEndian.PutUint16(b[4:6], uint16(n))
	b[6] = uint8(pad)
	b[7] = 0
	return pad
}

// appendRecord appends one record of type typ holding content (at most
// maxContent bytes) to b.
func appendRecord(b []byte, typ uint8, content []byte) []byte {
	var h [headerLen]byte
	pad := putHeader(h[:], typ, len(content))
	b = append(b, h[:]...)
	b = append(b, content...)
	var zeros [8]byte
	return append(b, zeros[:pad]...)
}

// appendStream appends content as records of type typ, split at
// maxContent, followed by the empty record that ends the stream.
func appendStream(b []byte, typ uint8, content []byte) []byte {
	for len(content) > 0 {
		n := min(len(content), maxContent)
		b = appendRecord(b, typ, content[:n])
		content = content[n:]
	}
	return appendRecord(b, typ, nil)
}

// appendBeginRequest appends the FCGI_BEGIN_REQUEST record for the
// responder role, asking the server to keep the connection open when
// keep is true.
func appendBeginRequest(b []byte, keep bool) []byte {
	body := [8]byte{0, roleResponder}
	if keep {
		body[2] = flagKeepConn
	}
	return appendRecord(b, typeBeginRequest, body[:])
}

// appendPair appends one name-value pair in FastCGI's encoding: each
// length in one byte when below 128, else in four bytes with the high bit
// set.
func appendPair(b []byte, name, value string) []byte {
	b = appendLen(b, len(name))
	b = appendLen(b, len(value))
	b = append(b, name...)
	return append(b, value...)
}

func appendLen(b []byte, n int) []byte {
	if n < 128 {
		return append(b, byte(n))
	}
	return binary.BigEndian.AppendUint32(b, uint32(n)|1<<31)
}

// parsePairs decodes name-value pairs as appendPair encodes them, calling
// fn for each. It returns an error wrapping errProtocol for truncated or
// oversized input.
func parsePairs(b []byte, fn func(name, value string)) error {
	for len(b) > 0 {
		nl, rest, err := readLen(b)
		if err != nil {
			return err
		}
		vl, rest, err := readLen(rest)
		if err != nil {
			return err
		}
		if uint64(nl)+uint64(vl) > uint64(len(rest)) {
			return fmt.Errorf("%w: name-value pair of %d+%d bytes in %d", errProtocol, nl, vl, len(rest))
		}
		fn(string(rest[:nl]), string(rest[nl:nl+vl]))
		b = rest[nl+vl:]
	}
	return nil
}

func readLen(b []byte) (int, []byte, error) {
	if len(b) == 0 {
		return 0, nil, fmt.Errorf("%w: truncated name-value length", errProtocol)
	}
	if b[0] < 128 {
		return int(b[0]), b[1:], nil
	}
	if len(b) < 4 {
		return 0, nil, fmt.Errorf("%w: truncated name-value length", errProtocol)
	}
	return int(binary.BigEndian.Uint32(b) &^ (1 << 31)), b[4:], nil
}

// readHeader reads one record header from r. A clean EOF before any byte
// is returned as io.EOF; a partial header as io.ErrUnexpectedEOF.
func readHeader(r *bufio.Reader) (header, error) {
	var b [headerLen]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return header{}, err
	}
	h := header{
		Version:       b[0],
		Type:          b[1],
		RequestID:     binary.BigEndian.Uint16(b[2:4]),
		ContentLength: binary.BigEndian.Uint16(b[4:6]),
		PaddingLength: b[6],
	}
	if h.Version != fcgiVersion {
		return h, fmt.Errorf("%w: record version %d, want 1", errProtocol, h.Version)
	}
	return h, nil
}
