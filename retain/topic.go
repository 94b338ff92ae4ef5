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

// matches reports whether topic (a valid topic name) matches filter (a valid
// filter), by the rules of MQTT 5.0 4.7 that router.Retained implements:
// '+' is one level, possibly empty; '#' is the parent level and every level
// below it (MQTT-4.7.1-2); a filter starting with a wildcard does not match a
// topic starting with '$' (MQTT-4.7.2-1).
func matches[T string | []byte](filter string, topic T) bool {
	if len(topic) > 0 && topic[0] == '$' && len(filter) > 0 && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	fi, ti := 0, 0
	for {
		fe := levelEnd(filter, fi)
		level := filter[fi:fe]
		if level == "#" {
			return true
		}
		te := levelEnd(topic, ti)
		if level != "+" && level != string(topic[ti:te]) { // the conversion of a comparison does not allocate
			return false
		}
		fi, ti = fe+1, te+1
		switch {
		case fi > len(filter):
			return ti > len(topic)
		case ti > len(topic):
			return filter[fi:] == "#" // "sport/#" matches "sport"
		}
	}
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
