package codeccompare

import "testing"

// Sub-benchmarks are named BenchmarkDecode/case=publish-5-64B/lib=tern and so
// on, so that benchstat can put the libraries side by side:
//
//	benchstat -col /lib /tmp/codeccompare.txt
//
// paho.golang appears only in the 5.0 cases (see pahoSupports).
//
// Before timing, each sub-benchmark runs the checks of TestCodecsAgree on its
// decoder or encoder, so that a codec changed since the test last ran cannot
// be timed producing something else. Each loop checks the error and stores its
// result in a package-level sink so the work is kept.

var (
	sinkN     int
	sinkBytes []byte
)

func BenchmarkDecode(b *testing.B) {
	for _, c := range cases {
		b.Run("case="+c.name, func(b *testing.B) {
			b.Run("lib=tern", func(b *testing.B) {
				d := newTernDecoder(c)
				checkDecode(b, c, "tern", d.decode, d.message)
				start(b, c)
				for b.Loop() {
					n, err := d.decode(c.raw)
					if err != nil {
						b.Fatal(err)
					}
					sinkN += n
				}
			})
			if pahoSupports(c) {
				b.Run("lib=paho", func(b *testing.B) {
					d := &pahoDecoder{}
					checkDecode(b, c, "paho", d.decode, d.message)
					start(b, c)
					for b.Loop() {
						n, err := d.decode(c.raw)
						if err != nil {
							b.Fatal(err)
						}
						sinkN += n
					}
				})
			}
			b.Run("lib=mochi", func(b *testing.B) {
				d := newMochiDecoder(c)
				checkDecode(b, c, "mochi", d.decode, d.message)
				start(b, c)
				for b.Loop() {
					n, err := d.decode(c.raw)
					if err != nil {
						b.Fatal(err)
					}
					sinkN += n
				}
			})
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, c := range cases {
		b.Run("case="+c.name, func(b *testing.B) {
			b.Run("lib=tern", func(b *testing.B) {
				e := newTernEncoder(c)
				checkEncode(b, c, "tern", e.encode)
				start(b, c)
				for b.Loop() {
					out, err := e.encode()
					if err != nil {
						b.Fatal(err)
					}
					sinkBytes = out
				}
			})
			if pahoSupports(c) {
				b.Run("lib=paho", func(b *testing.B) {
					e := newPahoEncoder(c)
					checkEncode(b, c, "paho", e.encode)
					start(b, c)
					for b.Loop() {
						out, err := e.encode()
						if err != nil {
							b.Fatal(err)
						}
						sinkBytes = out
					}
				})
			}
			b.Run("lib=mochi", func(b *testing.B) {
				e := newMochiEncoder(c)
				checkEncode(b, c, "mochi", e.encode)
				start(b, c)
				for b.Loop() {
					out, err := e.encode()
					if err != nil {
						b.Fatal(err)
					}
					sinkBytes = out
				}
			})
		})
	}
}

func start(b *testing.B, c *wireCase) {
	b.Helper()
	b.ReportAllocs()
	b.SetBytes(int64(len(c.raw)))
}
