package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tern-mqtt/tern/auth"
	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/internal/testutil"
)

func runPasswd(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	rc := passwdCmd(args, strings.NewReader(stdin), &out, &errOut)
	return rc, out.String() + errOut.String()
}

func TestPasswdCommand(t *testing.T) {
	file := filepath.Join(t.TempDir(), "passwd")
	if rc, out := runPasswd(t, "s3cret\n", file, "alice"); rc != 0 {
		t.Fatalf("tern passwd = %d: %s", rc, out)
	}
	if rc, out := runPasswd(t, "other\n", file, "bob"); rc != 0 {
		t.Fatalf("tern passwd = %d: %s", rc, out)
	}
	fi, err := os.Stat(file)
	testutil.Require(t, err, "stat")
	testutil.Equal(t, fi.Mode().Perm(), os.FileMode(0o600), "mode of a new password file")
	p, err := auth.LoadPasswords(file)
	testutil.Require(t, err, "load")
	if !p.Check([]byte("alice"), []byte("s3cret")) || !p.Check([]byte("bob"), []byte("other")) {
		t.Fatal("a password tern passwd set does not check")
	}
	if rc, out := runPasswd(t, "", "-D", file, "bob"); rc != 0 {
		t.Fatalf("tern passwd -D = %d: %s", rc, out)
	}
	if p, _ := auth.LoadPasswords(file); p.Len() != 1 {
		t.Fatalf("%d users after -D, want 1", p.Len())
	}
	if rc, _ := runPasswd(t, "\n", file, "carol"); rc != 1 {
		t.Fatalf("empty password: exit %d, want 1", rc)
	}
	if rc, _ := runPasswd(t, "x\n", file); rc != 2 {
		t.Fatalf("missing user: exit %d, want 2", rc)
	}
	if rc, _ := runPasswd(t, "x\n", "-D", file, "nobody"); rc != 1 {
		t.Fatalf("deleting an unknown user: exit %d, want 1", rc)
	}
	// Refused before hashing: 99999999999 iterations would take hours.
	for _, it := range []string{"-5", "10000001", "99999999999"} {
		start := time.Now()
		if rc, out := runPasswd(t, "x\n", "-iterations", it, file, "carol"); rc != 2 || !strings.Contains(out, "-iterations must be") {
			t.Fatalf("-iterations %s: exit %d: %s", it, rc, out)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("-iterations %s refused after %v: it hashed first", it, d)
		}
	}
}

