package loadgen

import (
	"context"
	"sync"
	"sync/atomic"
)

// Parallel calls fn(ctx, i) for every i in [0, n), workers calls at a time
// (opening ten thousand connections one by one takes too long; all at once
// overflows the listener's backlog). The first error cancels the ctx the
// other calls get, stops handing out indexes and is returned; so is ctx's
// error when it ends first. fn must be safe for concurrent use.
func Parallel(parent context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var (
		next     atomic.Int64
		once     sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return parent.Err()
}
