package engine_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
	"github.com/tern-mqtt/tern/wal"
)

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSnapshotCountsTrafficByQoSAndProtocol(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{SysInterval: -1})
	addr := srv.Addr().String()
	sub := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "sub", CleanStart: true})
	pub := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "pub", CleanStart: true})
	old := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("old").SetProtocolVersion(4))
	if tok := old.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect 3.1.1: %v", tok.Error())
	}
	defer old.Disconnect(100)
	_, err := sub.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "m/#", QoS: 2}}})
	testutil.Require(t, err, "subscribe")

	before := srv.Snapshot()
	payload := make([]byte, 1000)
	for qos := byte(0); qos <= 2; qos++ {
		for range 3 {
			_, err := pub.Publish(testutil.Ctx(t), &paho.Publish{Topic: "m/x", QoS: qos, Payload: payload})
			testutil.Require(t, err, "publish")
			sub.Recv(t)
		}
	}
	waitFor(t, "QoS 2 counted out", func() bool { return srv.Snapshot().MessagesOut[2]-before.MessagesOut[2] == 3 })
	s := srv.Snapshot()
	for q := range 3 {
		testutil.Equal(t, s.MessagesIn[q]-before.MessagesIn[q], int64(3), "messages in at QoS")
		testutil.Equal(t, s.MessagesOut[q]-before.MessagesOut[q], int64(3), "messages out at QoS")
		testutil.Equal(t, s.PublishBytesIn[q]-before.PublishBytesIn[q], int64(3*(3+1000)), "publish bytes in at QoS")
		testutil.Equal(t, s.PublishBytesOut[q]-before.PublishBytesOut[q], int64(3*(3+1000)), "publish bytes out at QoS")
	}
	if in := s.BytesIn - before.BytesIn; in < 9*1000 {
		t.Errorf("bytes in grew by %d, want at least 9000", in)
	}
	if out := s.BytesOut - before.BytesOut; out < 9*1000 {
		t.Errorf("bytes out grew by %d, want at least 9000", out)
	}
	if s.Busy <= before.Busy {
		t.Errorf("busy time did not grow: %v then %v", before.Busy, s.Busy)
	}
	tcp := s.Listeners[0]
	testutil.Equal(t, tcp.Name, "tcp", "listener name")
	testutil.Equal(t, tcp.Clients[2], int64(2), "5.0 clients")
	testutil.Equal(t, tcp.Clients[1], int64(1), "3.1.1 clients")
	testutil.Equal(t, s.Online, int64(3), "online")

	old.Disconnect(100)
	waitFor(t, "3.1.1 client uncounted", func() bool { return srv.Snapshot().Listeners[0].Clients[1] == 0 })
}

