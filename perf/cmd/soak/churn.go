package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tern-mqtt/tern/codec"
)

const (
	// churnSessionExpiry is the Session Expiry Interval of persistent 5.0
	// churn sessions: short, so that some expire between two uses of the id
	// and the broker's expiry runs all along.
	churnSessionExpiry = 30
	// churnMessages is how many messages a churn cycle publishes to itself.
	churnMessages = 4
)

// churn is the connect/disconnect load: workers that each repeatedly
// connect (3.1.1 or 5.0, clean or persistent session, some with a will),
// subscribe to their own topic at QoS 2 and to a group of the many topics,
// publish a few messages to themselves at QoS 0, 1 and 2 and wait for them
// to come back complete, unsubscribe the group (a persistent session, so
// that offline sessions hold no traffic), and leave: DISCONNECT, or an
// abrupt close that fires the will. Worker w uses the client ids w, w+W,
// w+2W, … below ids, so that two workers never take each other's session
// over and the broker holds at most ids sessions.
type churn struct {
	d       *dialer
	workers int
	ids     int
	groups  int // groups of 100 topics, for the group subscription
	errs    *errorLog
	ct      *counters

	cycles, failed, abrupt atomic.Int64
	willsDue, willsGot     atomic.Int64
	dup2                   atomic.Int64 // own QoS 2 messages delivered twice

	watcher   *wire // subscribed to every churn will
	watchDone chan struct{}
}

// run runs the workers at rate cycles per second in all until load is done;
// a cycle under way finishes.
func (c *churn) run(load context.Context, rate float64, seed uint64) {
	var wg sync.WaitGroup
	for w := range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.worker(load, w, rate/float64(c.workers), rand.New(rand.NewPCG(seed, uint64(w))))
		}()
	}
	wg.Wait()
}

func (c *churn) worker(load context.Context, w int, rate float64, rng *rand.Rand) {
	interval := time.Duration(float64(time.Second) / rate)
	// Ids whose last cycle failed start clean next: the broker may still
	// hold that cycle's QoS 2 packet ids awaiting PUBREL, and would take
	// the next cycle's PUBLISH under the same id for a resend.
	dirty := map[int]bool{}
	next := time.Now()
	for n := 0; ; n++ {
		next = next.Add(interval)
		if d := time.Until(next); d > 0 {
			if !sleepCtx(load, d) {
				return
			}
		} else if d < -time.Second { // far behind: do not burst
			next = time.Now()
		}
		if load.Err() != nil {
			return
		}
		k := w + c.workers*rng.IntN(max(1, c.ids/c.workers))
		if err := c.cycle(w, n, k, dirty[k], rng); err != nil {
			dirty[k] = true
			c.failed.Add(1)
			c.errs.add("churn", err)
			continue
		}
		delete(dirty, k)
		c.cycles.Add(1)
		c.ct.churnCycles.Add(1)
	}
}

