package message

import (
	"bytes"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/codec"
)

func TestNewCopiesOnce(t *testing.T) {
	topic, payload := []byte("a/b"), []byte("hello")
	var props codec.Properties
	props.SetContentType([]byte("text/plain"))
	props.SetMessageExpiry(10)
	props.SetTopicAlias(3) // per delivery: not forwarded
	props.AddUser([]byte("k"), []byte("v"))
	now := time.Unix(1000, 0)
	m := New(topic, payload, &props, 1, true, 7, now)
	topic[0], payload[0] = 'X', 'X' // the message must not alias its inputs
	if string(m.Topic) != "a/b" || string(m.Payload) != "hello" || m.QoS != 1 || !m.Retain || m.Origin != 7 {
		t.Fatalf("message %+v", m)
	}
	want := props.AppendForwarded(nil)
	if !bytes.Equal(m.Props, want) || len(want) == 0 {
		t.Fatalf("props % x, want % x", m.Props, want)
	}
	if left, ok := m.RemainingExpiry(now.Add(2500 * time.Millisecond).UnixNano()); !ok || left != 8 {
		t.Fatalf("remaining expiry %d %v, want 8 (rounded up)", left, ok)
	}
	if m.Expired(now.Add(10*time.Second).UnixNano()) || !m.Expired(now.Add(10*time.Second).UnixNano()+1) {
		t.Fatal("Expired")
	}
	m.Ref()
	m.Release()
	m.Release()
}

func TestReleaseTooOftenPanics(t *testing.T) {
	m := New([]byte("t"), nil, nil, 0, false, 0, time.Now())
	m.Release()
	defer func() {
		if recover() == nil {
			t.Fatal("double release did not panic")
		}
	}()
	// m went back to the pool zeroed: its count is 0, so this goes negative.
	m.Release()
}

func TestPooledBuffersAndAllocs(t *testing.T) {
	payload := make([]byte, 3000)
	now := time.Now()
	New([]byte("warm/up"), payload, nil, 0, false, 0, now).Release()
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	if a := testing.AllocsPerRun(200, func() {
		New([]byte("sensors/1"), payload, nil, 1, false, 0, now).Release()
	}); a > 0 {
		t.Fatalf("steady-state New+Release allocates %.1f times", a)
	}
	big := make([]byte, 100<<10) // above the largest class: allocated, not pooled
	m := New([]byte("big"), big, nil, 0, false, 0, now)
	if len(m.Payload) != len(big) {
		t.Fatal("big payload")
	}
	m.Release()
}

func TestLiveCount(t *testing.T) {
	before, on := Live()
	m := New([]byte("t"), nil, nil, 0, false, 0, time.Now())
	if n, _ := Live(); on && n != before+1 {
		t.Fatalf("live %d, want %d", n, before+1)
	}
	m.Release()
	if n, _ := Live(); n != before {
		t.Fatalf("live %d after release, want %d", n, before)
	}
}

func TestRestoreKeepsTimesAndProps(t *testing.T) {
	m := Restore([]byte("a/b"), []byte("payload"), []byte{0x01, 0x01}, 1, true, 7, 100, 200)
	defer m.Release()
	if string(m.Topic) != "a/b" || string(m.Payload) != "payload" || string(m.Props) != "\x01\x01" {
		t.Fatalf("restored %q %q %x", m.Topic, m.Payload, m.Props)
	}
	if m.QoS != 1 || !m.Retain || m.Origin != 7 || m.Created != 100 || m.ExpireAt != 200 {
		t.Fatalf("restored fields %+v", m)
	}
	if !m.Expired(201) || m.Expired(200) {
		t.Fatal("expiry not restored")
	}
}
