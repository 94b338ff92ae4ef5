package auth

import (
	"strings"
	"testing"

	"github.com/tern-mqtt/tern/internal/testutil"
)

func scramRun(t *testing.T, p *Passwords, user, password string) (ok, serverVerified bool) {
	t.Helper()
	c := &testutil.ScramClient{User: user, Password: password}
	x := p.StartScram()
	serverFirst, done, err := x.Step(c.First())
	if err != nil || done {
		t.Fatalf("first step: %v %v", done, err)
	}
	final, err := c.Final(serverFirst)
	if err != nil {
		t.Fatal(err)
	}
	serverFinal, done, err := x.Step(final)
	if err != nil {
		return false, false
	}
	return done && x.User() == user, c.Verify(serverFinal)
}

func TestScram(t *testing.T) {
	p, err := ParsePasswords(strings.NewReader("sam:" + ScramHash([]byte("pass word"), 4096) + "\n" + mosquittoFile))
	if err != nil {
		t.Fatal(err)
	}
	if ok, verified := scramRun(t, p, "sam", "pass word"); !ok || !verified {
		t.Fatalf("right password: ok %v, server verified %v", ok, verified)
	}
	for _, c := range [][2]string{{"sam", "wrong"}, {"nobody", "pass word"}, {"alice", "secret1"}} { // alice has no SCRAM keys
		if ok, _ := scramRun(t, p, c[0], c[1]); ok {
			t.Errorf("%s/%s authenticated", c[0], c[1])
		}
	}
	// A SCRAM line serves a plain-password CONNECT too.
	if !p.Check([]byte("sam"), []byte("pass word")) || p.Check([]byte("sam"), []byte("x")) {
		t.Fatal("Check against a SCRAM line")
	}
	x := p.StartScram()
	if _, _, err := x.Step([]byte("p=tls-unique,,n=sam,r=abc")); err == nil {
		t.Fatal("channel binding accepted")
	}
}
