package codec

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// Statement ids are those of 5.0. The 3.1.1 text numbers the same rules
// MQTT-1.5.3-1 and -2 (UTF-8), MQTT-4.7.1-2 ('#') and MQTT-4.7.1-3 ('+').

func TestValidUTF8(t *testing.T) {
	f := func(in string, want error) {
		t.Helper()
		if err := ValidUTF8([]byte(in)); !sameErr(err, want) {
			t.Fatalf("ValidUTF8(%q) = %v, want %v", in, err, want)
		}
	}
	f("", nil)
	f("sport/tennis", nil)
	f("é/€/𝄞", nil)                // two, three and four byte sequences
	f("\xed\x9f\xbf", nil)         // U+D7FF, just below the surrogates
	f("\xee\x80\x80", nil)         // U+E000, just above them
	f("\xf4\x8f\xbf\xbf", nil)     // U+10FFFF, the last code point
	f("\x01\x1f\x7f\xc2\x80", nil) // control characters: a receiver MAY refuse them (1.5.4), we do not
	f("\xef\xbf\xbf", nil)         // U+FFFF, a non-character: likewise
	f("\xef\xbb\xbfa", nil)        // a BOM is U+FEFF, kept as it is (MQTT-1.5.4-3)

	// MQTT-1.5.4-1: well-formed UTF-8, no surrogates.
	f("\xff", ErrInvalidUTF8)
	f("a/\x80", ErrInvalidUTF8)                   // lone continuation byte
	f("\xe2\x82", ErrInvalidUTF8)                 // sequence cut short
	f("\xc0\xaf", ErrInvalidUTF8)                 // overlong '/'
	f("\xed\xa0\x80", ErrInvalidUTF8)             // U+D800
	f("a\xed\xbf\xbf", ErrInvalidUTF8)            // U+DFFF
	f("\xf4\x90\x80\x80", ErrInvalidUTF8)         // above U+10FFFF
	f("\xed\xa0\xbd\xed\xb8\x80", ErrInvalidUTF8) // a CESU-8 surrogate pair

	// MQTT-1.5.4-2: no U+0000, in the ASCII fast path or after it.
	f("\x00", ErrNullCharacter)
	f("a/\x00/b", ErrNullCharacter)
	f("é\x00", ErrNullCharacter)
	f("\xc0\x80", ErrInvalidUTF8) // an overlong U+0000 is ill-formed, not a null
}

func TestValidateTopicName(t *testing.T) {
	f := func(in string, want error) {
		t.Helper()
		if err := ValidateTopicName([]byte(in)); !sameErr(err, want) {
			t.Fatalf("ValidateTopicName(%q) = %v, want %v", in, err, want)
		}
	}
	f("sport/tennis/player1", nil)
	f("/", nil)
	f("//", nil)
	f("/finance", nil)
	f("$SYS/broker/clients", nil)
	f("sport/tennis/player 1", nil)
	f("é/€", nil)
	f("", nil) // empty is the caller's to refuse (MQTT-4.7.3-1), or allowed with a 5.0 topic alias
	f(strings.Repeat("a", 65535), nil)

	// MQTT-3.3.2-2, MQTT-4.7.0-1: no wildcards in a topic name.
	f("#", ErrTopicWildcard)
	f("+", ErrTopicWildcard)
	f("a/+", ErrTopicWildcard)
	f("a/#", ErrTopicWildcard)
	f("a#", ErrTopicWildcard)
	f("a+b", ErrTopicWildcard)
	f("sport/tennis#", ErrTopicWildcard)
	f("é/+", ErrTopicWildcard)

	f("a\x00", ErrNullCharacter)                   // MQTT-4.7.3-2
	f("é/\x00", ErrNullCharacter)                  // MQTT-4.7.3-2
	f("a/\xff", ErrInvalidUTF8)                    // MQTT-1.5.4-1
	f("\xed\xa0\x80", ErrInvalidUTF8)              // MQTT-1.5.4-1
	f(strings.Repeat("a", 65536), ErrTopicTooLong) // MQTT-4.7.3-3
}

