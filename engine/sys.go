package engine

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	"github.com/tern-mqtt/tern/message"
	"github.com/tern-mqtt/tern/retain"
)

// The $SYS/broker/... topics, named as Mosquitto names them so that the
// dashboards and scripts people have keep working. They are published every
// Options.SysInterval as retained QoS 0 messages that live in memory only
// (a separate retained index, never in the data directory: they describe
// the running process). "#" and "+/..." do not match them (MQTT-4.7.2-1);
// a client must subscribe to "$SYS/#". Clients may not publish under $SYS/.

const sysPrefix = "$SYS/"

// isSysTopic reports whether a topic is one of the broker's own: in the
// "$SYS" level, that level itself included (a filter "$SYS/#" matches it and
// reads only the broker's retained values).
func isSysTopic[T string | []byte](topic T) bool {
	return len(topic) >= 4 && string(topic[:4]) == "$SYS" && (len(topic) == 4 || topic[4] == '/')
}

// retainedFor returns the index holding the retained message of topic.
func (s *Server) retainedFor(topic []byte) *retain.Index {
	if isSysTopic(topic) {
		return s.sys
	}
	return s.retained
}

// sysLoop publishes the $SYS topics now and every SysInterval until Stop.
func (s *Server) sysLoop() {
	defer s.wg.Done()
	last := make(map[string][]byte)
	s.publishSys(last)
	t := time.NewTicker(s.opts.SysInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.publishSys(last)
		}
	}
}

// sysValues returns the $SYS topics and their values now.
func (s *Server) sysValues() [][2]string {
	snap := s.Snapshot()
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	uptime := int64(0)
	if !snap.Started.IsZero() {
		uptime = int64(time.Since(snap.Started) / time.Second)
	}
	return [][2]string{
		{"$SYS/broker/version", s.opts.BrokerVersion},
		{"$SYS/broker/uptime", n(uptime) + " seconds"},
		{"$SYS/broker/clients/connected", n(snap.Online)},
		{"$SYS/broker/clients/disconnected", n(max(int64(snap.Sessions)-snap.Online, 0))},
		{"$SYS/broker/clients/total", n(int64(snap.Sessions))},
		{"$SYS/broker/connections/sockets", n(snap.Connections)},
		{"$SYS/broker/messages/received", n(snap.Received)},
		{"$SYS/broker/messages/sent", n(snap.Sent)},
		{"$SYS/broker/publish/messages/received", n(snap.MessagesIn[0] + snap.MessagesIn[1] + snap.MessagesIn[2])},
		{"$SYS/broker/publish/messages/sent", n(snap.Sent)},
		{"$SYS/broker/publish/messages/dropped", n(snap.DroppedQoS0 + snap.Refused + snap.Expired)},
		{"$SYS/broker/bytes/received", n(snap.BytesIn)},
		{"$SYS/broker/bytes/sent", n(snap.BytesOut)},
		{"$SYS/broker/subscriptions/count", n(int64(snap.Subscriptions))},
		{"$SYS/broker/retained messages/count", n(int64(snap.Retained))},
	}
}

// publishSys publishes each $SYS value that changed since last time (the
// uptime always changes), as Mosquitto does.
func (s *Server) publishSys(last map[string][]byte) {
	now := time.Now()
	for _, kv := range s.sysValues() {
		topic, value := kv[0], []byte(kv[1])
		if old, ok := last[topic]; ok && bytes.Equal(old, value) {
			continue
		}
		last[topic] = value
		m := message.New([]byte(topic), value, nil, 0, true, 0, now)
		if _, err := s.sys.Set(m, nil); err != nil {
			s.log.Warn("cannot keep a $SYS value", "topic", topic, "err", err)
		}
		s.routeOnline(m, now.UnixNano())
		m.Release()
	}
}

// routeOnline routes a $SYS value to the sessions that are connected only:
// an offline session would queue every round and get a burst of stale
// values on reconnecting (the retained value is what it wants then).
func (s *Server) routeOnline(m *message.Message, now int64) {
	res := s.router.Match(m.Topic)
	online := *res // the result is the router's cached one: not to be changed
	online.Subs = nil
	for _, sub := range res.Subs {
		sub.Key.Lock()
		on := sub.Key.Owner() != nil
		sub.Key.Unlock()
		if on {
			online.Subs = append(online.Subs, sub)
		}
	}
	s.routeMatched(m, &online, now, nil, nil, nil)
}

// sysFilter reports whether filter can match a $SYS topic: only a filter
// whose first level is literally "$SYS" can (MQTT-4.7.2-1).
func sysFilter(filter string) bool {
	return filter == "$SYS" || strings.HasPrefix(filter, sysPrefix)
}
