package wal

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// populate writes a store with every kind of record through the committer
// and returns the state Load should give back, by client id.
func populate(t *testing.T, s *Store) map[string]*SessionState {
	t.Helper()
	want := make(map[string]*SessionState)
	session := func(cid string, rec Session) *SessionState {
		b := NewBatch(KindConnect, []byte(cid))
		b.SessionPut([]byte(cid), &rec)
		mustSubmit(t, s, b)
		ss := &SessionState{ClientID: cid, Session: rec}
		want[cid] = ss
		return ss
	}
	sub := func(ss *SessionState, filter string, o Subscription) {
		b := NewBatch(KindSubscribe, []byte(ss.ClientID))
		b.SetTopic([]byte(filter), o.QoS, 0)
		b.SubPut([]byte(ss.ClientID), []byte(filter), &o)
		mustSubmit(t, s, b)
		ss.Subs = append(ss.Subs, SubState{Filter: filter, Sub: o})
	}
	alice := session("alice", Session{Expiry: 3600, Version: 5, ConnectedAt: 1e18, DisconnectedAt: 2e18})
	bob := session("bob", Session{Expiry: 0xFFFFFFFF, Version: 4, ConnectedAt: 3})
	odd := session("a\x00b", Session{Expiry: 1, Version: 5})
	sub(alice, "a/#", Subscription{QoS: 1, SubID: 5})
	sub(alice, "b/+", Subscription{QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 1})
	sub(bob, "a/#", Subscription{QoS: 2})
	sub(odd, "\x00", Subscription{})

	// m1 is queued for alice and bob and stored once.
	publish := func(topic, payload string, entries map[*SessionState]QueueEntry) *Message {
		m := &Message{Topic: []byte(topic), Payload: []byte(payload), Props: []byte{0x02, 0, 0, 0, 60},
			QoS: 2, Retain: true, Created: 100, ExpireAt: 200, Origin: 9}
		id := s.NewMessageID()
		b := NewBatch(KindPublish, []byte("publisher"))
		b.SetTopic(m.Topic, m.QoS, len(payload))
		b.MessagePut(id, m)
		for _, ss := range []*SessionState{alice, bob, odd} { // a fixed order
			e, ok := entries[ss]
			if !ok {
				continue
			}
			e.MsgID = id
			seq := s.NewQueueSeq()
			b.QueuePut([]byte(ss.ClientID), seq, &e)
			ss.Queue = append(ss.Queue, QueuedMessage{Seq: seq, Entry: e, Msg: m})
		}
		mustSubmit(t, s, b)
		return m
	}
	publish("a/1", "one", map[*SessionState]QueueEntry{alice: {QoS: 1}, bob: {QoS: 2, SubIDs: []uint32{1, 2}}})
	publish("a/2", "two", map[*SessionState]QueueEntry{alice: {QoS: 2}})
	publish("a/3", "", map[*SessionState]QueueEntry{alice: {QoS: 2}})
	// Alice's second delivery goes out, her third gets its PUBREC.
	for i, st := range []QueueState{InFlight, PubrecReceived} {
		qm := &alice.Queue[i+1]
		qm.Entry.State, qm.Entry.PacketID = st, uint16(7+i)
		b := NewBatch(KindSend, []byte("alice"))
		b.QueueUpdate([]byte("alice"), qm.Seq, &qm.Entry)
		mustSubmit(t, s, b)
	}
	for _, id := range []uint16{9, 3} {
		b := NewBatch(KindPublish, []byte("alice"))
		b.InboundQoS2Put([]byte("alice"), id, 5)
		mustSubmit(t, s, b)
	}
	alice.InboundQoS2 = []uint16{3, 9}
	will := Will{Delay: 10, Msg: Message{Topic: []byte("gone/alice"), Payload: []byte("bye"), QoS: 1, Created: 4}}
	b := NewBatch(KindWill, []byte("alice"))
	b.WillPut([]byte("alice"), &will)
	mustSubmit(t, s, b)
	alice.Will = &will

	for _, topic := range []string{"r/1", "r/2", "r/3"} {
		b := NewBatch(KindRetain, nil)
		b.RetainedPut(&Message{Topic: []byte(topic), Payload: []byte("v" + topic), QoS: 1, Retain: true})
		mustSubmit(t, s, b)
	}
	b = NewBatch(KindRetainClear, nil)
	b.RetainedDelete([]byte("r/2"))
	mustSubmit(t, s, b)

	// carol comes and goes; an orphan body has no entry.
	carol := session("carol", Session{Expiry: 5})
	sub(carol, "x", Subscription{QoS: 1})
	publish("x", "for carol", map[*SessionState]QueueEntry{})
	b = NewBatch(KindSessionEnd, []byte("carol"))
	b.SessionDelete([]byte("carol"))
	mustSubmit(t, s, b)
	delete(want, "carol")
	return want
}