func TestInspectSessions(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{SysInterval: -1})
	addr := srv.Addr().String()
	a := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "dev-a", CleanStart: true,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(300)}})
	_, err := a.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: "t/+", QoS: 1, NoLocal: true}, {Topic: "$share/g/jobs/#", QoS: 2}}})
	testutil.Require(t, err, "subscribe")
	for _, id := range []string{"dev-b", "dev-c", "other"} {
		testutil.ConnectV5(t, addr, &paho.Connect{ClientID: id, CleanStart: true})
	}
	// An offline session: dev-z subscribed, then went away with an expiry.
	z := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "dev-z", CleanStart: true,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(600)}})
	_, err = z.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "t/1", QoS: 1}}})
	testutil.Require(t, err, "subscribe")
	testutil.Require(t, z.Disconnect(&paho.Disconnect{}), "disconnect")
	waitFor(t, "dev-z offline", func() bool {
		info, _, err := srv.Session("dev-z")
		return err == nil && !info.Online
	})
	// A message for the offline session queues.
	_, err = a.Publish(testutil.Ctx(t), &paho.Publish{Topic: "t/1", QoS: 1, Payload: []byte("q")})
	testutil.Require(t, err, "publish")

	ids := func(list []engine.SessionInfo) (out []string) {
		for _, s := range list {
			out = append(out, s.ClientID)
		}
		return out
	}
	page, more := srv.Sessions(engine.SessionQuery{Prefix: "dev-", Limit: 2})
	testutil.Equal(t, len(page), 2, "page size")
	testutil.Equal(t, more, true, "more")
	testutil.Equal(t, ids(page)[0]+","+ids(page)[1], "dev-a,dev-b", "first page")
	page, more = srv.Sessions(engine.SessionQuery{Prefix: "dev-", After: "dev-b", Limit: 2})
	testutil.Equal(t, len(page), 2, "second page size")
	testutil.Equal(t, more, false, "no more")
	testutil.Equal(t, ids(page)[0]+","+ids(page)[1], "dev-c,dev-z", "second page")
	off := false
	page, _ = srv.Sessions(engine.SessionQuery{Online: &off})
	testutil.Equal(t, len(page), 1, "offline sessions")
	testutil.Equal(t, page[0].ClientID, "dev-z", "offline session")
	testutil.Equal(t, page[0].Queued, 1, "queued for the offline session")
	testutil.Equal(t, page[0].ExpiryInterval, uint32(600), "expiry")

	info, subs, err := srv.Session("dev-a")
	testutil.Require(t, err, "session")
	testutil.Equal(t, info.Online, true, "online")
	testutil.Equal(t, info.Protocol, byte(5), "protocol")
	testutil.Equal(t, info.Listener, "tcp", "listener")
	testutil.Equal(t, info.Subscriptions, 2, "subscription count")
	if info.Remote == "" || info.ConnectedSince.IsZero() || time.Since(info.ConnectedSince) > time.Minute {
		t.Errorf("remote %q, connected since %v", info.Remote, info.ConnectedSince)
	}
	testutil.Equal(t, len(subs), 2, "subscriptions")
	testutil.Equal(t, subs[0].Filter, "$share/g/jobs/#", "shared filter first")
	testutil.Equal(t, subs[1].Filter, "t/+", "filter")
	testutil.Equal(t, subs[1].NoLocal, true, "no local")
	_, _, err = srv.Session("nobody")
	testutil.Equal(t, errors.Is(err, engine.ErrNotFound), true, "unknown session")

	// Subscriptions by exact filter and by matching topic.
	got, _ := srv.Subscriptions(engine.SubscriptionQuery{Topic: "t/1"})
	testutil.Equal(t, len(got), 2, "subscriptions matching t/1")
	testutil.Equal(t, got[0].ClientID+" "+got[0].Filter, "dev-a t/+", "first match")
	testutil.Equal(t, got[1].ClientID+" "+got[1].Filter, "dev-z t/1", "second match")
	got, _ = srv.Subscriptions(engine.SubscriptionQuery{Filter: "t/1"})
	testutil.Equal(t, len(got), 1, "subscriptions of filter t/1")
	got, more = srv.Subscriptions(engine.SubscriptionQuery{Limit: 1})
	testutil.Equal(t, more, true, "subscription pages")
	got, _ = srv.Subscriptions(engine.SubscriptionQuery{After: got[0].Cursor()})
	testutil.Equal(t, len(got), 2, "rest of the subscriptions")
}

func TestDisconnectAndDeleteSession(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{SysInterval: -1})
	addr := srv.Addr().String()
	watcher := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "watcher", CleanStart: true})
	_, err := watcher.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "will/#"}}})
	testutil.Require(t, err, "subscribe")
	victim := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "victim", CleanStart: true,
		WillMessage:    &paho.WillMessage{Topic: "will/victim", Payload: []byte("gone")},
		Properties:     &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(3600)},
		WillProperties: &paho.WillProperties{}})

	testutil.Require(t, srv.Disconnect("victim"), "disconnect")
	select {
	case d := <-victim.Disconnects:
		testutil.Equal(t, d.ReasonCode, byte(codec.AdministrativeAction), "DISCONNECT reason")
	case <-time.After(5 * time.Second):
		t.Fatal("no DISCONNECT 0x98")
	}
	// Closed by the server, not by a DISCONNECT of its own: the will goes (MQTT-3.1.2-8).
	testutil.Equal(t, string(watcher.Recv(t).Payload), "gone", "will")
	info, _, err := srv.Session("victim")
	testutil.Require(t, err, "session kept")
	testutil.Equal(t, info.Online, false, "offline after disconnect")
	testutil.Equal(t, errors.Is(srv.Disconnect("victim"), engine.ErrNotFound), true, "disconnect offline")

	// Delete a connected one: kicked, then gone.
	testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "online", CleanStart: true,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(3600)}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	testutil.Require(t, srv.DeleteSession(ctx, "online"), "delete online")
	_, _, err = srv.Session("online")
	testutil.Equal(t, errors.Is(err, engine.ErrNotFound), true, "deleted")
	testutil.Require(t, srv.DeleteSession(ctx, "victim"), "delete offline")
	testutil.Equal(t, errors.Is(srv.DeleteSession(ctx, "victim"), engine.ErrNotFound), true, "delete twice")
	testutil.Equal(t, srv.Snapshot().Sessions, 1, "sessions left")
}

