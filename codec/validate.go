package codec

import (
	"bytes"
	"encoding/binary"
	"unicode/utf8"
)

// Word-at-a-time scanning: topics and strings are mostly ASCII, so the
// validators first skip 8 bytes at a time while no byte is NUL, non-ASCII
// or (for topic names) a wildcard, then check the rest byte by byte.
const (
	lows  = 0x0101010101010101
	highs = 0x8080808080808080
)

// hasZeroByte reports whether any byte of x is 0.
func hasZeroByte(x uint64) bool { return (x-lows)&^x&highs != 0 }

// asciiPrefix returns the length of the longest prefix of b, in whole
// 8-byte words, that holds only ASCII bytes other than NUL.
func asciiPrefix(b []byte) int {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		if w&highs != 0 || hasZeroByte(w) {
			break
		}
	}
	return i
}

// plainPrefix is asciiPrefix that also stops at '+' and '#'.
func plainPrefix(b []byte) int {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		if w&highs != 0 || hasZeroByte(w) || hasZeroByte(w^(lows*'+')) || hasZeroByte(w^(lows*'#')) {
			break
		}
	}
	return i
}

// ValidUTF8 checks a UTF-8 Encoded String (1.5.4): well-formed UTF-8 with no
// surrogate code points (MQTT-1.5.4-1) and no U+0000 (MQTT-1.5.4-2). Control
// characters and non-characters are allowed: the specification only says a
// receiver MAY reject them, and real clients send them.
func ValidUTF8(b []byte) error {
	i := asciiPrefix(b)
	for i < len(b) {
		c := b[i]
		if c == 0 {
			return ErrNullCharacter
		}
		if c >= utf8.RuneSelf {
			break
		}
		i++
	}
	if i == len(b) {
		return nil // the common case: ASCII
	}
	// utf8.Valid rejects surrogates and overlong forms, as MQTT requires.
	if !utf8.Valid(b[i:]) {
		return ErrInvalidUTF8
	}
	if bytes.IndexByte(b[i:], 0) >= 0 {
		return ErrNullCharacter
	}
	return nil
}

// ValidateTopicName checks a topic name of a PUBLISH or a will: a valid UTF-8
// string (MQTT-1.5.4-1, MQTT-4.7.3-2) without '+' or '#' (MQTT-3.3.2-2,
// MQTT-4.7.0-1). An empty name is
// checked by the caller: it is allowed in a 5.0 PUBLISH that carries a topic
// alias, nowhere else.
func ValidateTopicName(topic []byte) error {
	if len(topic) > 65535 {
		return ErrTopicTooLong
	}
	utf8Checked := false
	for _, c := range topic[plainPrefix(topic):] {
		switch {
		case c == '+' || c == '#': // never inside a multi-byte sequence
			return ErrTopicWildcard
		case c == 0:
			return ErrNullCharacter
		case c >= utf8.RuneSelf && !utf8Checked:
			if !utf8.Valid(topic) {
				return ErrInvalidUTF8
			}
			utf8Checked = true
		}
	}
	return nil
}

// SharePrefix starts a shared subscription's topic filter (4.8.2).
const SharePrefix = "$share/"

// SplitShared splits a 5.0 shared subscription filter "$share/{group}/{filter}"
// into its share name and topic filter; ok is false for a filter that is not
// shared. The results are views into filter. It does not validate them: see
// ValidateFilter.
func SplitShared(filter []byte) (group, topicFilter []byte, ok bool) {
	if !bytes.HasPrefix(filter, []byte(SharePrefix)) {
		return nil, nil, false
	}
	rest := filter[len(SharePrefix):]
	i := bytes.IndexByte(rest, '/')
	if i < 0 {
		return rest, nil, true
	}
	return rest[:i], rest[i+1:], true
}

// ValidateFilter checks a topic filter of a SUBSCRIBE or UNSUBSCRIBE at
// protocol level version: non-empty (MQTT-4.7.3-1), valid UTF-8
// (MQTT-1.5.4-1, -2), '#' only alone as the last level (MQTT-4.7.1-1), '+'
// only alone in a level (MQTT-4.7.1-2). At level 5 a "$share/" filter must
// have a non-empty share name (MQTT-4.8.2-1) without '+' or '#' (MQTT-4.8.2-2)
// followed by '/' and a valid filter (MQTT-4.8.2-2); before 5.0 "$share/" has no meaning and is an
// ordinary filter.
func ValidateFilter(filter []byte, version byte) error {
	if err := ValidUTF8(filter); err != nil {
		return err
	}
	if version >= Version5 {
		if group, f, ok := SplitShared(filter); ok {
			if len(group) == 0 {
				return ErrShareName
			}
			if bytes.ContainsAny(group, "+#") {
				return ErrShareNameChars
			}
			if len(f) == 0 {
				return ErrShareFilter
			}
			filter = f
		}
	}
	if len(filter) == 0 {
		return ErrFilterEmpty
	}
	if len(filter) > 65535 {
		return ErrFilterTooLong
	}
	levelStart := 0
	for i, c := range filter {
		switch c {
		case '/':
			levelStart = i + 1
		case '#':
			if i != levelStart || i != len(filter)-1 {
				return ErrFilterHash
			}
		case '+':
			if i != levelStart || (i+1 < len(filter) && filter[i+1] != '/') {
				return ErrFilterPlus
			}
		}
	}
	return nil
}
