package engine_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/engine"
)

// Stop while connections arrive returns at once: the connection the
// accept loop is handing to an event loop gets there before the loops stop
// (handing it to a stopped loop used to block Stop until its deadline).
func TestStopWhileConnectionsArrive(t *testing.T) {
	for i := range 30 {
		srv := engine.New(engine.Options{Listen: "127.0.0.1:0", EventLoops: 2, Logger: testLogger()})
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		// Connections keep arriving while the broker stops.
		addr := srv.Addr().String()
		quit := make(chan struct{})
		dialed := make(chan struct{})
		go func() {
			defer close(dialed)
			for {
				select {
				case <-quit:
					return
				default:
				}
				if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
					_ = c.Close()
				}
			}
		}()
		time.Sleep(time.Duration(i%5) * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		began := time.Now()
		_ = srv.Stop(ctx)
		cancel()
		close(quit)
		<-dialed
		if took := time.Since(began); took > 2*time.Second {
			t.Fatalf("round %d: Stop took %v", i, took)
		}
	}
}
