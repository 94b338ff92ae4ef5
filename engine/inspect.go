package engine

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/message"
	"github.com/tern-mqtt/tern/sessions"
	"github.com/tern-mqtt/tern/wal"
)

// What an operator may ask of a running server (the admin API): sessions,
// subscriptions and retained messages, listed in pages, and a few actions.
// Listing walks the tables, taking each session's lock in turn: it is meant
// for people and scripts, not for a per-message path.

// ErrNotFound: no session, or no retained message, of that name.
var ErrNotFound = errors.New("engine: not found")

// ErrNotStarted: the server has not started (or is still recovering its
// store), so there is nothing to inspect yet.
var ErrNotStarted = errors.New("engine: not started")

// ErrSysTopic: the $SYS/ topics are the broker's, not to be changed.
var ErrSysTopic = errors.New("engine: $SYS topics are the broker's own")

// ErrOnline: the session's client is connected (or connected again while
// being disconnected), so it cannot be deleted.
var ErrOnline = errors.New("engine: client is connected")

// SessionInfo describes one session.
type SessionInfo struct {
	ClientID string `json:"client_id"`
	Online   bool   `json:"online"`
	// Protocol is the level of its last connection: 3 (3.1), 4 (3.1.1) or 5.
	Protocol byte `json:"protocol"`
	// Of the connection, when online.
	Listener       string    `json:"listener,omitempty"` // tcp, tls, ws or wss
	Remote         string    `json:"remote,omitempty"`
	ConnectedSince time.Time `json:"connected_since,omitzero"`
	// ExpiryInterval is the Session Expiry Interval in seconds
	// (4294967295: never; 0: ends when the connection closes).
	ExpiryInterval uint32 `json:"expiry_interval"`
	Durable        bool   `json:"durable"` // kept in the data directory
	Subscriptions  int    `json:"subscriptions"`
	Queued         int    `json:"queued"`
	QueuedBytes    int    `json:"queued_bytes"`
	Inflight       int    `json:"inflight"`     // sent, not yet acknowledged
	InboundQoS2    int    `json:"inbound_qos2"` // received QoS 2 awaiting PUBREL
}

// SubscriptionInfo describes one subscription of one session.
type SubscriptionInfo struct {
	ClientID          string `json:"client_id"`
	Filter            string `json:"filter"` // as subscribed, with any $share/{group}/ prefix
	QoS               byte   `json:"qos"`
	NoLocal           bool   `json:"no_local,omitempty"`
	RetainAsPublished bool   `json:"retain_as_published,omitempty"`
	RetainHandling    byte   `json:"retain_handling,omitempty"`
	Identifier        uint32 `json:"subscription_identifier,omitempty"`
}

// SessionQuery selects sessions: those whose client id starts with Prefix
// and comes after After (the last id of the previous page), Online or
// offline ones only when set; at most Limit (default 100, at most 10,000),
// in client id order.
type SessionQuery struct {
	Prefix string
	After  string
	Online *bool
	Limit  int
}

func pageLimit(n int) int {
	switch {
	case n <= 0:
		return 100
	case n > 10_000:
		return 10_000
	}
	return n
}

// smallest keeps the n smallest of the items added, by cmp: a page of a
// walk over a million sessions costs O(total·log n), not a sort of them all.
type smallest[T any] struct {
	n     int
	cmp   func(a, b T) int
	items []T
}

func (k *smallest[T]) add(v T) {
	k.items = append(k.items, v)
	if len(k.items) >= 2*k.n+64 {
		k.cut()
	}
}

func (k *smallest[T]) cut() {
	slices.SortFunc(k.items, k.cmp)
	if len(k.items) > k.n {
		clear(k.items[k.n:])
		k.items = k.items[:k.n]
	}
}

// page returns up to limit of the smallest items in order (k.n must be
// limit+1), and whether more matched.
func (k *smallest[T]) page(limit int) ([]T, bool) {
	k.cut()
	if len(k.items) > limit {
		return k.items[:limit], true
	}
	return k.items, false
}