func checkState(t *testing.T, st *State, want map[string]*SessionState) {
	t.Helper()
	if len(st.Sessions) != len(want) {
		t.Fatalf("loaded %d sessions, want %d", len(st.Sessions), len(want))
	}
	var prev []byte
	for _, got := range st.Sessions {
		k := sessionKey(nil, []byte(got.ClientID))
		if bytes.Compare(prev, k) >= 0 {
			t.Fatalf("sessions not in key order at %q", got.ClientID)
		}
		prev = k
		w := want[got.ClientID]
		if w == nil {
			t.Fatalf("unexpected session %q", got.ClientID)
		}
		if len(got.Queue) != len(w.Queue) {
			t.Fatalf("%q: %d queued, want %d", got.ClientID, len(got.Queue), len(w.Queue))
		}
		for i := range got.Queue {
			g, e := got.Queue[i], w.Queue[i]
			if g.Seq != e.Seq || !reflect.DeepEqual(g.Entry, e.Entry) ||
				!reflect.DeepEqual(normalize(*g.Msg), normalize(*e.Msg)) {
				t.Fatalf("%q queue[%d]:\n got %+v %+v\nwant %+v %+v", got.ClientID, i, g, *g.Msg, e, *e.Msg)
			}
		}
		g, e := *got, *w
		g.Queue, e.Queue = nil, nil
		if g.Will != nil {
			wl := *g.Will
			wl.Msg = normalize(wl.Msg).(Message)
			g.Will = &wl
		}
		if !reflect.DeepEqual(g, e) {
			t.Fatalf("session %q:\n got %+v\nwant %+v", got.ClientID, g, e)
		}
	}
}

