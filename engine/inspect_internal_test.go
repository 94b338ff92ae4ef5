package engine

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSmallestPagesLikeAFullSort: the bounded selection the admin listings
// use gives the same pages as sorting everything.
func TestSmallestPagesLikeAFullSort(t *testing.T) {
	f := func(total, limit int) {
		t.Helper()
		all := rand.Perm(total)
		k := smallest[int]{n: limit + 1, cmp: cmp.Compare[int]}
		for _, v := range all {
			k.add(v)
		}
		page, more := k.page(limit)
		sorted := slices.Clone(all)
		slices.Sort(sorted)
		want := sorted[:min(limit, total)]
		if !slices.Equal(page, want) || more != (total > limit) {
			t.Fatalf("total %d limit %d: got %v more %v, want %v more %v", total, limit, page, more, want, total > limit)
		}
	}
	f(0, 10)
	f(5, 10)
	f(10, 10)
	f(11, 10)
	f(10_000, 1)
	f(10_000, 100)
	f(3_000, 2_999)
}
