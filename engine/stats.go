package engine

import (
	"sync/atomic"
	"time"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/sessions"
)

// statStripes spreads the per-message counters over cache lines, so that
// event loops counting at a million messages a second do not all write the
// same line; a connection always counts in the stripe of its id.
const statStripes = 16

// hotStats are the counters bumped per packet or per write.
type hotStats struct {
	packetsIn atomic.Int64
	msgsIn    [3]atomic.Int64 // PUBLISH received, by QoS
	msgsOut   [3]atomic.Int64 // PUBLISH sent, by QoS
	// Topic and payload bytes of those PUBLISH packets, by QoS.
	pubBytesIn  [3]atomic.Int64
	pubBytesOut [3]atomic.Int64
	bytesIn     atomic.Int64 // every byte read and written
	bytesOut    atomic.Int64
	busy        atomic.Int64 // nanoseconds spent in connection callbacks
}

// Stats are the server's counters.
type Stats struct {
	// hot is allocated on its own: 2 KiB is a size class of its own, so
	// the array starts on a cache line and no two stripes share one.
	hot                                     *[statStripes]hotStats
	acceptErrors, refusedConns              atomic.Int64
	droppedSlow, droppedQueue, droppedLarge atomic.Int64 // QoS 0 deliveries dropped, by why
	refused, expired                        atomic.Int64
	storeRefused, retainRefused             atomic.Int64
	heldBack                                atomic.Int64
	limited                                 atomic.Int64
	tlsHandshakeFailures                    atomic.Int64
	aclDenied                               atomic.Int64
	pausedQoS0                              atomic.Int64
	// clients counts connections past CONNECT, by listener and protocol
	// (3.1, 3.1.1, 5.0).
	clients [listenerKinds][3]atomic.Int64
}

func (s *Server) hot(c *conn) *hotStats { return &s.stats.hot[c.id%statStripes] }

// protocolIndex maps a protocol level to its slot in Stats.clients.
func protocolIndex(level byte) int {
	switch level {
	case codec.Version31:
		return 0
	case codec.Version311:
		return 1
	}
	return 2
}

// countClient counts c as a client once its CONNECT is accepted (delta 1)
// and uncounts it when it closes (delta -1).
func (s *Server) countClient(c *conn, delta int64) {
	s.stats.clients[c.listener][protocolIndex(c.version)].Add(delta)
}

// ListenerNames are the names of the listeners, as Snapshot.Listeners lists
// them and the metrics label them.
var ListenerNames = [listenerKinds]string{listenTCP: "tcp", listenTLS: "tls", listenWS: "ws", listenWSS: "wss"}

// ProtocolNames name the protocol levels of ListenerStats.Clients.
var ProtocolNames = [3]string{"3.1", "3.1.1", "5.0"}

// ListenerStats are one listener's connections.
type ListenerStats struct {
	Name    string
	Sockets int64    // open connections, whether or not past CONNECT
	Clients [3]int64 // connections past CONNECT, by protocol (ProtocolNames)
}

// Snapshot is a point-in-time view of the server's state and counters.
type Snapshot struct {
	Connections   int64
	Sessions      int
	Subscriptions int
	Retained      int
	RetainedBytes int64
	// Online counts connections past CONNECT; Sessions-Online sessions
	// are offline (briefly off by the ones being taken over).
	Online    int64
	Listeners [listenerKinds]ListenerStats

	Received    int64    // packets received
	Sent        int64    // PUBLISH packets sent
	MessagesIn  [3]int64 // PUBLISH received, by QoS
	MessagesOut [3]int64 // PUBLISH sent, by QoS
	// PublishBytesIn and PublishBytesOut are the topic and payload bytes
	// of those, by QoS.
	PublishBytesIn  [3]int64
	PublishBytesOut [3]int64
	BytesIn         int64 // bytes read from clients
	BytesOut        int64 // bytes written to clients

	// DroppedQoS0 is the sum of the three below.
	DroppedQoS0 int64
	// DroppedSlow: QoS 0 deliveries to a subscriber that stalled over the
	// outbound bound; DroppedQueueFull: QoS 0 deliveries its full session
	// queue had no room for, or dropped from it for a newer message; DroppedTooLarge: deliveries over the client's
	// Maximum Packet Size (MQTT-3.1.2-25).
	DroppedSlow, DroppedQueueFull, DroppedTooLarge int64
	Refused                                        int64 // QoS 1/2 deliveries refused by a full session queue
	Expired                                        int64 // messages that expired before delivery
	AcceptErrors                                   int64
	RefusedConns                                   int64 // connections closed at accept for MaxConnections
	// RetainRefused counts retained messages not kept: the retained store
	// was full or unreadable.
	RetainRefused int64
	// StoreRefused counts changes the store refused (disk full, failed, its
	// queue full).
	StoreRefused int64
	// HeldBack counts QoS 1/2 PUBLISH packets whose acknowledgement waited
	// for a subscriber's full queue to drain.
	HeldBack int64
	// Limited counts what the limits refused: connections per address,
	// publishes over the rate, subscriptions over the count, topics too long.
	Limited int64
	// TLSHandshakeFailures counts TLS connections closed before MQTT.
	TLSHandshakeFailures int64
	// ACLDenied counts publications, deliveries and subscriptions the
	// client's Rules did not allow.
	ACLDenied int64
	// PausedQoS0 counts reads after which a QoS 0 publisher stopped reading
	// until the subscribers it went over the outbound bound of drained.
	PausedQoS0 int64

	// Busy is the time the event loops (and the TLS and WebSocket
	// connections' goroutines) spent handling connections, summed over
	// them; its rate over EventLoops is their utilisation.
	Busy       time.Duration
	EventLoops int
	Started    time.Time // zero before Start
}