// Sessions returns a page of sessions and whether more follow.
func (s *Server) Sessions(q SessionQuery) (page []SessionInfo, more bool) {
	limit := pageLimit(q.Limit)
	picked := smallest[*sessions.Session]{n: limit + 1, cmp: func(a, b *sessions.Session) int { return cmp.Compare(a.ID, b.ID) }}
	s.sessions.Range(func(sess *sessions.Session) bool {
		if !strings.HasPrefix(sess.ID, q.Prefix) || sess.ID <= q.After {
			return true
		}
		if q.Online != nil {
			sess.Lock()
			c, _ := sess.Owner().(*conn)
			online := c != nil && c.session.Load() != nil
			sess.Unlock()
			if online != *q.Online {
				return true
			}
		}
		picked.add(sess)
		return true
	})
	list, more := picked.page(limit)
	for _, sess := range list {
		// A session that ended meanwhile is left out; one whose client
		// came or went meanwhile is shown as it is now.
		if info, ok := s.describe(sess, nil); ok {
			page = append(page, info)
		}
	}
	return page, more
}

// Session returns one session and its subscriptions, sorted by filter.
func (s *Server) Session(clientID string) (SessionInfo, []SubscriptionInfo, error) {
	sess := s.sessions.Get(clientID)
	if sess == nil {
		return SessionInfo{}, nil, ErrNotFound
	}
	var subs []SubscriptionInfo
	info, ok := s.describe(sess, &subs)
	if !ok {
		return SessionInfo{}, nil, ErrNotFound
	}
	slices.SortFunc(subs, func(a, b SubscriptionInfo) int { return cmp.Compare(a.Filter, b.Filter) })
	return info, subs, nil
}

// describe reads sess under its lock, and its subscriptions into subs when
// subs is not nil; false when the session has ended.
func (s *Server) describe(sess *sessions.Session, subs *[]SubscriptionInfo) (SessionInfo, bool) {
	sess.Lock()
	defer sess.Unlock()
	if sess.Ended() {
		return SessionInfo{}, false
	}
	n, b := sess.Queued()
	info := SessionInfo{
		ClientID: sess.ID, Protocol: sess.Version, ExpiryInterval: sess.Expiry, Durable: sess.Durable(),
		Subscriptions: len(sess.Subs()), Queued: n, QueuedBytes: b, Inflight: sess.InflightLen(),
		InboundQoS2: sess.InboundQoS2Len(),
	}
	// The connection's remote, opened, listener and version are written
	// before its session is published (an atomic store), and read here only
	// after seeing it: no race with its loop.
	if c, _ := sess.Owner().(*conn); c != nil && c.session.Load() != nil {
		info.Online = true
		info.Protocol = c.version
		info.Listener = ListenerNames[c.listener]
		info.Remote = c.remote.String()
		info.ConnectedSince = time.Unix(0, c.opened).UTC()
	}
	if subs != nil {
		for f, o := range sess.Subs() {
			*subs = append(*subs, subscriptionInfo(sess.ID, f, o))
		}
	}
	return info, true
}

func subscriptionInfo(clientID, filter string, o sessions.SubOptions) SubscriptionInfo {
	return SubscriptionInfo{ClientID: clientID, Filter: filter, QoS: o.QoS, NoLocal: o.NoLocal,
		RetainAsPublished: o.RetainAsPublished, RetainHandling: o.RetainHandling, Identifier: o.SubID}
}

// Disconnect closes the connection of clientID as the server's decision: a
// 5.0 client gets DISCONNECT 0x98 (administrative action), and its will is
// published as for any connection the server closes. The session stays.
// ErrNotFound when the client is not connected.
func (s *Server) Disconnect(clientID string) error {
	c := s.connOf(clientID)
	if c == nil {
		return ErrNotFound
	}
	c.kick(codec.AdministrativeAction)
	return nil
}

func (s *Server) connOf(clientID string) *conn {
	sess := s.sessions.Get(clientID)
	if sess == nil {
		return nil
	}
	sess.Lock()
	c, _ := sess.Owner().(*conn)
	sess.Unlock()
	return c
}

