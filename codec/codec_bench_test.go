package codec

import (
	"bytes"
	"testing"
)

// Inputs shared by the benchmarks and the allocation tests.
var (
	benchPayload64 = bytes.Repeat([]byte("p"), 64)
	benchPayload4K = bytes.Repeat([]byte("q"), 4096)
)

func benchPublish(payload []byte, v5 bool) *Publish {
	p := &Publish{QoS: 1, Topic: bs("sensors/site-42/floor-3/temperature"), PacketID: 4242, Payload: payload}
	if v5 {
		p.Props.SetMessageExpiry(3600)
		p.Props.SetContentType(bs("application/json"))
		p.Props.AddUser(bs("origin"), bs("gateway-7"))
	}
	return p
}

func benchConnect() *Connect {
	return &Connect{ProtocolVersion: Version311, CleanStart: true, KeepAlive: 60,
		ClientID: bs("device-0001-abcdef"), UsernameFlag: true, Username: bs("fleet"),
		PasswordFlag: true, Password: bs("s3cr3t-t0ken")}
}

func benchSubscribe() *Subscribe {
	return &Subscribe{PacketID: 7, Subscriptions: []Subscription{
		{Filter: bs("sensors/+/floor-3/#"), QoS: 1},
		{Filter: bs("alerts/#"), QoS: 2},
		{Filter: bs("cmd/device-0001"), QoS: 0}}}
}

type benchCase struct {
	name    string
	version byte
	pkt     *Packet
}

func benchCases() []benchCase {
	return []benchCase{
		{"publish-311-64B", Version311, &Packet{Type: PUBLISH, Publish: *benchPublish(benchPayload64, false)}},
		{"publish-311-4KiB", Version311, &Packet{Type: PUBLISH, Publish: *benchPublish(benchPayload4K, false)}},
		{"publish-5-64B-3props", Version5, &Packet{Type: PUBLISH, Publish: *benchPublish(benchPayload64, true)}},
		{"publish-5-4KiB-3props", Version5, &Packet{Type: PUBLISH, Publish: *benchPublish(benchPayload4K, true)}},
		{"connect-311", Version311, &Packet{Type: CONNECT, Connect: *benchConnect()}},
		{"subscribe-311-3filters", Version311, &Packet{Type: SUBSCRIBE, Subscribe: *benchSubscribe()}},
	}
}

var sinkInt int

func BenchmarkDecode(b *testing.B) {
	for _, c := range benchCases() {
		raw, err := c.pkt.Append(nil, c.version)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			dv := decoderVersion(c.pkt, c.version)
			d := Decoder{Version: dv}
			var p Packet
			for b.Loop() {
				d.Version = dv
				n, err := d.Decode(raw, &p)
				if err != nil {
					b.Fatal(err)
				}
				sinkInt += n
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, c := range benchCases() {
		raw, _ := c.pkt.Append(nil, c.version)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			buf := make([]byte, 0, len(raw))
			for b.Loop() {
				out, err := c.pkt.Append(buf[:0], c.version)
				if err != nil {
					b.Fatal(err)
				}
				sinkInt += len(out)
			}
		})
	}
}

// TestHotPathAllocs holds the steady-state promise of the package: decoding
// any packet into a reused Packet, and encoding into a buffer with room,
// allocate nothing.
func TestHotPathAllocs(t *testing.T) {
	cases := benchCases()
	for _, c := range validCases { // every type, every level
		cases = append(cases, benchCase{c.name, c.version, c.want})
	}
	for _, c := range cases {
		v := encodeVersion(c.pkt, c.version)
		raw, err := c.pkt.Append(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		dv := decoderVersion(c.pkt, c.version)
		d := Decoder{Version: dv}
		var p Packet
		if _, err := d.Decode(raw, &p); err != nil { // warm up the reused slices
			t.Fatalf("%s: %v", c.name, err)
		}
		if a := testing.AllocsPerRun(100, func() { d.Version = dv; _, _ = d.Decode(raw, &p) }); a != 0 {
			t.Errorf("%s: decode allocates %.1f times", c.name, a)
		}
		buf := make([]byte, 0, len(raw))
		if a := testing.AllocsPerRun(100, func() { _, _ = c.pkt.Append(buf[:0], v) }); a != 0 {
			t.Errorf("%s: encode allocates %.1f times", c.name, a)
		}
	}
}
