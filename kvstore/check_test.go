package kvstore

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// TestCheckSnapshot: CheckSnapshot reads a snapshot of each kind of store
// and says what it is of; it refuses a damaged one and one of format 1,
// as a restoring member would.
func TestCheckSnapshot(t *testing.T) {
	for kind, cfg := range storeKinds {
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			s := seededStore(t, kind)
			data := snapshotOf(t, s)
			got, err := CheckSnapshot(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatalf("CheckSnapshot: %v", err)
			}
			want := SnapshotKind{Mode: s.mode.String(), Group: cfg.Group, Buckets: s.nbuckets, Keys: len(stateOf(s))}
			if got != want {
				t.Errorf("CheckSnapshot: %+v, want %+v", got, want)
			}
			damaged := bytes.Clone(data)
			damaged[len(damaged)/2] ^= 0x04
			if _, err := CheckSnapshot(bytes.NewReader(damaged), 0); !errors.Is(err, ErrCorruptSnapshot) {
				t.Errorf("CheckSnapshot of a damaged snapshot: %v, want ErrCorruptSnapshot", err)
			}
		})
	}
	v1 := writeFormat1(t, map[string]string{"a": "1"}, nil)
	if _, err := CheckSnapshot(bytes.NewReader(v1), 0); !errors.Is(err, ErrCorruptSnapshot) {
		t.Errorf("CheckSnapshot of format 1: %v, want ErrCorruptSnapshot", err)
	}
}