// DeleteSession ends the session of clientID as if it had expired: its
// subscriptions, queue and stored state go, and a pending will is
// published. A connected client is disconnected first (0x98), and the call
// waits until ctx is done for it to go; ErrOnline when it reconnected in
// between.
func (s *Server) DeleteSession(ctx context.Context, clientID string) error {
	kicked := false
	for {
		sess := s.sessions.Get(clientID)
		if sess == nil {
			if kicked { // a session without expiry ends with its connection
				return nil
			}
			return ErrNotFound
		}
		sess.Lock()
		c, _ := sess.Owner().(*conn)
		ended := sess.Ended()
		if c == nil && !ended {
			sess.End()
		}
		sess.Unlock()
		switch {
		case ended && kicked:
			return nil
		case ended:
			return ErrNotFound
		case c == nil:
			s.endSession(sess, "deleted by an administrator")
			s.log.Info("session deleted by an administrator", "client_id", clientID)
			return s.durable(ctx)
		}
		c.kick(codec.AdministrativeAction)
		kicked = true
		select {
		case <-ctx.Done():
			return ErrOnline
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// SubscriptionQuery selects subscriptions: of clients whose id starts with
// ClientPrefix; with Filter, only that exact filter (a shared one with its
// $share/{group}/ prefix); with Topic, only filters matching that topic
// name. At most Limit (as SessionQuery) after the cursor After, which is
// the Cursor of the previous page's last entry.
type SubscriptionQuery struct {
	ClientPrefix string
	Filter       string
	Topic        string
	After        string
	Limit        int
}

// Cursor returns the position of sub for SubscriptionQuery.After.
func (sub SubscriptionInfo) Cursor() string { return sub.ClientID + "\x00" + sub.Filter }

// Subscriptions returns a page of subscriptions ordered by client id and
// filter, and whether more follow.
func (s *Server) Subscriptions(q SubscriptionQuery) (page []SubscriptionInfo, more bool) {
	limit := pageLimit(q.Limit)
	all := smallest[SubscriptionInfo]{n: limit + 1, cmp: func(a, b SubscriptionInfo) int { return cmp.Compare(a.Cursor(), b.Cursor()) }}
	s.sessions.Range(func(sess *sessions.Session) bool {
		if !strings.HasPrefix(sess.ID, q.ClientPrefix) {
			return true
		}
		sess.Lock()
		if !sess.Ended() {
			for f, o := range sess.Subs() {
				if q.Filter != "" && f != q.Filter || q.Topic != "" && !filterMatches(f, q.Topic) {
					continue
				}
				if sub := subscriptionInfo(sess.ID, f, o); q.After == "" || sub.Cursor() > q.After {
					all.add(sub)
				}
			}
		}
		sess.Unlock()
		return true
	})
	page, more = all.page(limit)
	return page, more
}

// filterMatches reports whether filter (possibly shared) matches topic by
// MQTT's rules (4.7), '$' topics included (MQTT-4.7.2-1).
func filterMatches(filter, topic string) bool {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		_, f, ok := strings.Cut(rest, "/")
		if !ok {
			return false
		}
		filter = f
	}
	return codec.MatchTopic(filter, topic)
}

// RetainedInfo describes one retained message. Payload is nil in lists.
type RetainedInfo struct {
	Topic       string    `json:"topic"`
	QoS         byte      `json:"qos"`
	Size        int       `json:"size"` // topic, payload and properties, as counted against --max-retained-bytes
	PayloadSize int       `json:"payload_size"`
	Created     time.Time `json:"created"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	Payload     []byte    `json:"-"`
}

func retainedInfo(m *message.Message, payload bool) RetainedInfo {
	r := RetainedInfo{Topic: string(m.Topic), QoS: m.QoS, Size: m.Size(), PayloadSize: len(m.Payload),
		Created: time.Unix(0, m.Created).UTC()}
	if m.ExpireAt != 0 {
		r.ExpiresAt = time.Unix(0, m.ExpireAt).UTC()
	}
	if payload {
		r.Payload = append([]byte(nil), m.Payload...)
	}
	return r
}

// RetainedQuery selects retained messages whose topic matches Filter
// (default "#", which by MQTT's rules leaves out "$" topics), after the
// topic After, at most Limit (as SessionQuery), in topic order.
type RetainedQuery struct {
	Filter string
	After  string
	Limit  int
}

// Retained returns a page of retained messages (without payloads) and
// whether more follow. The filter must be a valid topic filter.
func (s *Server) Retained(q RetainedQuery) (page []RetainedInfo, more bool, err error) {
	if s.started.Load() == 0 {
		return nil, false, ErrNotStarted
	}
	if q.Filter == "" {
		q.Filter = "#"
	}
	if err := codec.ValidateFilter([]byte(q.Filter), codec.Version311); err != nil || strings.HasPrefix(q.Filter, "$share/") {
		return nil, false, errors.New("engine: not a valid topic filter: " + q.Filter)
	}
	limit := pageLimit(q.Limit)
	now := time.Now().UnixNano()
	all := smallest[RetainedInfo]{n: limit + 1, cmp: func(a, b RetainedInfo) int { return cmp.Compare(a.Topic, b.Topic) }}
	x := s.retained
	if sysFilter(q.Filter) {
		x = s.sys
	}
	err = x.Match(q.Filter, func(m *message.Message) bool {
		if !m.Expired(now) && string(m.Topic) > q.After {
			all.add(retainedInfo(m, false))
		}
		return true
	})
	if err != nil {
		return nil, false, err
	}
	page, more = all.page(limit)
	return page, more, nil
}

// RetainedMessage returns the retained message of topic, payload included.
func (s *Server) RetainedMessage(topic string) (RetainedInfo, error) {
	if s.started.Load() == 0 {
		return RetainedInfo{}, ErrNotStarted
	}
	m, ok, err := s.retainedFor([]byte(topic)).Get(topic)
	if err != nil {
		return RetainedInfo{}, err
	}
	if !ok {
		return RetainedInfo{}, ErrNotFound
	}
	defer m.Release()
	if m.Expired(time.Now().UnixNano()) {
		return RetainedInfo{}, ErrNotFound
	}
	return retainedInfo(m, true), nil
}

// DeleteRetained clears the retained message of topic, as a retained
// PUBLISH with an empty payload would (MQTT-3.3.1-6) but without delivering
// anything, and returns once the change is durable (or ctx is done). A
// $SYS value is the broker's own: ErrSysTopic.
func (s *Server) DeleteRetained(ctx context.Context, topic string) error {
	if isSysTopic(topic) {
		return ErrSysTopic
	}
	if _, err := s.RetainedMessage(topic); err != nil {
		return err
	}
	m := message.New([]byte(topic), nil, nil, 0, true, 0, time.Now())
	defer m.Release()
	tx := s.newTx(wal.KindPublish, "")
	if err := s.storeRetained(m, tx); err != nil {
		if tx != nil {
			tx.submit(nil)
		}
		return err
	}
	if tx == nil {
		return nil
	}
	done := make(chan error, 1)
	tx.submit(func(err error) { done <- err })
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// durable returns once everything submitted to the store so far is durable
// (the committer completes batches in order), with its error; at once
// without a store.
func (s *Server) durable(ctx context.Context) error {
	tx := s.newTx(wal.KindNone, "")
	if tx == nil {
		return nil
	}
	done := make(chan error, 1)
	tx.barrier(func(err error) { done <- err })
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ready reports whether the server serves: started, not stopping, and its
// store (if any) healthy; the error says why not.
func (s *Server) Ready() error {
	switch {
	case s.started.Load() == 0:
		return ErrNotStarted
	case s.stopping.Load():
		return errors.New("shutting down")
	}
	if s.store != nil {
		if err := s.store.Err(); err != nil {
			return err
		}
	}
	return nil
}
