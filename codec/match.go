package codec

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

// MatchTopic reports whether topic (a valid topic name) matches filter (a valid
// filter), by the rules of MQTT 5.0 4.7 that the router and the retained index implement:
// '+' is one level, possibly empty; '#' is the parent level and every level
// below it (MQTT-4.7.1-2); a filter starting with a wildcard does not match a
// topic starting with '$' (MQTT-4.7.2-1).
func MatchTopic[T string | []byte](filter string, topic T) bool {
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
