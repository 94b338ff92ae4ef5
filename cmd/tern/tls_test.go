package main

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/tern-mqtt/tern/internal/testutil"
)

// startServe runs tern serve with args in the background until the test
// ends (SIGTERM), and waits until addr accepts TCP connections.
func startServe(t *testing.T, args ...string) {
	t.Helper()
	code := make(chan int, 1)
	go func() { code <- serve(args) }()
	t.Cleanup(func() {
		_ = syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
		select {
		case <-code:
		case <-time.After(5 * time.Second):
			t.Error("serve did not return")
		}
	})
}

func dialTLSRetry(t *testing.T, addr string, cfg *tls.Config) *tls.Conn {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		d := tls.Dialer{Config: cfg}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := d.DialContext(ctx, "tcp", addr)
		cancel()
		if err == nil {
			return c.(*tls.Conn)
		}
		if time.Now().After(deadline) {
			t.Fatalf("TLS dial %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pahoOver(t *testing.T, c *tls.Conn, cp *paho.Connect) (*paho.Client, chan *paho.Publish, *paho.Connack) {
	t.Helper()
	msgs := make(chan *paho.Publish, 100)
	pc := paho.NewClient(paho.ClientConfig{Conn: c, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(pr paho.PublishReceived) (bool, error) { msgs <- pr.Packet; return true, nil }}})
	ack, err := pc.Connect(testutil.Ctx(t), cp)
	if err != nil && ack == nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = pc.Disconnect(&paho.Disconnect{}) })
	return pc, msgs, ack
}

// The certificate and key are read again on SIGHUP: new handshakes present
// the new certificate, and a connection made before goes on working.
func TestServeTLSCertificateReload(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t, "reload CA")
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writePair := func() {
		c, k := ca.IssuePEM(t, "broker", true)
		testutil.Require(t, os.WriteFile(cert, c, 0o600), "cert")
		testutil.Require(t, os.WriteFile(key, k, 0o600), "key")
	}
	writePair()
	addr, taddr := "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t)
	startServe(t, "--listen", addr, "--tls-listen", taddr, "--tls-cert", cert, "--tls-key", key, "--allow-anonymous",
		"--log-level", "error", "--shutdown-timeout", "3s")
	cfg := &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"}
	first := dialTLSRetry(t, taddr, cfg)
	serial1 := first.ConnectionState().PeerCertificates[0].SerialNumber
	pc, msgs, _ := pahoOver(t, first, &paho.Connect{ClientID: "before", CleanStart: true, KeepAlive: 30})
	_, err := pc.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "r", QoS: 1}}})
	testutil.Require(t, err, "subscribe")

	writePair()
	testutil.Require(t, syscall.Kill(syscall.Getpid(), syscall.SIGHUP), "SIGHUP")
	for deadline := time.Now().Add(5 * time.Second); ; {
		c := dialTLSRetry(t, taddr, cfg)
		serial := c.ConnectionState().PeerCertificates[0].SerialNumber
		c.Close()
		if serial.Cmp(serial1) != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the new certificate was not presented after SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, err = pc.Publish(testutil.Ctx(t), &paho.Publish{Topic: "r", QoS: 1, Payload: []byte("still here")})
	testutil.Require(t, err, "publish on the connection made before the reload")
	select {
	case m := <-msgs:
		testutil.Equal(t, string(m.Payload), "still here", "payload")
	case <-time.After(5 * time.Second):
		t.Fatal("the connection made before the reload stopped working")
	}
}

// mTLS with --tls-cert-as-username: the certificate authenticates the
// client (no password, no --allow-anonymous) and its common name is the user
// name the ACL file's sections name.
func TestServeTLSCertificateAsUsername(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t, "devices CA")
	c, k := ca.IssuePEM(t, "broker", true)
	cert, key, caFile, acl := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "ca.pem"), filepath.Join(dir, "acl")
	testutil.Require(t, os.WriteFile(cert, c, 0o600), "cert")
	testutil.Require(t, os.WriteFile(key, k, 0o600), "key")
	testutil.Require(t, os.WriteFile(caFile, ca.PEM, 0o600), "ca")
	testutil.Require(t, os.WriteFile(acl, []byte("user device-1\ntopic readwrite dev/1/#\n"), 0o600), "acl")
	addr, taddr := "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t)
	startServe(t, "--listen", addr, "--tls-listen", taddr, "--tls-cert", cert, "--tls-key", key,
		"--tls-client-ca", caFile, "--tls-client-auth", "require", "--tls-cert-as-username", "--acl-file", acl,
		"--log-level", "error", "--shutdown-timeout", "3s")
	conn := dialTLSRetry(t, taddr, &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{ca.Issue(t, "device-1", false)}})
	pc, _, ack := pahoOver(t, conn, &paho.Connect{ClientID: "d1", CleanStart: true, KeepAlive: 30})
	testutil.Equal(t, ack.ReasonCode, byte(0), "CONNACK for a client authenticated by its certificate")
	_, err := pc.Publish(testutil.Ctx(t), &paho.Publish{Topic: "dev/1/t", QoS: 1, Payload: []byte("ok")})
	testutil.Require(t, err, "publish to its own topic")
	res, _ := pc.Publish(testutil.Ctx(t), &paho.Publish{Topic: "dev/2/t", QoS: 1, Payload: []byte("no")})
	if res == nil || res.ReasonCode != 0x87 {
		t.Fatalf("publish to another device's topic: %+v, want PUBACK 0x87", res)
	}
	// The plain listener has no certificates: nobody gets in there.
	_, ack5, _ := testutil.DialV5(addr, &paho.Connect{ClientID: "plain", CleanStart: true})
	if ack5 == nil || ack5.ReasonCode != 0x87 {
		t.Fatalf("anonymous client on the plain listener: %+v, want CONNACK 0x87", ack5)
	}
}

// --ws-listen serves MQTT over WebSocket at /mqtt to a stock client.
func TestServeWebSocket(t *testing.T) {
	addr, waddr := "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t)
	startServe(t, "--listen", addr, "--ws-listen", waddr, "--allow-anonymous", "--log-level", "error", "--shutdown-timeout", "3s")
	got := make(chan mqtt.Message, 1)
	o := mqtt.NewClientOptions().AddBroker("ws://" + waddr + "/mqtt").SetClientID("ws").SetProtocolVersion(4).
		SetAutoReconnect(false).SetConnectTimeout(2 * time.Second).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { got <- m })
	c := mqtt.NewClient(o)
	for deadline := time.Now().Add(5 * time.Second); ; {
		tok := c.Connect()
		tok.Wait()
		if tok.Error() == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect over WebSocket: %v", tok.Error())
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer c.Disconnect(0)
	for _, tok := range []mqtt.Token{c.Subscribe("ws/t", 1, nil), c.Publish("ws/t", 1, false, "over ws")} {
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe/publish: %v", tok.Error())
		}
	}
	select {
	case m := <-got:
		testutil.Equal(t, string(m.Payload()), "over ws", "payload")
	case <-time.After(5 * time.Second):
		t.Fatal("no message over WebSocket")
	}
}
