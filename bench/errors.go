package bench

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"
)

// Transport error classes, the keys of Result.Errors besides HTTP status
// codes (which appear as their decimal number, such as "503").
const (
	ErrClassTimeout = "timeout" // the request or its dial timed out
	ErrClassRefused = "refused" // connection refused: nothing listens there
	ErrClassReset   = "reset"   // the connection broke: reset, broken pipe, early EOF
	ErrClassOther   = "other"   // anything else
)

// classify returns the error class of a failed request: its HTTP status if
// err is nil, else the class of its transport error.
func classify(status int, err error) string {
	if err == nil {
		return strconv.Itoa(status)
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ErrClassTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return ErrClassRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ErrClassReset
	default:
		return ErrClassOther
	}
}