func TestLoadRoundTrip(t *testing.T) {
	mem := vfs.NewMem()
	s := openTest(t, mem, Options{})
	if st, err := s.Load(); err != nil || len(st.Sessions) != 0 || st.LastCommit != 0 {
		t.Fatalf("Load of a new store: %+v, %v", st, err)
	}
	want := populate(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, mem, Options{})
	defer s.Close()
	st, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	checkState(t, st, want)
	if st.Messages != 3 || st.Orphans != 0 || st.Retained != 2 || st.Dangling != 0 || st.LastCommit == 0 {
		t.Fatalf("state counts: %+v", st)
	}
	var alice, bob *SessionState
	for _, ss := range st.Sessions {
		switch ss.ClientID {
		case "alice":
			alice = ss
		case "bob":
			bob = ss
		}
	}
	if alice.Queue[0].Msg != bob.Queue[0].Msg {
		t.Fatal("a message queued for two sessions loaded as two copies")
	}
	// Ids committed before are never handed out again (4 bodies and 4
	// queue entries were written).
	if id, seq := s.NewMessageID(), s.NewQueueSeq(); id <= 4 || seq <= 4 {
		t.Fatalf("allocators after reopen: message %d, seq %d", id, seq)
	}

	// Reference counts were loaded: acknowledging both entries of m1
	// deletes its body.
	id := alice.Queue[0].Entry.MsgID
	for _, ss := range []*SessionState{alice, bob} {
		b := NewBatch(KindPuback, []byte(ss.ClientID))
		b.QueueDelete([]byte(ss.ClientID), ss.Queue[0].Seq, id)
		mustSubmit(t, s, b)
		if got := hasKey(t, s, messageKey(nil, id)); got != (ss == alice) {
			t.Fatalf("after the ack of %s the body exists: %v", ss.ClientID, got)
		}
	}

	// Retained messages come from disk, in topic order.
	var topics []string
	if err := s.RangeRetained(nil, func(topic []byte, m *Message) bool {
		topics = append(topics, string(topic)+"="+string(m.Payload))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(topics, []string{"r/1=vr/1", "r/3=vr/3"}) {
		t.Fatalf("retained %v", topics)
	}
	topics = topics[:0]
	_ = s.RangeRetained([]byte("r/3"), func(topic []byte, _ *Message) bool {
		topics = append(topics, string(topic))
		return true
	})
	if !slices.Equal(topics, []string{"r/3"}) {
		t.Fatalf("retained with prefix r/3: %v", topics)
	}
	m, ok, err := s.GetRetained([]byte("r/1"))
	if err != nil || !ok || string(m.Topic) != "r/1" || string(m.Payload) != "vr/1" || !m.Retain {
		t.Fatalf("GetRetained: %+v %v %v", m, ok, err)
	}
	if _, ok, err := s.GetRetained([]byte("r/2")); ok || err != nil {
		t.Fatalf("GetRetained of a cleared topic: %v %v", ok, err)
	}
}

func TestLoadSkipsDanglingRecords(t *testing.T) {
	s := openTest(t, nil, Options{})
	defer s.Close()
	b, id, _ := publishBatch(s, "p", "t", "x", "nosession")
	mustSubmit(t, s, b)
	b = NewBatch(KindConnect, []byte("c"))
	b.SessionPut([]byte("c"), &Session{Expiry: 1})
	b.QueuePut([]byte("c"), s.NewQueueSeq(), &QueueEntry{MsgID: id + 100, QoS: 1})
	mustSubmit(t, s, b)
	st, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if st.Dangling != 2 || len(st.Sessions) != 1 || len(st.Sessions[0].Queue) != 0 || st.Orphans != 0 {
		t.Fatalf("state %+v, session %+v", st, st.Sessions[0])
	}
}

// publishLoad submits n QoS 1 messages for "sub" and returns their payloads.
func publishLoad(t *testing.T, s *Store, n int, tag string) []string {
	var w waiter
	var out []string
	for i := range n {
		p := fmt.Sprintf("%s-%d", tag, i)
		b, _, _ := publishBatch(s, "p", "t", p, "sub")
		w.submit(t, s, b)
		out = append(out, p)
	}
	w.wait(t)
	return out
}

func queuedPayloads(t *testing.T, s *Store) []string {
	t.Helper()
	st, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ss := range st.Sessions {
		for _, q := range ss.Queue {
			out = append(out, string(q.Msg.Payload))
		}
	}
	return out
}

func TestCrashKeepsWhatWasCompleted(t *testing.T) {
	for _, d := range []Durability{DurabilitySync, DurabilityBatch, DurabilityNone} {
		for seed := range 4 {
			t.Run(fmt.Sprintf("%s/seed%d", d, seed), func(t *testing.T) {
				fs := vfs.NewCrashableMem()
				s := openTest(t, fs, Options{Durability: d, SyncInterval: 0})
				defer s.Close()
				b := NewBatch(KindConnect, []byte("sub"))
				b.SessionPut([]byte("sub"), &Session{Expiry: 60})
				mustSubmit(t, s, b)
				done := publishLoad(t, s, 300, "acked")

				// Crash: keep what was synced and a random part of the rest.
				clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: seed * 30, RNG: rand.New(rand.NewPCG(uint64(seed), 7))})
				c := openTest(t, clone, Options{})
				defer c.Close()
				got := queuedPayloads(t, c)
				if d == DurabilityNone {
					// Nothing was promised; the store must still open and load.
					if len(got) > len(done) {
						t.Fatalf("%d messages after the crash, %d sent", len(got), len(done))
					}
					return
				}
				if !slices.Equal(got, done) {
					t.Fatalf("after a crash %d of %d completed messages are back", len(got), len(done))
				}
			})
		}
	}
}