// tern serve with --password-file and --acl-file: CONNACK codes for wrong
// passwords and anonymous clients at both levels, the ACL, and both files
// reloaded on SIGHUP.
func TestServeAccessControl(t *testing.T) {
	dir := t.TempDir()
	pw, acl := filepath.Join(dir, "passwd"), filepath.Join(dir, "acl")
	if rc, out := runPasswd(t, "one\n", pw, "alice"); rc != 0 {
		t.Fatal(out)
	}
	testutil.Require(t, os.WriteFile(acl, []byte("user alice\ntopic readwrite a/#\n"), 0o600), "write acl")
	addr := "127.0.0.1:" + freePort(t)
	startServe(t, "--listen", addr, "--password-file", pw, "--acl-file", acl, "--log-level", "error", "--shutdown-timeout", "3s")
	login := func(user, pass string) *paho.Connect {
		cp := &paho.Connect{ClientID: "c-" + user, CleanStart: true}
		if user != "" {
			cp.UsernameFlag, cp.Username = true, user
		}
		if pass != "" {
			cp.PasswordFlag, cp.Password = true, []byte(pass)
		}
		return cp
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, _, err := testutil.DialV5(addr, login("alice", "one"))
		if err == nil {
			_ = c.Disconnect(&paho.Disconnect{})
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker did not accept alice: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	connack5 := func(user, pass string) byte {
		c, ack, err := testutil.DialV5(addr, login(user, pass))
		if err == nil {
			_ = c.Disconnect(&paho.Disconnect{})
			return 0
		}
		if ack == nil {
			t.Fatalf("no CONNACK: %v", err)
		}
		return ack.ReasonCode
	}
	connack311 := func(user, pass string) codec.ReasonCode {
		r := testutil.DialRaw(t, addr)
		defer r.Close()
		c := &codec.Connect{ProtocolVersion: codec.Version311, CleanStart: true, KeepAlive: 30, ClientID: []byte("r-" + user)}
		if user != "" {
			c.UsernameFlag, c.Username = true, []byte(user)
		}
		if pass != "" {
			c.PasswordFlag, c.Password = true, []byte(pass)
		}
		r.Send(&codec.Packet{Type: codec.CONNECT, Connect: *c})
		return r.Expect(codec.CONNACK, 5*time.Second).Connack.ReasonCode
	}
	testutil.Equal(t, connack5("alice", "wrong"), byte(codec.BadUserNameOrPassword), "5.0 CONNACK for a wrong password")
	testutil.Equal(t, connack5("mallory", "one"), byte(codec.BadUserNameOrPassword), "5.0 CONNACK for an unknown user")
	testutil.Equal(t, connack5("", ""), byte(codec.NotAuthorized), "5.0 CONNACK without a user name (no --allow-anonymous)")
	testutil.Equal(t, connack311("alice", "wrong"), codec.BadUserNameOrPassword, "3.1.1 CONNACK (return code 4) for a wrong password")
	testutil.Equal(t, connack311("", ""), codec.NotAuthorized, "3.1.1 CONNACK (return code 5) without a user name")

	subscribeCodes := func(pass string) []byte {
		c := testutil.ConnectV5(t, addr, login("alice", pass))
		ack, err := c.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "a/#"}, {Topic: "b/#"}}})
		if ack == nil {
			t.Fatalf("no SUBACK: %v", err)
		}
		_ = c.Disconnect(&paho.Disconnect{})
		return ack.Reasons
	}
	if got := subscribeCodes("one"); got[0] != 0 || got[1] != byte(codec.NotAuthorized) {
		t.Fatalf("SUBACK % x, want 00 87", got)
	}

	// Change both files, then SIGHUP.
	if rc, out := runPasswd(t, "two\n", pw, "alice"); rc != 0 {
		t.Fatal(out)
	}
	testutil.Require(t, os.WriteFile(acl, []byte("user alice\ntopic readwrite a/#\ntopic read b/#\n"), 0o600), "write acl")
	testutil.Require(t, syscall.Kill(syscall.Getpid(), syscall.SIGHUP), "SIGHUP")
	for deadline := time.Now().Add(5 * time.Second); connack5("alice", "two") != 0; {
		if time.Now().After(deadline) {
			t.Fatal("the new password was not taken after SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}
	testutil.Equal(t, connack5("alice", "one"), byte(codec.BadUserNameOrPassword), "the old password after the reload")
	if got := subscribeCodes("two"); got[0] != 0 || got[1] != 0 {
		t.Fatalf("SUBACK % x after the ACL reload, want 00 00", got)
	}
}

// --jwt-key: a token in the password field authenticates; an expired one
// gets 0x86; its publish claim restricts the topics.
func TestServeJWT(t *testing.T) {
	dir := t.TempDir()
	secret := []byte("a secret of at least thirty-two bytes, for HS256")
	key := filepath.Join(dir, "jwt.key")
	testutil.Require(t, os.WriteFile(key, secret, 0o600), "key")
	addr := "127.0.0.1:" + freePort(t)
	startServe(t, "--listen", addr, "--jwt-key", key, "--jwt-audience", "tern", "--log-level", "error", "--shutdown-timeout", "3s")
	token := func(exp time.Duration, publish ...string) string {
		c := auth.TokenClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "dev-1", Audience: jwt.ClaimStrings{"tern"},
			ExpiresAt: jwt.NewNumericDate(time.Now().Add(exp))}, Publish: publish, Subscribe: publish}
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
		testutil.Require(t, err, "sign")
		return s
	}
	dial := func(tok string) (*testutil.V5, *paho.Connack, error) {
		cp := &paho.Connect{ClientID: "dev-1", CleanStart: true, UsernameFlag: true, Username: "dev-1", PasswordFlag: true, Password: []byte(tok)}
		var c *testutil.V5
		var ack *paho.Connack
		var err error
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			c, ack, err = testutil.DialV5(addr, cp)
			if ack != nil || time.Now().After(deadline) {
				return c, ack, err
			}
		}
	}
	_, ack, _ := dial(token(-time.Minute))
	if ack == nil || ack.ReasonCode != 0x86 {
		t.Fatalf("expired token: CONNACK %+v, want 0x86", ack)
	}
	// A valid token under another user name would borrow that user's ACL.
	impostor := &paho.Connect{ClientID: "imp", CleanStart: true, UsernameFlag: true, Username: "admin", PasswordFlag: true, Password: []byte(token(time.Hour))}
	if _, ack, _ := testutil.DialV5(addr, impostor); ack == nil || ack.ReasonCode != 0x86 {
		t.Fatalf("token under another user name: CONNACK %+v, want 0x86", ack)
	}
	c, ack, err := dial(token(time.Hour, "dev/1/#"))
	if err != nil || ack.ReasonCode != 0 {
		t.Fatalf("valid token: %v %+v", err, ack)
	}
	defer c.Disconnect(&paho.Disconnect{})
	_, err = c.Publish(testutil.Ctx(t), &paho.Publish{Topic: "dev/1/t", QoS: 1, Payload: []byte("ok")})
	testutil.Require(t, err, "publish to a claimed topic")
	res, _ := c.Publish(testutil.Ctx(t), &paho.Publish{Topic: "dev/2/t", QoS: 1, Payload: []byte("no")})
	if res == nil || res.ReasonCode != 0x87 {
		t.Fatalf("publish outside the claims: %+v, want PUBACK 0x87", res)
	}
	// The connection ends when its token does: DISCONNECT 0xA0.
	short, ack, err := dial(token(1500*time.Millisecond, "dev/1/#"))
	if err != nil || ack.ReasonCode != 0 {
		t.Fatalf("short token: %v %+v", err, ack)
	}
	select {
	case d := <-short.Disconnects:
		testutil.Equal(t, d.ReasonCode, byte(0xA0), "DISCONNECT when the token expires")
	case <-time.After(5 * time.Second):
		t.Fatal("the connection outlived its token")
	}
}

