package kvstore

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// TestCheckSnapshot: CheckSnapshot reads a snapshot of each kind of store
// and says what it is of; it refuses a damaged one, as a restoring member
// would, and reads one of format 1 (before buckets) as of one bucket.
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
	v1 := writeFormat1(t, map[string]string{"a": "1", "b": "2"}, nil)
	if got, err := CheckSnapshot(bytes.NewReader(v1), 0); err != nil || got != (SnapshotKind{Mode: "plain", Buckets: 1, Keys: 2}) {
		t.Errorf("CheckSnapshot of format 1: %+v, %v", got, err)
	}
	v1[len(v1)-1] ^= 1
	if _, err := CheckSnapshot(bytes.NewReader(v1), 0); !errors.Is(err, ErrCorruptSnapshot) {
		t.Errorf("CheckSnapshot of a damaged format 1: %v, want ErrCorruptSnapshot", err)
	}
}
