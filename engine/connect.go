package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"time"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/message"
	"github.com/tern-mqtt/tern/sessions"
	"github.com/tern-mqtt/tern/wal"
)

// refuseConnect answers a CONNECT that cannot be accepted, in the format of
// the level it announced (3.1.1 format for a level we do not know,
// MQTT-3.1.2-2), then the connection closes (MQTT-3.2.2-5).
func (c *conn) refuseConnect(level byte, reason codec.ReasonCode) {
	ack := codec.Connack{ReasonCode: reason}
	v := level
	if v != codec.Version31 && v != codec.Version5 {
		v = codec.Version311
	}
	if v < codec.Version5 && codec.ConnackReturnCode(reason) == codec.ConnRefusedServerUnavailable &&
		reason != codec.ServerUnavailable && reason != codec.ServerBusy && reason != codec.ServerShuttingDown {
		// 3.1.1 has no code for malformed or protocol errors: close without
		// CONNACK (MQTT-3.2.2-6 of 3.1.1 allows it).
		return
	}
	c.wbuf, _ = ack.Append(c.wbuf, v)
	c.closeReason = reason
}

func (c *conn) handleConnect(p *codec.Connect) error {
	s := c.srv
	o := &s.opts
	c.version = p.ProtocolVersion
	v5 := c.version >= codec.Version5

	if c.refuse != 0 { // a per-address limit (limits.go)
		r := c.refuse
		if c.version < codec.Version5 {
			r = codec.ServerUnavailable // 3.1.1 return code 3
		}
		c.refuseConnect(c.version, r)
		s.log.Info("connection refused", "remote", c.remote.String(), "reason", c.refuse.String())
		return errProtocol
	}
	clientID := string(p.ClientID)
	assigned := false
	if clientID == "" {
		switch {
		case c.version == codec.Version31, c.version == codec.Version311 && !p.CleanStart: // MQTT-3.1.3-8 (3.1.1)
			c.refuseConnect(c.version, codec.ClientIdentifierNotValid)
			return errProtocol
		}
		clientID = newClientID()
		assigned = true // MQTT-3.1.3-6, -7
	}
	if p.Props.Has(codec.PropAuthMethod) && (c.enhOf() == nil || !c.enhOf().done) { // enhauth.go
		if goOn, err := c.beginConnectAuth(p); !goOn {
			return err
		}
	}
	if p.Will && p.WillRetain && !*o.RetainAvailable { // MQTT-3.2.2-14
		c.refuseConnect(c.version, codec.RetainNotSupported)
		return errProtocol
	}
	var rules Rules
	var expiresAt time.Time
	if o.Authenticate != nil || o.Authorize != nil {
		info := ConnectInfo{ClientID: clientID, Username: p.Username, Password: p.Password,
			HasUsername: p.UsernameFlag, HasPassword: p.PasswordFlag, Remote: net.TCPAddrFromAddrPort(c.remote),
			ProtocolLevel: c.version, AuthMethod: p.Props.AuthMethod, AuthData: p.Props.AuthData}
		if sc := c.streamOf(); sc != nil {
			info.ListenerSecure, info.CertName = sc.secure, sc.certName
		}
		enhanced := c.enhOf() != nil && c.enhOf().done
		if enhanced { // authenticated by the exchange: its user is who the client is
			info.Username, info.HasUsername = []byte(c.enhOf().user), true
		}
		if o.Authenticate != nil && !enhanced {
			if r := o.Authenticate(&info); r != codec.Success {
				c.refuseConnect(c.version, r)
				c.srv.log.Info("connection refused", "client_id", clientID, "remote", c.remote.String(), "reason", r.String())
				return errProtocol
			}
		}
		expiresAt = info.ExpiresAt
		if o.Authorize != nil {
			rules = o.Authorize(&info)
		}
	}
	// A will the client could not publish itself is refused now, when the
	// client can still be told, rather than dropped when it fires.
	if p.Will && (isSysTopic(p.WillTopic) || rules != nil && !rules.CanPublish(p.WillTopic)) {
		c.refuseConnect(c.version, codec.NotAuthorized)
		s.stats.aclDenied.Add(1)
		c.srv.log.Info("connection refused: will topic not allowed", "client_id", clientID, "remote", c.remote.String(),
			"will_topic", string(p.WillTopic))
		return errProtocol
	}

	// Session Expiry Interval: 5.0 from the property, 3.1.1 persistent
	// sessions never expire unless capped.
	var expiry uint32
	switch {
	case v5:
		expiry = p.Props.SessionExpiry
	case !p.CleanStart:
		expiry = 0xFFFFFFFF
	}
	expiryCapped := expiry > o.MaxSessionExpiry
	if expiryCapped {
		expiry = o.MaxSessionExpiry
	}
	c.expiryAtStart = expiry

	c.clientID = clientID
	c.connected = true
	c.keepAlive = time.Duration(p.KeepAlive) * time.Second
	serverKeepAlive := false
	if v5 && o.MaxKeepAlive < 65535 && (p.KeepAlive == 0 || p.KeepAlive > o.MaxKeepAlive) {
		c.keepAlive = time.Duration(o.MaxKeepAlive) * time.Second
		serverKeepAlive = true
	}
	if v5 {
		c.maxPacketOut = int(p.Props.MaximumPacketSize)
		c.aliasMaxOut = p.Props.TopicAliasMaximum
		c.problemInfo = !p.Props.Has(codec.PropRequestProblemInfo) || p.Props.RequestProblemInfo == 1
	}
	recvMax := o.MaxInflight
	if v5 && p.Props.Has(codec.PropReceiveMaximum) {
		recvMax = min(recvMax, int(p.Props.ReceiveMaximum))
	}

	var will *sessions.Will
	if p.Will {
		var wp *codec.Properties
		if v5 {
			wp = &p.WillProps
		}
		m := message.New(p.WillTopic, p.WillPayload, wp, p.WillQoS, p.WillRetain, 0, time.Now())
		will = &sessions.Will{Msg: m, Delay: p.WillProps.WillDelay}
	}

	var (
		sess    *sessions.Session
		present bool
		prev    any
	)
	for attempt := 0; ; attempt++ {
		var old *sessions.Session
		sess, present, old = s.acquireSession(clientID, p.CleanStart)
		if old != nil {
			// Clean Start replaced a session: its connection, if any, is
			// taken over (MQTT-3.1.4-3) and the old session ends.
			old.Lock()
			oc, _ := old.Owner().(*conn)
			old.Unlock()
			if oc != nil && oc != c {
				oc.takenOver()
				oc.kick(codec.SessionTakenOver)
			}
			s.endSession(old, "clean start")
		}
		sess.Lock()
		if !sess.Ended() || attempt == 3 {
			break
		}
		// Ended between Acquire and Lock (its last connection or its expiry
		// ended it, or a racing CONNECT replaced it): start again.
		sess.Unlock()
	}
	// sess is locked from here until the session is attached and resent.
	if sess.Timer != nil { // a returning client cancels a delayed will and the expiry (MQTT-3.1.3-9)
		sess.Timer.Stop()
		sess.Timer = nil
	}
	sess.NextTimer() // a timer that fired already but waits for the lock is now stale
	if will != nil {
		will.Msg.Origin = sess.Seq // No Local applies to the client's own will too
	}
	prevWill := sess.Will
	sess.Will = will
	sess.Expiry = expiry
	sess.Version = c.version

	ack := codec.Connack{SessionPresent: present}
	if v5 {
		pr := &ack.Props
		pr.SetReceiveMaximum(uint16(o.MaxInflight))
		pr.SetMaximumPacketSize(uint32(o.MaxPacketSize))
		pr.SetTopicAliasMaximum(o.TopicAliasMax)
		if !*o.RetainAvailable {
			pr.SetRetainAvailable(0)
		}
		if assigned {
			pr.SetAssignedClientID([]byte(clientID))
		}
		if serverKeepAlive {
			pr.SetServerKeepAlive(o.MaxKeepAlive)
		}
		if expiryCapped {
			pr.SetSessionExpiry(expiry)
		}
		if c.enhOf() != nil {
			pr.SetAuthMethod([]byte(c.enhOf().method))
			if c.enhOf().final != nil {
				pr.SetAuthData(c.enhOf().final)
			}
			c.enhOf().final = nil
		}
	}
	c.wbuf, _ = ack.Append(c.wbuf, c.version)
	c.sess = sess
	if s.store != nil {
		c.storeConnect(sess, expiry)
	}
	prev = sess.Attach(c, recvMax)
	sess.Progress = time.Now().UnixNano()
	// Resend in flight while still holding the lock, so that no delivery
	// another loop tracks meanwhile is sent twice (once as a resend).
	c.resendLocked()
	sess.Unlock()
	if l := s.newConnLimits(); l != nil {
		c.ext().limits = l
	}
	if !expiresAt.IsZero() {
		c.ext().expiry = time.AfterFunc(time.Until(expiresAt), func() { c.kick(codec.MaximumConnectTime) })
	}
	c.session.Store(&connSession{clientID: clientID, keepAlive: c.keepAlive, rules: rules})
	s.countClient(c, 1)

	if prevWill != nil {
		// The previous connection's will: a taken-over connection closed by
		// the server publishes it unless it was delayed (MQTT-3.1.3-9); a
		// delayed one is cancelled by this new connection.
		if prev != nil && prevWill.Delay == 0 {
			s.publishWill(prevWill.Msg)
		} else {
			prevWill.Msg.Release()
		}
	}
	if pc, ok := prev.(*conn); ok && pc != c {
		pc.takenOver()
		pc.kick(codec.SessionTakenOver) // MQTT-3.1.4-3
	}
	// One line per connection when it opens and one when it closes (onClose),
	// as operators expect from Mosquitto; none per message.
	if s.log.Enabled(context.Background(), slog.LevelInfo) { // the arguments alone cost allocations per connection
		s.log.Info("client connected", "client_id", clientID, "remote", c.remote.String(), "protocol", c.version,
			"listener", ListenerNames[c.listener], "clean_start", p.CleanStart, "session_present", present, "keep_alive", p.KeepAlive)
	}
	return nil
}