// tern passwd -scram writes SCRAM-SHA-256 keys; tern serve offers the
// method with them (5.0 AUTH exchange) and takes the plain password too.
func TestServeScram(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "passwd")
	if rc, out := runPasswd(t, "s3cret\n", "-scram", pw, "sam"); rc != 0 {
		t.Fatal(out)
	}
	addr := "127.0.0.1:" + freePort(t)
	startServe(t, "--listen", addr, "--password-file", pw, "--log-level", "error", "--shutdown-timeout", "3s")
	var c *testutil.V5
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, _, err = testutil.DialV5(addr, &paho.Connect{ClientID: "plain", CleanStart: true, UsernameFlag: true, Username: "sam",
			PasswordFlag: true, Password: []byte("s3cret")}); err == nil || time.Now().After(deadline) {
			break
		}
	}
	testutil.Require(t, err, "plain password against a SCRAM line")
	_ = c.Disconnect(&paho.Disconnect{})

	sc := &testutil.ScramClient{User: "sam", Password: "s3cret"}
	r := testutil.DialRaw(t, addr)
	defer r.Close()
	cp := codec.Connect{ProtocolVersion: codec.Version5, CleanStart: true, KeepAlive: 30, ClientID: []byte("scram")}
	cp.Props.SetAuthMethod([]byte(auth.ScramMethod))
	cp.Props.SetAuthData(sc.First())
	r.Send(&codec.Packet{Type: codec.CONNECT, Connect: cp})
	a := r.Expect(codec.AUTH, 5*time.Second)
	final, err := sc.Final(a.Auth.Props.AuthData)
	testutil.Require(t, err, "client-final")
	reply := codec.Auth{ReasonCode: codec.ContinueAuthentication}
	reply.Props.SetAuthMethod([]byte(auth.ScramMethod))
	reply.Props.SetAuthData(final)
	r.Send(&codec.Packet{Type: codec.AUTH, Auth: reply})
	ack := r.Expect(codec.CONNACK, 5*time.Second).Connack
	if ack.ReasonCode != codec.Success || !sc.Verify(ack.Props.AuthData) {
		t.Fatalf("CONNACK %v after SCRAM", ack.ReasonCode)
	}
}