// cycle is one connection of client id k.
func (c *churn) cycle(worker, n, k int, forceClean bool, rng *rand.Rand) error {
	id := fmt.Sprintf("soak-c%d", k)
	s := session{clientID: id, version: codec.Version311, clean: forceClean || rng.IntN(2) == 0}
	if rng.IntN(2) == 0 {
		s.version = codec.Version5
		if !s.clean {
			s.expiry = churnSessionExpiry
		}
	}
	will := rng.IntN(4) == 0
	if will {
		s.willTopic = "soak/will/" + id
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	w, _, err := c.d.connect(ctx, s)
	if err != nil {
		return err
	}
	defer w.close()
	_ = w.c.SetDeadline(time.Now().Add(ioTimeout))
	st := &cycleState{w: w, own: "soak/c/" + id, nonce: uint64(worker)<<32 | uint64(uint32(n)),
		got: make([]bool, churnMessages), pending2: map[uint16]bool{}, out: map[uint16]bool{}}
	group := fmt.Sprintf("soak/t/%d/+", rng.IntN(c.groups))
	subs := []codec.Subscription{{Filter: []byte(st.own), QoS: 2}, {Filter: []byte(group)}}
	if err := w.subscribe(1, subs, st.handle); err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	var out []byte
	for i := range churnMessages {
		pub := codec.Publish{QoS: byte(rng.IntN(3)), Topic: []byte(st.own), Payload: newPayload(uint32(i), st.nonce)}
		if pub.QoS > 0 {
			pub.PacketID = uint16(3 + i) // 1 and 2 are the SUBSCRIBE's and UNSUBSCRIBE's
			st.out[pub.PacketID] = true
		}
		if out, err = pub.Append(out, s.version); err != nil {
			return err
		}
	}
	if _, err := w.c.Write(out); err != nil {
		return fmt.Errorf("%s: publish: %w", id, err)
	}
	var p codec.Packet
	for st.n < churnMessages || len(st.out) > 0 {
		if err := w.next(&p); err != nil {
			return fmt.Errorf("%s: %d of %d messages back, %d unacknowledged: %w", id, st.n, churnMessages, len(st.out), err)
		}
		if err := st.handle(&p); err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
	}
	c.dup2.Add(st.dup2)
	if !s.clean {
		if err := w.unsubscribe(2, group, st.handle); err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
	}
	if rng.IntN(3) == 0 {
		c.abrupt.Add(1)
		if will {
			c.willsDue.Add(1)
		}
		return nil // the deferred close, with no DISCONNECT
	}
	w.disconnect()
	w.discard()
	return nil
}

// cycleState is what one churn connection tracks: its own messages coming
// back and its QoS 1 and 2 flows in both directions.
type cycleState struct {
	w        *wire
	own      string
	nonce    uint64
	got      []bool
	n        int             // own messages back
	pending2 map[uint16]bool // QoS 2 received, awaiting PUBREL
	out      map[uint16]bool // sent QoS 1 and 2 not yet complete
	dup2     int64           // own QoS 2 messages delivered twice
}

func (st *cycleState) handle(p *codec.Packet) error {
	var ack codec.PacketType
	var id uint16
	switch p.Type {
	case codec.PUBLISH:
		id = p.Publish.PacketID
		resend := p.Publish.QoS == 2 && st.pending2[id]
		switch p.Publish.QoS {
		case 1:
			ack = codec.PUBACK
		case 2:
			st.pending2[id] = true
			ack = codec.PUBREC
		}
		// Messages of an earlier cycle of a persistent session, redelivered
		// because it closed before its PUBACK got through, carry another
		// nonce and are only acknowledged.
		idx, nonce, ok := readTag(p.Publish.Payload)
		if resend || !ok || string(p.Publish.Topic) != st.own || nonce != st.nonce || int(idx) >= len(st.got) {
			break
		}
		if st.got[idx] {
			if p.Publish.QoS == 2 {
				st.dup2++
			}
			break
		}
		st.got[idx] = true
		st.n++
	case codec.PUBREL:
		id = p.Ack.PacketID
		delete(st.pending2, id)
		ack = codec.PUBCOMP
	case codec.PUBACK, codec.PUBCOMP:
		if p.Ack.ReasonCode >= 0x80 {
			return fmt.Errorf("%v %d refused: %v", p.Type, p.Ack.PacketID, p.Ack.ReasonCode)
		}
		delete(st.out, p.Ack.PacketID)
	case codec.PUBREC:
		if p.Ack.ReasonCode >= 0x80 {
			return fmt.Errorf("PUBREC %d refused: %v", p.Ack.PacketID, p.Ack.ReasonCode)
		}
		id = p.Ack.PacketID
		ack = codec.PUBREL
	case codec.DISCONNECT:
		return fmt.Errorf("broker sent DISCONNECT %v", p.Disconnect.ReasonCode)
	}
	if ack != 0 {
		return st.w.ack(ack, id)
	}
	return nil
}

// watchWills subscribes one connection to every churn will, to count them.
func (c *churn) watchWills(ctx context.Context) error {
	w, _, err := c.d.connect(ctx, session{clientID: "soak-wills", version: codec.Version311, clean: true})
	if err != nil {
		return fmt.Errorf("will watcher: %w", err)
	}
	if err := w.subscribe(1, []codec.Subscription{{Filter: []byte("soak/will/#")}}, func(*codec.Packet) error { return nil }); err != nil {
		w.close()
		return fmt.Errorf("will watcher: %w", err)
	}
	c.watcher, c.watchDone = w, make(chan struct{})
	go func() {
		defer close(c.watchDone)
		var p codec.Packet
		for w.next(&p) == nil {
			if p.Type == codec.PUBLISH {
				c.willsGot.Add(1)
			}
		}
	}()
	return nil
}

func (c *churn) stop() {
	if c.watcher != nil {
		c.watcher.close()
		<-c.watchDone
	}
}

// churnResult counts the churn. Wills are QoS 0 and may be dropped, so a
// shortfall is reported, not failed.
type churnResult struct {
	Cycles   int64 `json:"cycles"`
	Failed   int64 `json:"failed"`
	Abrupt   int64 `json:"abrupt_closes"`
	WillsDue int64 `json:"wills_due"`
	WillsGot int64 `json:"wills_received"`
	// QoS2Duplicates counts a cycle's own QoS 2 messages delivered twice.
	QoS2Duplicates int64 `json:"qos2_duplicates"`
}

func (c *churn) result() churnResult {
	return churnResult{Cycles: c.cycles.Load(), Failed: c.failed.Load(), Abrupt: c.abrupt.Load(),
		WillsDue: c.willsDue.Load(), WillsGot: c.willsGot.Load(), QoS2Duplicates: c.dup2.Load()}
}
