package fuzz

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
	"github.com/tern-mqtt/tern/message"
)

// FuzzListenerStreams sends the input, cut into pieces, on several
// connections at once, over the plain listener (gnet) or the WebSocket
// listener (the stream transport TLS also uses), then checks that a healthy
// client is still served on the plain listener and, when fuzzing ends, that
// nothing leaked. Byte 0 picks the number of connections (1-8) and byte 1
// the listener; the rest is the byte stream, half of the connections getting
// a valid CONNECT before it so that the input also reaches connected-state
// handling.
func FuzzListenerStreams(f *testing.F) {
	srv := testutil.StartBroker(f, engine.Options{ConnectTimeout: 2 * time.Second, MaxPacketSize: 64 << 10, SysInterval: -1,
		MaxQueuedMessages: 100, WSListen: "127.0.0.1:0"})
	addr, ws := srv.Addr().String(), "ws://"+srv.WSAddr().String()+engine.WebSocketPath
	for _, s := range seeds() {
		f.Add(append([]byte{3, 0}, s[1:]...))
		f.Add(append([]byte{5, 1}, s[1:]...))
	}
	baseline, _ := message.Live()
	f.Cleanup(func() { checkNoLeaks(f, srv, baseline) })
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		n, overWS, stream := 1+int(data[0]%8), data[1]%2 == 1, data[2:]
		var wg sync.WaitGroup
		for i := range n {
			part := stream[i*len(stream)/n : (i+1)*len(stream)/n]
			if i%2 == 1 {
				part = append(connectFor("listener-fuzz", i), part...)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				sendAndDrain(addr, ws, overWS, part)
			}()
		}
		wg.Wait()
		healthCheck(t, addr)
	})
}

// connectFor is a 3.1.1 CONNECT with client id prefix-i.
func connectFor(prefix string, i int) []byte {
	id := prefix + string(rune('a'+i))
	b := []byte{0x10, byte(12 + len(id)), 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 30, 0, byte(len(id))}
	return append(b, id...)
}

// sendAndDrain writes b on a new connection and reads until the broker closes
// it or stays silent for a moment.
func sendAndDrain(addr, ws string, overWS bool, b []byte) {
	var c net.Conn
	if overWS {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		wc, _, err := websocket.Dial(ctx, ws, &websocket.DialOptions{Subprotocols: []string{"mqtt"}})
		cancel()
		if err != nil {
			return
		}
		c = websocket.NetConn(context.Background(), wc, websocket.MessageBinary)
	} else {
		var err error
		if c, err = net.DialTimeout("tcp", addr, 2*time.Second); err != nil {
			return
		}
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(50 * time.Millisecond)) // the broker answers at once or not at all
	if len(b) > 0 {
		if _, err := c.Write(b); err != nil {
			return
		}
	}
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}
