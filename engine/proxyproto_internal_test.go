package engine

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

func proxyV2(cmd, fam byte, body []byte) []byte {
	b := append([]byte{}, proxyV2Signature...)
	b = append(b, 0x20|cmd, fam, 0, 0)
	binary.BigEndian.PutUint16(b[14:], uint16(len(body)))
	return append(b, body...)
}

func TestParseProxyHeader(t *testing.T) {
	v4 := proxyV2(1, 0x11, []byte{203, 0, 113, 7, 10, 0, 0, 1, 0xC7, 0x38, 0x07, 0x5B})
	v6body := make([]byte, 36)
	v6body[15], v6body[31] = 1, 2 // ::1 → ::2
	binary.BigEndian.PutUint16(v6body[32:], 4242)
	v6 := proxyV2(1, 0x21, v6body)
	for _, c := range []struct {
		name string
		in   string
		n    int
		addr string
		bad  bool
	}{
		{"v1 TCP4", "PROXY TCP4 203.0.113.7 10.0.0.1 51000 1883\r\nMQTT", 44, "203.0.113.7:51000", false},
		{"v1 TCP6", "PROXY TCP6 2001:db8::1 2001:db8::2 4242 1883\r\n", 46, "[2001:db8::1]:4242", false},
		{"v1 UNKNOWN", "PROXY UNKNOWN\r\n", 15, "", false},
		{"v1 partial", "PROXY TCP4 203.0.1", 0, "", false},
		{"v1 prefix", "PRO", 0, "", false},
		{"v1 family mismatch", "PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n", 0, "", true},
		{"v1 bad port", "PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n", 0, "", true},
		{"v1 no CRLF within 107 bytes", "PROXY TCP4 " + string(make([]byte, 120)), 0, "", true},
		{"not a header", "\x10\x0c\x00\x04MQTT", 0, "", true},
		{"v2 TCP4", string(v4) + "rest", 28, "203.0.113.7:51000", false},
		{"v2 TCP6", string(v6), 52, "[::1]:4242", false},
		{"v2 LOCAL", string(proxyV2(0, 0x00, nil)), 16, "", false},
		{"v2 partial body", string(v4[:20]), 0, "", false},
		{"v2 partial signature", string(v4[:7]), 0, "", false},
		{"v2 short TCP4 body", string(proxyV2(1, 0x11, []byte{1, 2, 3})), 0, "", true},
		{"v2 bad version", string(append(append([]byte{}, proxyV2Signature...), 0x31, 0x11, 0, 0)), 0, "", true},
	} {
		n, addr, err := parseProxyHeader([]byte(c.in))
		if (err != nil) != c.bad || n != c.n {
			t.Errorf("%s: n=%d err=%v, want n=%d bad=%v", c.name, n, err, c.n, c.bad)
			continue
		}
		want := netip.AddrPort{}
		if c.addr != "" {
			want = netip.MustParseAddrPort(c.addr)
		}
		if addr != want {
			t.Errorf("%s: address %v, want %v", c.name, addr, want)
		}
	}
}

func FuzzProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 203.0.113.7 10.0.0.1 51000 1883\r\n"))
	f.Add(proxyV2(1, 0x11, []byte{203, 0, 113, 7, 10, 0, 0, 1, 0xC7, 0x38, 0x07, 0x5B}))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, _, err := parseProxyHeader(b)
		if err == nil && n > len(b) {
			t.Fatalf("header of %d bytes in %d", n, len(b))
		}
		if err == nil && n == 0 && len(b) > 16+65535 {
			t.Fatal("still waiting after the longest header")
		}
	})
}
