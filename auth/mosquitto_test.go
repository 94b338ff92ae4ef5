package auth

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The file tern passwd writes works in Mosquitto unchanged: a Mosquitto
// broker given it accepts the password and refuses a wrong one.
func TestMosquittoAcceptsOurHashes(t *testing.T) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, err := os.Stat("/usr/sbin/mosquitto"); err != nil {
			t.Skip("mosquitto not installed")
		}
		bin = "/usr/sbin/mosquitto"
	}
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	if err := SetPassword(pw, "jane", Hash7([]byte("s3cret"), DefaultIterations)); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()
	conf := filepath.Join(dir, "mosquitto.conf")
	user := "" // as root, Mosquitto would drop to user mosquitto, who cannot read the test's files
	if os.Geteuid() == 0 {
		user = "user root\n"
	}
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("%slistener %s 127.0.0.1\nallow_anonymous false\npassword_file %s\npersistence false\n", user, port, pw)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	connack := func(user, pass string) byte {
		var c net.Conn
		for deadline := time.Now().Add(5 * time.Second); ; {
			if c, err = net.Dial("tcp", addr); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("%v; mosquitto said: %s", err, out.String())
		}
		defer c.Close()
		body := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0xC2, 0, 30, 0, 1, 'x'}
		body = append(body, 0, byte(len(user)))
		body = append(body, user...)
		body = append(body, 0, byte(len(pass)))
		body = append(body, pass...)
		_, _ = c.Write(append([]byte{0x10, byte(len(body))}, body...))
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		ack := make([]byte, 4)
		if _, err := io.ReadFull(c, ack); err != nil {
			t.Fatalf("no CONNACK from mosquitto: %v", err)
		}
		return ack[3]
	}
	if rc := connack("jane", "s3cret"); rc != 0 {
		t.Fatalf("mosquitto refused our hash: return code %d", rc)
	}
	if rc := connack("jane", "wrong"); rc == 0 {
		t.Fatal("mosquitto accepted a wrong password")
	}
}
