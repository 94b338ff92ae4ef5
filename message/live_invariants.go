//go:build invariants || race

package message

import "sync/atomic"

// live counts messages not yet released, in builds with invariant checks (the
// race detector turns them on) so that tests can find leaked references.
var live atomic.Int64

func liveAdd(n int64) { live.Add(n) }

// Live returns the number of messages not yet released and true, in builds
// with invariant checks; in others, 0 and false.
func Live() (int64, bool) { return live.Load(), true }
