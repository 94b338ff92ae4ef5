package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/tern-mqtt/tern/codec"
)

// connectTimeout bounds the TCP and TLS handshakes and the wait for CONNACK.
const connectTimeout = 15 * time.Second

// disconnectTimeout bounds how long disconnect waits for DISCONNECT to be
// written and the library to let go of the connection.
const disconnectTimeout = time.Second

// mqttClient is one connection of tern pub or tern sub to the broker. Two
// kinds implement it: v5Client drives paho.golang for MQTT 5.0, v3Client
// paho.mqtt.golang for 3.1.1 and 3.1. Everything else (flags, messages,
// output) is shared.
type mqttClient interface {
	// publish sends m and, at QoS 1 and 2, waits for its acknowledgement. A
	// 5.0 refusal is a *refusedError.
	publish(ctx context.Context, m *message) error
	// subscribe subscribes to filters at qos and returns the SUBACK's reason
	// code (granted QoS, or 0x80 and above for a refusal) of each filter.
	subscribe(ctx context.Context, filters []string, qos byte, p *props) ([]byte, error)
	// disconnect sends DISCONNECT, with the -D disconnect properties at 5.0,
	// and closes the connection.
	disconnect()
	// lost yields the reason when the connection ends other than by
	// disconnect.
	lost() <-chan error
}

// message is a message to publish, or one received. A received one is
// acknowledged (at QoS 1 and 2) once handled is closed.
type message struct {
	topic   string
	payload []byte
	qos     byte
	retain  bool
	id      uint16 // packet id of a received message of QoS 1 or 2
	props   *props // 5.0 properties; nil for none, and always at 3.1.1
	handled chan struct{}
}

// connect connects to the broker as o says. onMessage, which may be nil,
// is called on a library goroutine with each message received, one at a
// time; it is acknowledged when onMessage returns.
func connect(ctx context.Context, o *clientOpts, w *wire, onMessage func(*message)) (mqttClient, error) {
	tcfg, err := o.tlsConfig()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	dial := func() (net.Conn, error) {
		nc, err := dialBroker(ctx, o, tcfg)
		if err != nil {
			return nil, err
		}
		return w.attach(nc), nil
	}
	if o.version == codec.Version5 {
		return connectV5(ctx, o, dial, onMessage)
	}
	return connectV3(ctx, o, dial, onMessage)
}

func dialBroker(ctx context.Context, o *clientOpts, tcfg *tls.Config) (net.Conn, error) {
	addr := net.JoinHostPort(o.host, strconv.Itoa(o.port))
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to %s: %w", addr, err)
	}
	if tcfg == nil {
		return nc, nil
	}
	tc := tls.Client(nc, tcfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	return tc, nil
}

// tlsConfig builds the TLS settings of the flags; nil without TLS.
func (o *clientOpts) tlsConfig() (*tls.Config, error) {
	if !o.tls {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.host}
	if o.tlsVersion != 0 {
		cfg.MinVersion, cfg.MaxVersion = o.tlsVersion, o.tlsVersion
	}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("--cafile: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cafile %s: no PEM certificate", o.caFile)
		}
	}
	if o.certFile != "" {
		pair, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--cert and --key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if o.insecure {
		// As mosquitto's --insecure: the broker's certificate must still
		// chain to a trusted CA, only the host name goes unchecked.
		roots := cfg.RootCAs
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the broker sent no certificate")
			}
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	}
	return cfg, nil
}

// refusedError is a refusal by the broker: of the connection (CONNACK), a
// message (PUBACK, PUBREC), a subscription (SUBACK), or a DISCONNECT it sent.
type refusedError struct {
	what   string // "connection refused", "publish refused", "disconnected by the broker"
	code   byte
	name   string
	reason string // 5.0 reason string, if the broker gave one
}

func (e *refusedError) Error() string {
	s := fmt.Sprintf("%s: %s (0x%02X)", e.what, e.name, e.code)
	if e.reason != "" {
		s += ": " + e.reason
	}
	return s
}

// reasonName names a reason code: a 5.0 reason code, or a 3.1.1 CONNACK
// return code or SUBACK failure.
func reasonName(version byte, t codec.PacketType, code byte) string {
	if version == codec.Version5 {
		return codec.ReasonCode(code).String()
	}
	if t == codec.CONNACK {
		switch code {
		case codec.ConnRefusedProtocolVersion:
			return "unacceptable protocol version"
		case codec.ConnRefusedIdentifierRejected:
			return "identifier rejected"
		case codec.ConnRefusedServerUnavailable:
			return "server unavailable"
		case codec.ConnRefusedBadUsernameOrPass:
			return "bad user name or password"
		case codec.ConnRefusedNotAuthorized:
			return "not authorized"
		}
		return "unknown return code"
	}
	if code == 0x80 {
		return "failure"
	}
	return "unknown return code"
}