func TestCrashLosesUnsyncedChangesOnly(t *testing.T) {
	fs := vfs.NewCrashableMem()
	var completed atomic.Int64
	o := Options{Durability: DurabilityBatch, SyncInterval: 1 << 40}
	s := openTest(t, fs, o)
	defer s.Close()
	b := NewBatch(KindConnect, []byte("sub"))
	b.SessionPut([]byte("sub"), &Session{Expiry: 60})
	mustSubmit(t, s, b) // the first change syncs at once
	// The next ones wait for a sync that does not come before the crash.
	for i := range 10 {
		b, _, _ := publishBatch(s, "p", "t", fmt.Sprint(i), "sub")
		if err := s.Submit(b, func(err error) { completed.Add(1) }); err != nil {
			t.Fatal(err)
		}
	}
	// Batch mode applies changes at the sync that completes them: until
	// then nothing of them is on disk, and nothing is completed.
	time.Sleep(50 * time.Millisecond)
	if n := completed.Load(); n != 0 {
		t.Fatalf("%d changes completed before their sync", n)
	}
	c := openTest(t, fs.CrashClone(vfs.CrashCloneCfg{}), Options{})
	defer c.Close()
	st, err := c.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Sessions) != 1 || len(st.Sessions[0].Queue) != 0 {
		t.Fatalf("the synced session must survive and the unsynced messages not: %+v", st.Sessions)
	}
}

func TestOpenRefusesDamagedStore(t *testing.T) {
	mustFailOpen := func(t *testing.T, dir string, want ...string) {
		t.Helper()
		s, err := Open(Options{Dir: dir, Logger: testLogger(t)})
		if err == nil {
			s.Close()
			t.Fatal("Open of a damaged store succeeded")
		}
		for _, w := range append(want, dir) {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("error %q does not mention %q", err, w)
			}
		}
	}
	makeStore := func(t *testing.T) string {
		dir := t.TempDir()
		s, err := Open(Options{Dir: dir, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		populate(t, s)
		s.dbMu.RLock()
		err = s.db.Flush()
		s.dbMu.RUnlock()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	files := func(t *testing.T, dir, pattern string) []string {
		m, _ := filepath.Glob(filepath.Join(dir, pattern))
		if len(m) == 0 {
			t.Fatalf("no %s in %s", pattern, dir)
		}
		return m
	}

	t.Run("foreign files", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hi"), 0o644)
		mustFailOpen(t, dir, "notes.txt", "no store")
	})
	t.Run("lost manifest marker", func(t *testing.T) {
		dir := makeStore(t)
		for _, f := range files(t, dir, "marker.manifest.*") {
			os.Remove(f)
		}
		mustFailOpen(t, dir, "tern wal check", "backup")
	})
	t.Run("garbage manifest", func(t *testing.T) {
		dir := makeStore(t)
		for _, f := range files(t, dir, "MANIFEST-*") {
			os.WriteFile(f, bytes.Repeat([]byte{0xA5}, 4096), 0o644)
		}
		mustFailOpen(t, dir, "tern wal check", "backup")
	})
	t.Run("corrupt sstable", func(t *testing.T) {
		dir := makeStore(t)
		for _, f := range files(t, dir, "*.sst") {
			b, _ := os.ReadFile(f)
			for i := len(b) / 8; i < len(b)/2; i += 7 {
				b[i] ^= 0x5A
			}
			os.WriteFile(f, b, 0o644)
		}
		s, err := Open(Options{Dir: dir, Logger: testLogger(t)})
		if err != nil {
			if !strings.Contains(err.Error(), "tern wal check") {
				t.Fatalf("Open error %q without advice", err)
			}
			return
		}
		defer s.Close()
		st, err := s.Load()
		if err == nil {
			t.Fatalf("Load of a corrupt store succeeded with %d sessions", len(st.Sessions))
		}
		t.Logf("Load: %v", err)
		if !strings.Contains(err.Error(), "tern wal check") || !strings.Contains(err.Error(), dir) {
			t.Fatalf("Load error %q without the directory and advice", err)
		}
	})
	t.Run("not a tern store", func(t *testing.T) {
		dir := t.TempDir()
		db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{log: testLogger(t), sink: &fatalSink{}}})
		if err != nil {
			t.Fatal(err)
		}
		db.Set([]byte("k"), []byte("v"), pebble.Sync)
		db.Close()
		mustFailOpen(t, dir, "did not create")
	})
	t.Run("locked", func(t *testing.T) {
		dir := t.TempDir()
		s, err := Open(Options{Dir: dir, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		_, err = Open(Options{Dir: dir, Logger: testLogger(t)})
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("second Open: %v, want ErrLocked", err)
		}
	})
}
