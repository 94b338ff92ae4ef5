package engine

import (
	"bytes"
	"errors"

	"github.com/tern-mqtt/tern/codec"
)

// 5.0 enhanced authentication (MQTT 5.0 section 4.12): a CONNECT with an
// Authentication Method starts an exchange of AUTH packets that ends in the
// CONNACK; a connected client may authenticate again (re-authentication)
// with AUTH 0x19 while its traffic goes on.

// AuthExchange is one enhanced authentication exchange (say, SCRAM).
type AuthExchange interface {
	// Step takes the client's Authentication Data and returns the server's;
	// done once the client is authenticated (the reply then goes in the
	// CONNACK, or the final AUTH). An error fails the authentication.
	Step(data []byte) (reply []byte, done bool, err error)
	// User is the authenticated user name, for Authorize.
	User() string
}

// enhancedAuth is a connection's enhanced authentication state.
type enhancedAuth struct {
	method  string
	user    string       // who the CONNECT's exchange authenticated
	ex      AuthExchange // the exchange in progress; nil between exchanges
	connect []byte       // the CONNECT, kept until its exchange ends
	done    bool         // the CONNECT's exchange succeeded
	final   []byte       // its last reply, for the CONNACK
}

// beginConnectAuth starts the exchange a CONNECT asks for. It returns
// whether the CONNECT can go on now (authenticated in one step); false with
// a nil error means an AUTH went out and the exchange continues.
func (c *conn) beginConnectAuth(p *codec.Connect) (bool, error) {
	o := &c.srv.opts
	method := string(p.Props.AuthMethod)
	var ex AuthExchange
	if o.EnhancedAuth != nil {
		ex = o.EnhancedAuth(method)
	}
	if ex == nil {
		c.refuseConnect(c.version, codec.BadAuthenticationMethod)
		c.srv.log.Info("connection refused: authentication method not offered", "remote", c.remote.String(), "method", method)
		return false, errProtocol
	}
	reply, done, err := ex.Step(p.Props.AuthData)
	if err != nil {
		return false, c.authFailedAtConnect(err)
	}
	c.ext().enh = &enhancedAuth{method: method, ex: ex}
	if !done {
		c.enhOf().connect = bytes.Clone(c.curRaw) // decoded again when the exchange ends
		c.appendAuth(codec.ContinueAuthentication, reply)
		return false, nil
	}
	c.enhOf().done, c.enhOf().final, c.enhOf().user, c.enhOf().ex = true, reply, ex.User(), nil
	return true, nil
}

// continueConnectAuth takes an AUTH of the CONNECT's exchange.
func (c *conn) continueConnectAuth(a *codec.Auth) error {
	e := c.enhOf()
	if a.ReasonCode != codec.ContinueAuthentication || string(a.Props.AuthMethod) != e.method { // MQTT-4.12.0-5
		c.refuseConnect(c.version, codec.ProtocolError)
		return errProtocol
	}
	reply, done, err := e.ex.Step(a.Props.AuthData)
	if err != nil {
		return c.authFailedAtConnect(err)
	}
	if !done {
		c.appendAuth(codec.ContinueAuthentication, reply)
		return nil
	}
	e.done, e.final, e.user, e.ex = true, reply, e.ex.User(), nil
	raw := e.connect
	defer func() { e.connect = nil }()
	var d codec.Decoder
	d.MaxPacketSize = c.dec.MaxPacketSize
	var p codec.Packet
	if _, err := d.Decode(raw, &p); err != nil || p.Type != codec.CONNECT {
		c.refuseConnect(c.version, codec.UnspecifiedError)
		return errProtocol
	}
	return c.handleConnect(&p.Connect)
}

func (c *conn) authFailedAtConnect(err error) error {
	c.refuseConnect(c.version, codec.NotAuthorized)
	c.srv.log.Info("connection refused: authentication failed", "remote", c.remote.String(), "err", err.Error())
	return errProtocol
}

// handleAuth takes an AUTH from a connected client: re-authentication
// (0x19 starts it, 0x18 continues it). Failing it disconnects with 0x87.
func (c *conn) handleAuth(a *codec.Auth) error {
	e := c.enhOf()
	if e == nil { // MQTT-4.12.0-7: no AUTH without an Authentication Method in CONNECT
		return c.fail(codec.ProtocolError, "AUTH without enhanced authentication")
	}
	if string(a.Props.AuthMethod) != e.method { // MQTT-4.12.1-1
		return c.fail(codec.ProtocolError, "AUTH with another authentication method")
	}
	switch {
	case a.ReasonCode == codec.ReAuthenticate && e.ex == nil:
		e.ex = c.srv.opts.EnhancedAuth(e.method)
		if e.ex == nil { // the method was withdrawn meanwhile
			return c.fail(codec.NotAuthorized, "re-authentication method no longer offered")
		}
	case a.ReasonCode == codec.ContinueAuthentication && e.ex != nil:
	default:
		return c.fail(codec.ProtocolError, "AUTH out of sequence")
	}
	reply, done, err := e.ex.Step(a.Props.AuthData)
	if err == nil && done && e.ex.User() != e.user {
		err = errReauthUser
	}
	if err != nil {
		e.ex = nil
		c.srv.log.Info("re-authentication failed", "client_id", c.clientID, "err", err.Error())
		return c.fail(codec.NotAuthorized, "re-authentication failed")
	}
	if !done {
		c.appendAuth(codec.ContinueAuthentication, reply)
		return nil
	}
	e.ex = nil
	c.appendAuth(codec.Success, reply)
	return nil
}

var errReauthUser = errors.New("re-authenticated as another user")

func (c *conn) appendAuth(reason codec.ReasonCode, data []byte) {
	a := codec.Auth{ReasonCode: reason}
	a.Props.SetAuthMethod([]byte(c.enhOf().method))
	if data != nil {
		a.Props.SetAuthData(data)
	}
	c.wbuf, _ = a.Append(c.wbuf, c.version)
}
