package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/tern-mqtt/tern/codec"
)

// checkTimeout bounds each sample check.
const checkTimeout = 10 * time.Second

// conn reads MQTT 3.1.1 packets from a connection.
type conn struct {
	c    net.Conn
	dec  codec.Decoder
	buf  []byte
	off  int // start of the unread bytes in buf
	have int // end of the bytes read into buf
	p    codec.Packet
}

func newConn(c net.Conn) *conn {
	return &conn{c: c, dec: codec.Decoder{Version: codec.Version311}, buf: make([]byte, 64<<10)}
}

// next returns the next packet. It is valid until the next call: its byte
// slices are views into the read buffer.
func (m *conn) next() (*codec.Packet, error) {
	for {
		if m.off < m.have {
			n, err := m.dec.Decode(m.buf[m.off:m.have], &m.p)
			if err == nil {
				m.off += n
				return &m.p, nil
			}
			if !errors.Is(err, codec.ErrNeedMore) {
				return nil, err
			}
		}
		m.have = copy(m.buf, m.buf[m.off:m.have])
		m.off = 0
		if m.have == len(m.buf) {
			m.buf = append(m.buf, make([]byte, len(m.buf))...)
		}
		n, err := m.c.Read(m.buf[m.have:])
		if err != nil {
			return nil, err
		}
		m.have += n
	}
}

func (m *conn) send(p *codec.Packet) error {
	out, err := p.Append(nil, codec.Version311)
	if err != nil {
		return err
	}
	_, err = m.c.Write(out)
	return err
}

// dialMQTT connects as clientID with the given clean session flag and
// returns the connection and CONNACK's session present flag.
func dialMQTT(addr, clientID string, clean bool) (*conn, bool, error) {
	c, err := net.DialTimeout("tcp", addr, checkTimeout)
	if err != nil {
		return nil, false, err
	}
	_ = c.SetDeadline(time.Now().Add(checkTimeout))
	m := newConn(c)
	err = m.send(&codec.Packet{Type: codec.CONNECT, Connect: codec.Connect{
		ProtocolVersion: codec.Version311, CleanStart: clean, ClientID: []byte(clientID)}})
	if err != nil {
		_ = c.Close()
		return nil, false, err
	}
	p, err := m.next()
	if err != nil {
		_ = c.Close()
		return nil, false, fmt.Errorf("%s: waiting for CONNACK: %w", clientID, err)
	}
	if p.Type != codec.CONNACK || p.Connack.ReasonCode != codec.Success {
		_ = c.Close()
		return nil, false, fmt.Errorf("%s: refused: %v %v", clientID, p.Type, p.Connack.ReasonCode)
	}
	return m, p.Connack.SessionPresent, nil
}

// close sends DISCONNECT and closes the connection.
func (m *conn) close() {
	_ = m.send(&codec.Packet{Type: codec.DISCONNECT})
	_ = m.c.Close()
}

// checkSession resumes the persistent session i and checks that the broker
// says the session is present and delivers its queued messages, in order. It
// does not acknowledge them, so they stay stored (in flight) and the same
// check passes again after a restart, with DUP set.
func checkSession(addr string, l layout, i int) error {
	id := l.clientID(i)
	m, present, err := dialMQTT(addr, id, false)
	if err != nil {
		return err
	}
	defer m.close()
	if !present {
		return fmt.Errorf("%s: CONNACK session present 0 for a stored session", id)
	}
	for k := range l.queued {
		p, err := m.next()
		if err != nil {
			return fmt.Errorf("%s: got %d of %d queued messages: %w", id, k, l.queued, err)
		}
		if p.Type != codec.PUBLISH {
			return fmt.Errorf("%s: got %v, want queued PUBLISH %d", id, p.Type, k)
		}
		b := l.body(i, k)
		if string(p.Publish.Topic) != bodyTopic(b) || !bytes.Equal(p.Publish.Payload, bodyPayload(b)) || p.Publish.QoS != 1 {
			return fmt.Errorf("%s: queued message %d is %q QoS %d %q, want %q QoS 1 %q", id, k,
				p.Publish.Topic, p.Publish.QoS, p.Publish.Payload, bodyTopic(b), bodyPayload(b))
		}
	}
	return nil
}

// checkRetained subscribes with a clean session to the topic of retained
// message i and checks that it arrives with RETAIN set.
func checkRetained(addr string, i int) error {
	m, _, err := dialMQTT(addr, "recoverbench-retained", true)
	if err != nil {
		return err
	}
	defer m.close()
	topic := retainedTopic(i)
	err = m.send(&codec.Packet{Type: codec.SUBSCRIBE, Subscribe: codec.Subscribe{PacketID: 1,
		Subscriptions: []codec.Subscription{{Filter: []byte(topic), QoS: 0}}}})
	if err != nil {
		return err
	}
	for {
		p, err := m.next()
		if err != nil {
			return fmt.Errorf("subscribed to %s: no retained message: %w", topic, err)
		}
		switch p.Type {
		case codec.SUBACK:
			if len(p.Suback.ReasonCodes) != 1 || p.Suback.ReasonCodes[0] != 0 {
				return fmt.Errorf("subscription to %s refused: % x", topic, p.Suback.ReasonCodes)
			}
		case codec.PUBLISH:
			if string(p.Publish.Topic) != topic || !p.Publish.Retain || !bytes.Equal(p.Publish.Payload, retainedPayload(i)) {
				return fmt.Errorf("subscribed to %s: got %q retain %v %q, want retained %q",
					topic, p.Publish.Topic, p.Publish.Retain, p.Publish.Payload, retainedPayload(i))
			}
			return nil
		default:
			return fmt.Errorf("subscribed to %s: unexpected %v", topic, p.Type)
		}
	}
}