func TestValidateFilter(t *testing.T) {
	f := func(in string, version byte, want error) {
		t.Helper()
		if err := ValidateFilter([]byte(in), version); !sameErr(err, want) {
			t.Fatalf("ValidateFilter(%q, %d) = %v, want %v", in, version, err, want)
		}
	}
	// Rules shared by every level.
	for _, v := range []byte{Version31, Version311, Version5} {
		f("#", v, nil)
		f("+", v, nil)
		f("a/#", v, nil)
		f("a/+/b", v, nil)
		f("+/+", v, nil)
		f("+/", v, nil)
		f("/+", v, nil)
		f("/#", v, nil)
		f("/", v, nil)
		f("//", v, nil)
		f("sport/tennis/player1", v, nil)
		f("sport/tennis/#", v, nil)
		f("sport/+/player1", v, nil)
		f("+/tennis/#", v, nil)
		f("$SYS/#", v, nil)
		f("$share", v, nil) // no '/': not a shared subscription at any level
		f("é/€/+", v, nil)

		f("", v, ErrFilterEmpty) // MQTT-4.7.3-1

		// MQTT-4.7.1-1: '#' alone in the last level.
		f("#/a", v, ErrFilterHash)
		f("a#", v, ErrFilterHash)
		f("a/b#", v, ErrFilterHash)
		f("sport/tennis#", v, ErrFilterHash)
		f("sport/tennis/#/ranking", v, ErrFilterHash)
		f("##", v, ErrFilterHash)
		f("#+", v, ErrFilterHash)

		// MQTT-4.7.1-2: '+' occupies a whole level.
		f("a+", v, ErrFilterPlus)
		f("+a", v, ErrFilterPlus)
		f("a/+b/c", v, ErrFilterPlus)
		f("sport+", v, ErrFilterPlus)
		f("++", v, ErrFilterPlus)
		f("+#", v, ErrFilterPlus)

		f("a/\x00", v, ErrNullCharacter)                   // MQTT-1.5.4-2, MQTT-4.7.3-2
		f("a/\xff", v, ErrInvalidUTF8)                     // MQTT-1.5.4-1
		f("\xed\xa0\x80/#", v, ErrInvalidUTF8)             // MQTT-1.5.4-1
		f(strings.Repeat("a", 65536), v, ErrFilterTooLong) // MQTT-4.7.3-3
	}

	// Shared subscriptions exist from 5.0 on (4.8.2).
	f("$share/g/a/b", Version5, nil)
	f("$share/consumer1/sport/tennis/+", Version5, nil)
	f("$share/g/#", Version5, nil)
	f("$share/g//finance", Version5, nil)
	f("$share/g/$share/h/a", Version5, nil) // the filter after the share name is an ordinary one
	f("$share/é/a", Version5, nil)
	f("$share/", Version5, ErrShareName)          // MQTT-4.8.2-1: share name at least one character
	f("$share//a", Version5, ErrShareName)        // MQTT-4.8.2-1
	f("$share/g+/a", Version5, ErrShareNameChars) // MQTT-4.8.2-2: no '+' in the share name
	f("$share/+/a", Version5, ErrShareNameChars)  // MQTT-4.8.2-2
	f("$share/#/a", Version5, ErrShareNameChars)  // MQTT-4.8.2-2: no '#' either
	f("$share/g", Version5, ErrShareFilter)       // MQTT-4.8.2-2: share name followed by '/' and a filter
	f("$share/g/a#", Version5, ErrFilterHash)     // MQTT-4.8.2-2: a valid filter (4.7)
	f("$share/g/a+", Version5, ErrFilterPlus)     // MQTT-4.8.2-2
	f("$share/\xff/a", Version5, ErrInvalidUTF8)  // the share name is part of the UTF-8 string (MQTT-1.5.4-1)
	f("$share/g\x00/a", Version5, ErrNullCharacter)

	// "$share/g/" has a share name and its '/' but an empty filter, which
	// MQTT-4.8.2-2 and MQTT-4.7.3-1 both forbid. Either sentinel would do; the
	// reason code must be Topic Filter invalid.
	if err := ValidateFilter([]byte("$share/g/"), Version5); err == nil || ReasonOf(err) != TopicFilterInvalid {
		t.Fatalf(`ValidateFilter("$share/g/", 5) = %v, want a Topic Filter invalid error`, err)
	}

	// Before 5.0 "$share/" means nothing: these are ordinary filters.
	for _, v := range []byte{Version31, Version311} {
		f("$share/g", v, nil)
		f("$share/g/", v, nil)
		f("$share//a", v, nil)
		f("$share/", v, nil)
		f("$share/g/a/b", v, nil)
		f("$share/g+/a", v, ErrFilterPlus)
		f("$share/#/a", v, ErrFilterHash)
	}
}