// takenOver marks a connection whose session moved to a new connection, so
// that closing it does not touch the session.
func (c *conn) takenOver() {
	c.sessMoved.Store(true)
}

// newClientID makes a unique client identifier for a client that sent none.
func newClientID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "tern-" + hex.EncodeToString(b[:])
}

func (s *Server) acquireSession(id string, fresh bool) (sess *sessions.Session, present bool, old *sessions.Session) {
	return s.sessions.Acquire(id, fresh)
}

// resendLocked sends, after CONNACK of a resumed session, the in-flight
// outbound messages again: PUBLISH with DUP for unacknowledged ones, PUBREL
// for QoS 2 ones already received (MQTT-4.4.0-1), in their original order.
// The session must be locked.
func (c *conn) resendLocked() {
	now := time.Now().UnixNano()
	list := c.sess.Resend()
	if len(list) > 0 && c.sess.Durable() {
		// The store may not have this session's last changes yet (a PUBREC
		// recorded on the connection just closed): resend behind them, so
		// that a PUBREL never goes out for a PUBREC a crash could forget.
		items := make([]resendItem, 0, len(list))
		for _, in := range list {
			it := resendItem{d: in.Delivery, released: in.Released}
			if !in.Released {
				it.d.Dup = true
				it.d.Msg.Ref()
			}
			items = append(items, it)
		}
		c.srv.newTx(wal.KindNone, "").barrier(c.gateResend(items))
		return
	}
	for _, in := range list {
		c.resendOne(in, now)
	}
}

