package daemon

import (
	"errors"
	"fmt"
	"testing"

	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/kvstore"
)

func TestWireError(t *testing.T) {
	if err := wireError(nil); err != nil {
		t.Fatalf("wireError(nil) = %v", err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = wireError(nil) }); n != 0 {
		t.Errorf("wireError(nil) allocates %v objects; every successful request passes there", n)
	}
	plain := errors.New("x")
	if err := wireError(plain); err != plain {
		t.Errorf("wireError(%v) = %v, want it unchanged", plain, err)
	}
	wg := &kvstore.WrongGroupError{Key: "k", Bucket: 3, Version: 4, Owner: 2, Servers: []string{"http://b1"}}
	var got *httpapi.WrongGroupError
	if err := wireError(fmt.Errorf("put: %w", wg)); !errors.As(err, &got) ||
		got.Key != "k" || got.Bucket != 3 || got.Version != 4 || got.Owner != 2 || len(got.Servers) != 1 || !errors.Is(err, wg) {
		t.Errorf("wireError(wrapped WrongGroupError) = %#v, want an httpapi.WrongGroupError with its fields", err)
	}
}
