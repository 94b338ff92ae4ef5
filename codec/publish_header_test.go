package codec

import (
	"bytes"
	"testing"
)

// TestPublishHeaderMatchesPublish checks that a PUBLISH built per delivery
// from a header with pre-encoded forwarded properties decodes to the packet
// it was built from, at every level, and that Size is exact.
func TestPublishHeaderMatchesPublish(t *testing.T) {
	for _, c := range validCases {
		if c.want.Type != PUBLISH {
			continue
		}
		src := c.want.Publish
		for _, v := range []byte{Version311, Version5} {
			h := PublishHeader{Dup: src.Dup, QoS: src.QoS, Retain: src.Retain, Topic: src.Topic, PacketID: src.PacketID,
				PayloadLen: len(src.Payload), RawProps: src.Props.AppendForwarded(nil),
				SubIDs: src.Props.SubscriptionIDs, TopicAlias: src.Props.TopicAlias}
			h.MessageExpiry, h.HasExpiry = src.Props.MessageExpiry, src.Props.Has(PropMessageExpiry)
			if v < Version5 && len(src.Topic) == 0 {
				continue
			}
			raw, err := h.Append(nil, v)
			if err != nil {
				t.Fatal(err)
			}
			raw = append(raw, src.Payload...)
			if h.Size(v) != len(raw) {
				t.Fatalf("%s v%d: Size %d, packet %d bytes", c.name, v, h.Size(v), len(raw))
			}
			d := Decoder{Version: v}
			var p Packet
			if _, err := d.Decode(raw, &p); err != nil {
				t.Fatalf("%s v%d: %v", c.name, v, err)
			}
			got := &p.Publish
			if !bytes.Equal(got.Topic, src.Topic) || !bytes.Equal(got.Payload, src.Payload) || got.QoS != src.QoS ||
				got.PacketID != src.PacketID || got.Dup != src.Dup || got.Retain != src.Retain {
				t.Fatalf("%s v%d: fixed fields differ: %+v", c.name, v, got)
			}
			if v < Version5 {
				if !got.Props.Empty() {
					t.Fatalf("%s: properties at 3.1.1", c.name)
				}
				continue
			}
			// Same properties, possibly in another order.
			want := src.Props
			if diff := diffPackets(publishPkt(Publish{Props: want}), publishPkt(Publish{Props: got.Props})); diff != "" {
				t.Fatalf("%s: properties differ: %s", c.name, diff)
			}
		}
	}
}

func TestAppendForwardedKeepsOnlyForwardedProperties(t *testing.T) {
	var p Properties
	p.SetPayloadFormat(1)
	p.SetMessageExpiry(5)
	p.SetTopicAlias(2)
	p.AddSubscriptionID(3)
	p.SetResponseTopic(bs("r"))
	p.AddUser(bs("a"), bs("1"))
	p.AddUser(bs("a"), bs("2"))
	var want Properties
	want.SetPayloadFormat(1)
	want.SetResponseTopic(bs("r"))
	want.AddUser(bs("a"), bs("1"))
	want.AddUser(bs("a"), bs("2"))
	if got := p.AppendForwarded([]byte{0xAA}); !bytes.Equal(got, want.appendBody([]byte{0xAA})) {
		t.Fatalf("forwarded % x, want % x", got, want.appendBody([]byte{0xAA}))
	}
	var none Properties
	none.SetTopicAlias(1)
	if got := none.AppendForwarded(nil); len(got) != 0 {
		t.Fatalf("nothing to forward, got % x", got)
	}
}