func TestSplitShared(t *testing.T) {
	f := func(in, wantGroup, wantFilter string, wantFilterNil, wantOK bool) {
		t.Helper()
		group, filter, ok := SplitShared([]byte(in))
		if ok != wantOK || string(group) != wantGroup || string(filter) != wantFilter || (filter == nil) != wantFilterNil {
			t.Fatalf("SplitShared(%q) = %q, %q (nil %v), %v; want %q, %q (nil %v), %v",
				in, group, filter, filter == nil, ok, wantGroup, wantFilter, wantFilterNil, wantOK)
		}
	}
	f("$share/g/a/b", "g", "a/b", false, true)
	f("$share/consumer1/sport/tennis/+", "consumer1", "sport/tennis/+", false, true)
	f("$share/g/#", "g", "#", false, true)
	f("$share/g//finance", "g", "/finance", false, true)
	f("$share/g/", "g", "", false, true) // a '/' then nothing: empty, not missing
	f("$share/g", "g", "", true, true)   // no '/' after the share name: missing
	f("$share//a", "", "a", false, true)
	f("$share/", "", "", true, true)

	// Not shared: no "$share/" prefix, matched byte for byte.
	f("$share", "", "", true, false)
	f("$SHARE/g/a", "", "", true, false)
	f("a/$share/g/b", "", "", true, false)
	f("share/g/a", "", "", true, false)
	f("", "", "", true, false)

	// The results are views into the argument.
	in := []byte("$share/g/a")
	group, filter, _ := SplitShared(in)
	if &group[0] != &in[7] || &filter[0] != &in[9] {
		t.Fatal("SplitShared copied its argument")
	}
}

// sameErr reports whether err is want: both nil, or err wraps want.
func sameErr(err, want error) bool {
	if want == nil {
		return err == nil
	}
	return errors.Is(err, want)
}

// TestWordScanBoundaries puts each kind of byte the word-at-a-time scan must
// stop at in every position around the 8-byte boundaries.
func TestWordScanBoundaries(t *testing.T) {
	for n := 1; n <= 24; n++ {
		for pos := 0; pos < n; pos++ {
			for _, bad := range []byte{'+', '#', 0, 0x80, 0xFF} {
				b := bytes.Repeat([]byte("a"), n)
				b[pos] = bad
				if ValidateTopicName(b) == nil {
					t.Fatalf("ValidateTopicName accepted %q", b)
				}
				if (ValidUTF8(b) == nil) != (bad == '+' || bad == '#') {
					t.Fatalf("ValidUTF8(%q) = %v", b, ValidUTF8(b))
				}
			}
			b := bytes.Repeat([]byte("a"), n)
			if ValidateTopicName(b) != nil || ValidUTF8(b) != nil {
				t.Fatalf("refused %q", b)
			}
		}
	}
}
