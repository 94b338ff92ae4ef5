package testutil

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/codec"
)

// Raw is an MQTT client over a bare TCP socket, built on the codec, for what
// real clients will not do: packets out of order or over a limit, silence,
// an abrupt close, protocol levels and names a library will not send. It
// belongs to one test goroutine.
type Raw struct {
	t    testing.TB
	Conn net.Conn
	// Dec decodes what the broker sends. Sending a CONNECT sets its Version
	// to the level announced (3.1.1 for a level the broker does not know,
	// since it refuses those in 3.1.1 format, MQTT-3.1.2-2); set it by hand to
	// read another format.
	Dec codec.Decoder
	buf []byte // received bytes not decoded yet
}

// DialRaw opens a TCP connection to addr; it is closed when the test ends.
func DialRaw(t testing.TB, addr string) *Raw {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return &Raw{t: t, Conn: nc}
}

// Write writes b as it is.
func (r *Raw) Write(b []byte) {
	r.t.Helper()
	_ = r.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.Conn.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// Encode returns p encoded at the connection's protocol level; a CONNECT is
// encoded at the level it announces, and sets Dec.Version.
func (r *Raw) Encode(p *codec.Packet) []byte {
	r.t.Helper()
	if p.Type == codec.CONNECT {
		switch v := p.Connect.ProtocolVersion; v {
		case codec.Version31, codec.Version311, codec.Version5:
			r.Dec.Version = v
		default:
			r.Dec.Version = codec.Version311
		}
	}
	b, err := p.Append(nil, r.Dec.Version)
	if err != nil {
		r.t.Fatalf("encode %s: %v", p.Type, err)
	}
	return b
}

// Send encodes p (see Encode) and writes it.
func (r *Raw) Send(p *codec.Packet) {
	r.t.Helper()
	r.Write(r.Encode(p))
}

// Connect sends c and returns the CONNACK, failing the test on anything else.
func (r *Raw) Connect(c *codec.Connect) *codec.Connack {
	r.t.Helper()
	r.Send(&codec.Packet{Type: codec.CONNECT, Connect: *c})
	return &r.Expect(codec.CONNACK, 5*time.Second).Connack
}

// Read returns the next packet the broker sends, waiting at most d. The
// packet's byte slices stay valid for the rest of the test. The error is
// io.EOF when the broker closed the connection (a reset counts as closed),
// os.ErrDeadlineExceeded when nothing came in time, or a decoding error.
func (r *Raw) Read(d time.Duration) (*codec.Packet, error) {
	_ = r.Conn.SetReadDeadline(time.Now().Add(d))
	var tmp [4096]byte
	for {
		p := new(codec.Packet)
		n, err := r.Dec.Decode(r.buf, p)
		if err == nil {
			// p views r.buf[:n]; later reads go to a new array, so the
			// views are never overwritten.
			r.buf = append([]byte(nil), r.buf[n:]...)
			return p, nil
		}
		if !errors.Is(err, codec.ErrNeedMore) {
			return nil, err
		}
		m, err := r.Conn.Read(tmp[:])
		r.buf = append(r.buf, tmp[:m]...)
		if m > 0 {
			continue
		}
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil, err
		case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, net.ErrClosed):
			return nil, io.EOF
		case err != nil:
			return nil, err
		}
	}
}

// Expect returns the next packet, failing the test unless it is of type t and
// arrives within d.
func (r *Raw) Expect(t codec.PacketType, d time.Duration) *codec.Packet {
	r.t.Helper()
	p, err := r.Read(d)
	if err != nil {
		r.t.Fatalf("waiting for %s: %v", t, err)
	}
	if p.Type != t {
		r.t.Fatalf("got %s, want %s", describe(p), t)
	}
	return p
}

// ExpectDisconnect expects a 5.0 DISCONNECT with reason within d, then the
// broker closing the connection.
func (r *Raw) ExpectDisconnect(reason codec.ReasonCode, d time.Duration) {
	r.t.Helper()
	p := r.Expect(codec.DISCONNECT, d)
	if p.Disconnect.ReasonCode != reason {
		r.t.Fatalf("DISCONNECT reason: got %s (%#x), want %s (%#x)", p.Disconnect.ReasonCode,
			byte(p.Disconnect.ReasonCode), reason, byte(reason))
	}
	r.ExpectClosed(time.Second)
}

// ExpectClosed fails the test unless the broker closes the connection within
// d without sending anything more.
func (r *Raw) ExpectClosed(d time.Duration) {
	r.t.Helper()
	p, err := r.Read(d)
	switch {
	case err == nil:
		r.t.Fatalf("got %s, want the connection closed", describe(p))
	case errors.Is(err, os.ErrDeadlineExceeded):
		r.t.Fatalf("connection still open after %v", d)
	case !errors.Is(err, io.EOF):
		r.t.Fatalf("want the connection closed: %v", err)
	}
}

// ExpectSilence fails the test if the broker sends anything or closes the
// connection within d.
func (r *Raw) ExpectSilence(d time.Duration) {
	r.t.Helper()
	p, err := r.Read(d)
	switch {
	case err == nil:
		r.t.Fatalf("got %s, want nothing for %v", describe(p), d)
	case errors.Is(err, io.EOF):
		r.t.Fatalf("connection closed, want it open for %v", d)
	case !errors.Is(err, os.ErrDeadlineExceeded):
		r.t.Fatalf("want nothing for %v: %v", d, err)
	}
}

// Disconnect sends a normal DISCONNECT and waits for the broker to close the
// connection. The broker has finished with the connection (will discarded,
// session detached or ended) before it closes the socket, so a test can rely
// on that state afterwards; a library client that closes its own socket
// gives no such point.
func (r *Raw) Disconnect() {
	r.t.Helper()
	r.Send(&codec.Packet{Type: codec.DISCONNECT})
	r.ExpectClosed(2 * time.Second)
}

// Close closes the socket without a DISCONNECT: an abnormal close for the
// broker.
func (r *Raw) Close() { _ = r.Conn.Close() }

func describe(p *codec.Packet) string {
	switch p.Type {
	case codec.CONNACK:
		return "CONNACK " + p.Connack.ReasonCode.String()
	case codec.DISCONNECT:
		return "DISCONNECT " + p.Disconnect.ReasonCode.String()
	case codec.PUBLISH:
		return "PUBLISH on " + string(p.Publish.Topic)
	}
	return p.Type.String()
}
