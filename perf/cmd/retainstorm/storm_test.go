package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/internal/testutil"
	"github.com/tern-mqtt/tern/perf/peers"
)

// TestMeasure builds Tern, and runs small storms against a fresh broker
// process each: the whole storm must arrive once, retained.
func TestMeasure(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the broker")
	}
	dir := t.TempDir()
	prepared := map[string]*peers.Peer{} // each variant linked once
	f := func(name string, n int, qos, subQoS byte) {
		t.Helper()
		p, ok := prepared[name]
		if !ok {
			var err error
			p, err = peers.Prepare(context.Background(), name, dir)
			if name != "tern" && errors.Is(err, peers.ErrMissing) {
				t.Logf("%s: %v", name, err)
				return
			}
			testutil.Require(t, err, name)
			prepared[name] = p
		}
		b, err := p.Start()
		testutil.Require(t, err, name+": start")
		defer func() { testutil.Require(t, b.Stop(), name+": stop") }()
		o := options{Addr: b.Addr, BrokerPID: b.PID, Retained: n, Payload: 64, QoS: qos, SubQoS: subQoS,
			Sources: 3, Timeout: 5 * time.Second, Stall: 2 * time.Second, ClientID: "test"}
		res, err := measure(context.Background(), o)
		testutil.Require(t, err, name+": measure")
		testutil.Equal(t, res.End, "complete", name+": delivery end")
		testutil.Equal(t, res.Received, int64(n), name+": received")
		testutil.Equal(t, res.Lost, int64(0), name+": lost")
		testutil.Equal(t, res.Duplicates, int64(0), name+": duplicates")
		testutil.Equal(t, res.NotRetained, int64(0), name+": without RETAIN") // MQTT-3.3.1-8
		testutil.Equal(t, res.Unexpected, int64(0), name+": on unexpected topics")
		if res.Rate <= 0 || res.DeliverySecs <= 0 || res.PublishSecs <= 0 || res.RSS <= 0 || res.RSSAfter <= 0 {
			t.Fatalf("%s: implausible result %+v", name, res)
		}
	}
	f("tern", 2000, 1, 0)
	f("tern", 2000, 0, 0)
	// Tern holds 1,024 QoS 1 messages in flight and queues 1,000 more by
	// default; beyond that it refuses them (lost), so the QoS 1 storm stays
	// below.
	f("tern", 1500, 1, 1)
	f("tern-sync", 2000, 1, 0)
}

func TestTopicIndex(t *testing.T) {
	f := func(topic string, want int) {
		t.Helper()
		testutil.Equal(t, topicIndex([]byte(topic)), want, topic)
	}
	for _, i := range []int{0, 7, 999, 1000, 1001, 99999, 123456789} {
		f(string(appendTopic(nil, i)), i)
	}
	f("storm/0/1000", -1)
	f("storm/01/2", -1)
	f("storm/1/02", -1)
	f("storm/1", -1)
	f("storm/1/2/3", -1)
	f("storm//2", -1)
	f("storm/-1/2", -1)
	f("other/1/2", -1)
	f("$SYS/broker/uptime", -1)
}