func TestInspectRetained(t *testing.T) {
	for _, durable := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "store"}[durable], func(t *testing.T) {
			o := engine.Options{SysInterval: -1}
			if durable {
				st, err := wal.Open(wal.Options{Dir: t.TempDir(), MinFreeBytes: -1, Logger: slog.New(slog.DiscardHandler)})
				testutil.Require(t, err, "open store")
				t.Cleanup(func() { _ = st.Close() })
				o.Store = st
			}
			srv := testutil.StartBroker(t, o)
			addr := srv.Addr().String()
			pub := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "pub", CleanStart: true})
			for _, topic := range []string{"r/c", "r/a", "r/b", "x/y"} {
				_, err := pub.Publish(testutil.Ctx(t), &paho.Publish{Topic: topic, QoS: 1, Retain: true, Payload: []byte("v-" + topic)})
				testutil.Require(t, err, "publish")
			}
			page, more, err := srv.Retained(engine.RetainedQuery{Filter: "r/#", Limit: 2})
			testutil.Require(t, err, "list")
			testutil.Equal(t, len(page), 2, "page")
			testutil.Equal(t, more, true, "more")
			testutil.Equal(t, page[0].Topic+page[1].Topic, "r/ar/b", "sorted")
			testutil.Equal(t, page[0].PayloadSize, 5, "payload size")
			page, _, err = srv.Retained(engine.RetainedQuery{After: "r/b"})
			testutil.Require(t, err, "list")
			testutil.Equal(t, len(page), 2, "after r/b")
			_, _, err = srv.Retained(engine.RetainedQuery{Filter: "a/#/b"})
			if err == nil {
				t.Error("a bad filter was accepted")
			}

			m, err := srv.RetainedMessage("r/a")
			testutil.Require(t, err, "get")
			testutil.Equal(t, string(m.Payload), "v-r/a", "payload")
			testutil.Equal(t, m.QoS, byte(1), "qos")

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			testutil.Require(t, srv.DeleteRetained(ctx, "r/a"), "delete")
			_, err = srv.RetainedMessage("r/a")
			testutil.Equal(t, errors.Is(err, engine.ErrNotFound), true, "deleted")
			testutil.Equal(t, errors.Is(srv.DeleteRetained(ctx, "r/a"), engine.ErrNotFound), true, "delete twice")
			testutil.Equal(t, srv.Snapshot().Retained, 3, "retained count")
			// A new subscriber no longer gets it (MQTT-3.3.1-10: a cleared topic).
			sub := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "sub", CleanStart: true})
			_, err = sub.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "r/a"}}})
			testutil.Require(t, err, "subscribe")
			sub.NoMsg(t, 200*time.Millisecond)
		})
	}
}

func TestReady(t *testing.T) {
	srv := engine.New(engine.Options{Listen: "127.0.0.1:0", SysInterval: -1})
	if srv.Ready() == nil {
		t.Fatal("ready before Start")
	}
	testutil.Require(t, srv.Start(), "start")
	testutil.Require(t, srv.Ready(), "ready")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	testutil.Require(t, srv.Stop(ctx), "stop")
	if srv.Ready() == nil {
		t.Fatal("ready after Stop")
	}
}
