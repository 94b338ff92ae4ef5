package main

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// props holds the MQTT 5.0 properties of one packet: those -D gives for a
// packet sent, or those of a message received. Unset numbers are nil, unset
// strings empty.
type props struct {
	user            [][2]string // user-property, in order
	contentType     string
	responseTopic   string
	correlationData []byte
	reasonString    string
	payloadFormat   *byte
	messageExpiry   *uint32
	sessionExpiry   *uint32
	willDelay       *uint32
	maxPacketSize   *uint32
	receiveMax      *uint16
	topicAliasMax   *uint16
	subID           *int
	reqProblem      *byte
	reqResponse     *byte

	given map[string]bool // -D names seen, to refuse a property given twice
}

// The packets -D sets properties of, as mosquitto names them.
const (
	propConnect = iota
	propPublish
	propSubscribe
	propDisconnect
	propWill
	numPropCmds
)

var propCmdNames = [numPropCmds]string{"connect", "publish", "subscribe", "disconnect", "will"}

// propCmds lists the packets of tern pub or tern sub that -D can set
// properties of.
func propCmds(cmd string) []string {
	if cmd == "pub" {
		return []string{"connect", "publish", "disconnect", "will"}
	}
	return []string{"connect", "subscribe", "disconnect", "will"}
}

// propSpec is a property -D can set: the packets it belongs to and how its
// value is read.
type propSpec struct {
	cmds string // propCmdNames it may follow
	set  func(p *props, v string) error
}

var propSpecs = map[string]propSpec{
	"payload-format-indicator": {"publish will", func(p *props, v string) error {
		n, err := propUint(v, 1)
		p.payloadFormat = ptr(byte(n))
		return err
	}},
	"message-expiry-interval": {"publish will", func(p *props, v string) error {
		n, err := propUint(v, math.MaxUint32)
		p.messageExpiry = ptr(uint32(n))
		return err
	}},
	"content-type":     {"publish will", func(p *props, v string) error { p.contentType = v; return nil }},
	"response-topic":   {"publish will", func(p *props, v string) error { p.responseTopic = v; return nil }},
	"correlation-data": {"publish will", func(p *props, v string) error { p.correlationData = []byte(v); return nil }},
	"will-delay-interval": {"will", func(p *props, v string) error {
		n, err := propUint(v, math.MaxUint32)
		p.willDelay = ptr(uint32(n))
		return err
	}},
	"subscription-identifier": {"subscribe", func(p *props, v string) error {
		n, err := propUint(v, 268435455)
		if err == nil && n == 0 {
			err = errors.New("needs a number from 1 to 268435455")
		}
		p.subID = ptr(int(n))
		return err
	}},
	"session-expiry-interval": {"connect disconnect", func(p *props, v string) error {
		n, err := propUint(v, math.MaxUint32)
		p.sessionExpiry = ptr(uint32(n))
		return err
	}},
	"receive-maximum": {"connect", func(p *props, v string) error {
		n, err := propUint(v, math.MaxUint16)
		if err == nil && n == 0 {
			err = errors.New("needs a number from 1 to 65535")
		}
		p.receiveMax = ptr(uint16(n))
		return err
	}},
	"maximum-packet-size": {"connect", func(p *props, v string) error {
		n, err := propUint(v, math.MaxUint32)
		if err == nil && n == 0 {
			err = errors.New("needs a number from 1 to 4294967295")
		}
		p.maxPacketSize = ptr(uint32(n))
		return err
	}},
	"topic-alias-maximum": {"connect", func(p *props, v string) error {
		n, err := propUint(v, math.MaxUint16)
		p.topicAliasMax = ptr(uint16(n))
		return err
	}},
	"request-problem-information": {"connect", func(p *props, v string) error {
		n, err := propUint(v, 1)
		p.reqProblem = ptr(byte(n))
		return err
	}},
	"request-response-information": {"connect", func(p *props, v string) error {
		n, err := propUint(v, 1)
		p.reqResponse = ptr(byte(n))
		return err
	}},
	"reason-string": {"disconnect", func(p *props, v string) error { p.reasonString = v; return nil }},
	// user-property takes two values; setProperty handles it.
	"user-property": {"connect publish subscribe disconnect will", nil},
}

// willSent are the will properties paho.golang v0.23 sends: it packs the
// will properties by the rules of CONNECT's own and drops the others
// (payload format, expiry, content type, response topic, correlation data).
var willSent = []string{"user-property", "will-delay-interval"}

func ptr[T any](v T) *T { return &v }

func propUint(v string, max uint64) (uint64, error) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > max {
		return 0, fmt.Errorf("needs a number from 0 to %d, not %q", max, v)
	}
	return n, nil
}

// setProperty is -D CMD PROP VALUE, or -D CMD user-property KEY VALUE.
func setProperty(o *clientOpts, value func() (string, error)) error {
	var args [3]string
	for i := range args {
		s, err := value()
		if err != nil {
			return errors.New("needs CMD PROP VALUE, e.g. -D publish content-type text/plain")
		}
		args[i] = s
	}
	cmd, name, v := args[0], args[1], args[2]
	cmds := propCmds(o.cmd)
	c := slices.Index(propCmdNames[:], cmd)
	if c < 0 || !slices.Contains(cmds, cmd) {
		return fmt.Errorf("%q: CMD is %s", cmd, strings.Join(cmds, ", "))
	}
	spec, ok := propSpecs[name]
	if !ok {
		return fmt.Errorf("%s %q: unknown property (tern %s --help lists them)", cmd, name, o.cmd)
	}
	if !strings.Contains(spec.cmds, cmd) {
		return fmt.Errorf("%s %s: not a property of %s (it is one of %s)", cmd, name, cmd, strings.ReplaceAll(spec.cmds, " ", ", "))
	}
	p := o.props[c]
	if p == nil {
		p = &props{given: map[string]bool{}}
		o.props[c] = p
	}
	if name == "user-property" {
		val, err := value()
		if err != nil {
			return errors.New("user-property needs KEY VALUE, e.g. -D publish user-property unit celsius")
		}
		p.user = append(p.user, [2]string{v, val})
		return nil
	}
	if cmd == "will" && !slices.Contains(willSent, name) {
		return fmt.Errorf("will %s: not sent by paho.golang, the 5.0 client library, which packs will properties "+
			"as CONNECT ones; will-delay-interval and user-property go through", name)
	}
	if p.given[name] {
		return fmt.Errorf("%s %s: given twice (only user-property can repeat)", cmd, name)
	}
	p.given[name] = true
	if err := spec.set(p, v); err != nil {
		return fmt.Errorf("%s %s %v", cmd, name, err)
	}
	return nil
}
