package retain

// levelEnd returns the index of the '/' ending the level that starts at
// start, or len(s) for the last level.
func levelEnd[T string | []byte](s T, start int) int {
	for i := start; i < len(s); i++ {
		if s[i] == '/' {
			return i
		}
	}
	return len(s)
}

// scan is how Match reads a filter from the store.
type scan struct {
	// exact is set for a filter without wildcards: a lookup of the filter.
	exact bool
	// prefix is the filter's literal levels before its first wildcard
	// level, each with its '/': every matching topic starts with it ("" for
	// a filter starting with a wildcard: the whole family).
	prefix string
	// parent is set when the first wildcard is a final '#' after literal
	// levels: the topic of those levels matches too (MQTT-4.7.1-2) but lies
	// outside prefix ("a/b/#": prefix "a/b/", parent "a/b").
	parent string
}

func planScan(filter string) scan {
	for start := 0; start <= len(filter); {
		end := levelEnd(filter, start)
		switch filter[start:end] {
		case "+":
			return scan{prefix: filter[:start]}
		case "#":
			s := scan{prefix: filter[:start]}
			if start > 1 { // start 1 is filter "/#": parent "" is no topic
				s.parent = filter[:start-1]
			}
			return s
		}
		start = end + 1
	}
	return scan{exact: true}
}