// Snapshot returns the current state and counters. It reads atomics only:
// cheap enough to call on every scrape.
func (s *Server) Snapshot() Snapshot {
	st := &s.stats
	snap := Snapshot{
		Connections:          s.nconns.Load(),
		Sessions:             s.sessions.Len(),
		Subscriptions:        s.router.Count(),
		DroppedSlow:          st.droppedSlow.Load(),
		DroppedQueueFull:     st.droppedQueue.Load() + s.sessions.EvictedQoS0(),
		DroppedTooLarge:      st.droppedLarge.Load(),
		Refused:              st.refused.Load(),
		Expired:              st.expired.Load(),
		AcceptErrors:         st.acceptErrors.Load(),
		RefusedConns:         st.refusedConns.Load(),
		RetainRefused:        st.retainRefused.Load(),
		StoreRefused:         st.storeRefused.Load(),
		HeldBack:             st.heldBack.Load(),
		Limited:              st.limited.Load(),
		TLSHandshakeFailures: st.tlsHandshakeFailures.Load(),
		ACLDenied:            st.aclDenied.Load(),
		PausedQoS0:           st.pausedQoS0.Load(),
		EventLoops:           s.opts.EventLoops,
		Started:              s.startedAt(),
	}
	// With a store, recovery in Start sets s.retained: read it only once
	// started is seen set (which orders the read after that write).
	if s.started.Load() != 0 || s.store == nil {
		snap.Retained, snap.RetainedBytes = s.retained.Len(), s.retained.Bytes()
	}
	snap.DroppedQoS0 = snap.DroppedSlow + snap.DroppedQueueFull + snap.DroppedTooLarge
	for i := range st.hot {
		h := &st.hot[i]
		snap.Received += h.packetsIn.Load()
		for q := range 3 {
			snap.MessagesIn[q] += h.msgsIn[q].Load()
			snap.MessagesOut[q] += h.msgsOut[q].Load()
			snap.PublishBytesIn[q] += h.pubBytesIn[q].Load()
			snap.PublishBytesOut[q] += h.pubBytesOut[q].Load()
		}
		snap.BytesIn += h.bytesIn.Load()
		snap.BytesOut += h.bytesOut.Load()
		snap.Busy += time.Duration(h.busy.Load())
	}
	snap.Sent = snap.MessagesOut[0] + snap.MessagesOut[1] + snap.MessagesOut[2]
	for l := range listenerKinds {
		ls := ListenerStats{Name: ListenerNames[l], Sockets: s.perListener[l].Load()}
		for p := range 3 {
			ls.Clients[p] = st.clients[l][p].Load()
			snap.Online += ls.Clients[p]
		}
		snap.Listeners[l] = ls
	}
	return snap
}

// QueueTotals are the messages sessions hold, summed over every session.
type QueueTotals struct {
	Queued      int64 // waiting in session queues (offline, or over the in-flight window)
	QueuedBytes int64
	Inflight    int64 // QoS 1/2 deliveries sent and not yet acknowledged
	InboundQoS2 int64 // QoS 2 messages received whose PUBREL has not come
}

// QueueTotals walks every session, taking each one's lock in turn: about a
// millisecond per 30,000 sessions, so call it per scrape, not per message.
func (s *Server) QueueTotals() QueueTotals {
	var t QueueTotals
	s.sessions.Range(func(sess *sessions.Session) bool {
		sess.Lock()
		n, b := sess.Queued()
		t.Queued += int64(n)
		t.QueuedBytes += int64(b)
		t.Inflight += int64(sess.InflightLen())
		t.InboundQoS2 += int64(sess.InboundQoS2Len())
		sess.Unlock()
		return true
	})
	return t
}

func (s *Server) startedAt() time.Time {
	if n := s.started.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}
