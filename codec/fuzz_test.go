package codec

import (
	"bytes"
	"errors"
	"testing"
	"unicode/utf8"
)

// The decode fuzz targets feed arbitrary bytes to a decoder at one protocol
// level. They check that decoding never panics or reads out of bounds, that
// a decoded packet re-encodes and decodes back to the same packet
// (decode→encode→decode is stable), that the encoding is a fixed point, and
// that every proper prefix of a decoded packet asks for more bytes. Seeds are
// the shared case table. Crashers found by `make fuzz` land in
// testdata/fuzz/<target>/ and are kept as regression cases.

func FuzzDecode31(f *testing.F)  { fuzzDecode(f, Version31) }
func FuzzDecode311(f *testing.F) { fuzzDecode(f, Version311) }
func FuzzDecode5(f *testing.F)   { fuzzDecode(f, Version5) }

func fuzzDecode(f *testing.F, version byte) {
	for _, c := range allCases() {
		f.Add(c.raw)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := Decoder{Version: version}
		var p Packet
		// Decode the input as a stream: several packets may follow each other.
		for len(data) > 0 {
			n, err := d.Decode(data, &p)
			if err != nil {
				if n > len(data) {
					t.Fatalf("consumed %d of %d bytes", n, len(data))
				}
				return
			}
			if n <= 0 || n > len(data) {
				t.Fatalf("consumed %d of %d bytes", n, len(data))
			}
			checkStable(t, &p, d.Version, data[:n])
			data = data[n:]
		}
	})
}

func checkStable(t *testing.T, p *Packet, version byte, raw []byte) {
	v := encodeVersion(p, version)
	enc, err := p.Append(nil, v)
	if err != nil {
		t.Fatalf("re-encoding % x: %v", raw, err)
	}
	d := Decoder{Version: decoderVersion(p, v)}
	var q Packet
	n, err := d.Decode(enc, &q)
	if err != nil || n != len(enc) {
		t.Fatalf("decoding own encoding % x of % x: n=%d err=%v", enc, raw, n, err)
	}
	if diff := diffPackets(p, &q); diff != "" {
		t.Fatalf("round trip of % x changed the packet: %s", raw, diff)
	}
	enc2, err := q.Append(nil, v)
	if err != nil || !bytes.Equal(enc, enc2) {
		t.Fatalf("encoding is not a fixed point: % x then % x (%v)", enc, enc2, err)
	}
	for _, k := range []int{0, 1, len(raw) / 2, len(raw) - 1} {
		if k < 0 || k >= len(raw) {
			continue
		}
		d := Decoder{Version: version}
		if n, err := d.Decode(raw[:k], &q); n != 0 || !errors.Is(err, ErrNeedMore) {
			t.Fatalf("prefix %d of % x: n=%d err=%v, want need more", k, raw, n, err)
		}
	}
}

// FuzzTopicName checks that ValidateTopicName never panics, accepts only
// wildcard-free well-formed UTF-8, and agrees with ValidateFilter: a valid
// non-empty topic name is also a valid filter matching only itself.
func FuzzTopicName(f *testing.F) {
	for _, s := range []string{"a/b", "", "/", "a/+", "#", "$SYS/x", "é/€", "\x00", "\xed\xa0\x80", "a//b"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, topic []byte) {
		err := ValidateTopicName(topic)
		hasWild := bytes.ContainsAny(topic, "+#")
		wellFormed := utf8.Valid(topic) && bytes.IndexByte(topic, 0) < 0 // independent of the word-at-a-time scan
		if (ValidUTF8(topic) == nil) != wellFormed {
			t.Fatalf("ValidUTF8(%q) = %v, reference says well-formed=%v", topic, ValidUTF8(topic), wellFormed)
		}
		if err == nil && (hasWild || !wellFormed) {
			t.Fatalf("accepted invalid topic name %q", topic)
		}
		if err != nil && !hasWild && wellFormed && len(topic) <= 65535 {
			t.Fatalf("refused valid topic name %q: %v", topic, err)
		}
		if err == nil && len(topic) > 0 && !bytes.HasPrefix(topic, []byte(SharePrefix)) {
			if ferr := ValidateFilter(topic, Version5); ferr != nil {
				t.Fatalf("valid topic %q is not a valid filter: %v", topic, ferr)
			}
		}
	})
}

// FuzzTopicFilter checks ValidateFilter against an independent statement of
// the rules of section 4.7.1 and 4.8.2, written level by level.
func FuzzTopicFilter(f *testing.F) {
	for _, s := range []string{"a/+/b", "#", "+", "a/#", "a/#/b", "a+", "+a", "$share/g/a", "$share//a", "$share/g", "", "a\x00"} {
		f.Add([]byte(s), byte(5))
		f.Add([]byte(s), byte(4))
	}
	f.Fuzz(func(t *testing.T, filter []byte, version byte) {
		err := ValidateFilter(filter, version)
		if want := referenceFilterValid(filter, version); (err == nil) != want {
			t.Fatalf("ValidateFilter(%q, %d) = %v, reference says valid=%v", filter, version, err, want)
		}
		if err != nil && ReasonOf(err) != TopicFilterInvalid && ReasonOf(err) != MalformedPacket && ReasonOf(err) != TopicNameInvalid {
			t.Fatalf("unexpected reason %v", ReasonOf(err))
		}
	})
}

func referenceFilterValid(filter []byte, version byte) bool {
	if ValidUTF8(filter) != nil || len(filter) > 65535 {
		return false
	}
	if version >= Version5 && bytes.HasPrefix(filter, []byte("$share/")) {
		parts := bytes.SplitN(filter, []byte("/"), 3)
		if len(parts) < 3 || len(parts[1]) == 0 || bytes.ContainsAny(parts[1], "+#") {
			return false
		}
		filter = parts[2]
	}
	if len(filter) == 0 {
		return false
	}
	levels := bytes.Split(filter, []byte("/"))
	for i, l := range levels {
		if bytes.Contains(l, []byte("#")) && (len(l) != 1 || i != len(levels)-1) {
			return false
		}
		if bytes.Contains(l, []byte("+")) && len(l) != 1 {
			return false
		}
	}
	return true
}