// resendItem is one in-flight delivery sent again: a PUBLISH (its own
// message reference) or a PUBREL.
type resendItem struct {
	d        sessions.Delivery
	released bool
}

func releaseResend(items []resendItem) {
	for _, it := range items {
		if !it.released && it.d.Msg != nil {
			it.d.Msg.Release()
		}
	}
}

// writeResend writes the deliveries gateResend held back. Loop only.
func (c *conn) writeResend(items []resendItem, now int64) {
	for _, it := range items {
		if it.released {
			a := codec.Ack{Type: codec.PUBREL, PacketID: it.d.PacketID}
			c.wbuf, _ = a.Append(c.wbuf, c.version)
			continue
		}
		d := it.d
		if !c.appendDelivery(&d, now) {
			c.sess.Lock()
			if c.sess.Owner() == c {
				c.srv.completeUnsent(c.sess, &d)
			}
			c.sess.Unlock()
		}
	}
}

// resendOne sends one in-flight delivery again. The session must be locked.
func (c *conn) resendOne(in *sessions.Inflight, now int64) {
	if in.Released {
		a := codec.Ack{Type: codec.PUBREL, PacketID: in.PacketID}
		c.wbuf, _ = a.Append(c.wbuf, c.version)
		return
	}
	d := in.Delivery
	d.Dup = true
	d.Msg.Ref()
	if !c.appendDelivery(&d, now) {
		c.srv.completeUnsent(c.sess, &d)
	}
}

// storeConnect records a durable session's connection: its record and will,
// and everything it holds when it just became durable. A session resumed
// with expiry 0 is no longer kept. CONNACK does not wait: what the client
// does next is stored after this, in order. Locked.
func (c *conn) storeConnect(sess *sessions.Session, expiry uint32) {
	s := c.srv
	switch {
	case expiry > 0:
		tx := s.newTx(wal.KindConnect, sess.ID)
		if !sess.Durable() {
			sess.SetDurable(true)
			tx.storeAll(sess)
		}
		if sess.Will != nil {
			s.messageID(sess.Will.Msg)
		}
		tx.storeSession(sess, c.opened, 0, true)
		tx.submit(nil)
	case sess.Durable():
		tx := s.newTx(wal.KindSessionEnd, sess.ID)
		tx.b.SessionDelete([]byte(sess.ID))
		sess.SetDurable(false)
		tx.submit(nil)
	}
}
