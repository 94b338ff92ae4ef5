package codeccompare

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
)

// TestCodecsAgree checks that every codec taking part in a case decodes its
// raw bytes to the values they carry and encodes those values back to the
// same bytes. The benchmarks run the same checks before timing, so that a
// `-run XXX` benchmark run is checked too.
func TestCodecsAgree(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			td := newTernDecoder(c)
			checkDecode(t, c, "tern", td.decode, td.message)
			checkEncode(t, c, "tern", newTernEncoder(c).encode)

			md := newMochiDecoder(c)
			checkDecode(t, c, "mochi", md.decode, md.message)
			checkEncode(t, c, "mochi", newMochiEncoder(c).encode)

			if pahoSupports(c) {
				pd := &pahoDecoder{}
				checkDecode(t, c, "paho", pd.decode, pd.message)
				checkEncode(t, c, "paho", newPahoEncoder(c).encode)
			}
		})
	}
}

// TestPahoMisreads311 keeps pahoSupports honest: if paho.golang ever decodes
// a 3.1.1 case correctly, it should join the 3.1.1 benchmarks.
func TestPahoMisreads311(t *testing.T) {
	for _, c := range cases {
		if pahoSupports(c) {
			continue
		}
		pd := &pahoDecoder{}
		if n, err := pd.decode(c.raw); err == nil && n == len(c.raw) && reflect.DeepEqual(pd.message(), c.msg) {
			t.Errorf("%s: paho.golang now decodes 3.1.1; include it in pahoSupports", c.name)
		}
	}
}

// checkDecode decodes c.raw twice into the decoder's reused state, as the
// benchmark loop does, so stale state from a previous packet would show, and
// compares what got reports with c.msg.
func checkDecode(tb testing.TB, c *wireCase, lib string, decode func([]byte) (int, error), got func() message) {
	tb.Helper()
	for i := range 2 {
		n, err := decode(c.raw)
		if err != nil {
			tb.Fatalf("%s %s decode #%d: %v", c.name, lib, i+1, err)
		}
		if n != len(c.raw) {
			tb.Fatalf("%s %s decode #%d took %d bytes, want %d", c.name, lib, i+1, n, len(c.raw))
		}
		if m := got(); !reflect.DeepEqual(m, c.msg) {
			tb.Fatalf("%s %s decode #%d:\n got %s\nwant %s", c.name, lib, i+1, describe(m), describe(c.msg))
		}
	}
}

// checkEncode encodes twice with the encoder's reused buffer and compares
// the output with c.raw.
func checkEncode(tb testing.TB, c *wireCase, lib string, encode func() ([]byte, error)) {
	tb.Helper()
	for i := range 2 {
		out, err := encode()
		if err != nil {
			tb.Fatalf("%s %s encode #%d: %v", c.name, lib, i+1, err)
		}
		if !bytes.Equal(out, c.raw) {
			tb.Fatalf("%s %s encode #%d:\n got % x\nwant % x", c.name, lib, i+1, out, c.raw)
		}
	}
}

// describe prints a message with its payload as a string cut short.
func describe(m message) string {
	p := m.payload
	m.payload = nil
	if len(p) > 32 {
		p = append(p[:32:32], "..."...)
	}
	return fmt.Sprintf("%+v payload=%q", m, p)
}
