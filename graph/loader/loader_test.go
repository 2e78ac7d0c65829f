package loader

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

type row struct{ id, ref int }

// fake returns a loader over rows 1..100 (row i refers to row i+100 of
// other, when other is set) that records its reads.
func fake(reads *[][]int, fail *bool, other *Loader[row]) *Loader[row] {
	var mu sync.Mutex
	var refer func(*row, func(int))
	if other != nil {
		refer = func(r *row, _ func(int)) { other.Want(r.ref) }
	}
	return NewLoader(func(_ context.Context, ids []int) ([]*row, error) {
		mu.Lock()
		defer mu.Unlock()
		*reads = append(*reads, ids)
		if *fail {
			return nil, errors.New("database down")
		}
		var out []*row
		for _, id := range ids {
			if id <= 100 || other == nil {
				out = append(out, &row{id: id, ref: id + 100})
			}
		}
		return out, nil
	}, func(r *row) int { return r.id }, refer)
}

func TestLoaderBatchesWhatWasWanted(t *testing.T) {
	ctx := context.Background()
	var reads, otherReads [][]int
	var fail bool
	other := fake(&otherReads, &fail, nil)
	l := fake(&reads, &fail, other)
	l.Want(3, 1, 2, 2)

	// 50 concurrent loads of wanted and unwanted ids: one read.
	var wg sync.WaitGroup
	var missing atomic.Int32
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			v, err := l.Load(ctx, id)
			if err != nil || v == nil || v.id != id {
				t.Errorf("Load(%d) = %v, %v", id, v, err)
				missing.Add(1)
			}
		}(1 + i%3)
	}
	wg.Wait()
	if len(reads) != 1 || !slices.Equal(reads[0], []int{1, 2, 3}) {
		t.Fatalf("reads = %v, want one read of [1 2 3]", reads)
	}
	// The rows read want what they refer to.
	if v, err := other.Load(ctx, 101); err != nil || v == nil {
		t.Fatalf("other.Load(101) = %v, %v", v, err)
	}
	if len(otherReads) != 1 || !slices.Equal(otherReads[0], []int{101, 102, 103}) {
		t.Errorf("other reads = %v, want one read of [101 102 103]", otherReads)
	}
	// A row that does not exist is remembered as missing.
	if v, err := l.Load(ctx, 500); err != nil || v != nil {
		t.Errorf("Load(500) = %v, %v, want nil, nil", v, err)
	}
	if v, _ := l.Load(ctx, 500); v != nil || len(reads) != 2 {
		t.Errorf("Load(500) again = %v after %d reads, want nil from memory (2 reads)", v, len(reads))
	}
	// A failed read is not remembered: the ids stay wanted.
	l.Want(7, 8)
	fail = true
	if _, err := l.Load(ctx, 9); err == nil {
		t.Errorf("Load(9) with the database down: no error")
	}
	fail = false
	if v, err := l.Load(ctx, 9); err != nil || v == nil {
		t.Errorf("Load(9) = %v, %v", v, err)
	}
	if last := reads[len(reads)-1]; !slices.Equal(last, []int{7, 8, 9}) {
		t.Errorf("read after a failure = %v, want [7 8 9]", last)
	}
	// Primed rows are not read.
	l.Prime(&row{id: 42})
	if v, _ := l.Load(ctx, 42); v == nil || len(reads) != 4 {
		t.Errorf("Load(42) after Prime = %v after %d reads, want the row without a read", v, len(reads))
	}
}

func TestMemo(t *testing.T) {
	var m Memo[int, int]
	var calls atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := m.Do(7, func() (int, error) { calls.Add(1); return 49, nil })
			if v != 49 || err != nil {
				t.Errorf("Do(7) = %d, %v, want 49", v, err)
			}
		}()
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Errorf("f called %d times, want once", calls.Load())
	}
	// A computation that panicked answers an error to those waiting.
	func() {
		defer func() { _ = recover() }()
		_, _ = m.Do(8, func() (int, error) { panic("boom") })
	}()
	if _, err := m.Do(8, func() (int, error) { return 1, nil }); err == nil {
		t.Errorf("Do(8) after a panic: no error")
	}
}
