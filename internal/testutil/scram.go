package testutil

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// ScramClient is the client side of SCRAM-SHA-256 (RFC 5802), for tests.
type ScramClient struct {
	User, Password string
	nonce, bare    string
	serverSig      []byte
}

// First returns client-first.
func (c *ScramClient) First() []byte {
	n := make([]byte, 18)
	_, _ = rand.Read(n)
	c.nonce = base64.RawStdEncoding.EncodeToString(n)
	c.bare = "n=" + c.User + ",r=" + c.nonce
	return []byte("n,," + c.bare)
}

// Final answers server-first with client-final.
func (c *ScramClient) Final(serverFirst []byte) ([]byte, error) {
	attrs := map[string]string{}
	for _, kv := range strings.Split(string(serverFirst), ",") {
		if len(kv) >= 2 {
			attrs[kv[:1]] = kv[2:]
		}
	}
	salt, err := base64.StdEncoding.DecodeString(attrs["s"])
	if err != nil {
		return nil, err
	}
	it, err := strconv.Atoi(attrs["i"])
	if err != nil || !strings.HasPrefix(attrs["r"], c.nonce) {
		return nil, errors.New("bad server-first")
	}
	salted, err := pbkdf2.Key(sha256.New, c.Password, salt, it, sha256.Size)
	if err != nil {
		return nil, err
	}
	mac := func(k []byte, m string) []byte { h := hmac.New(sha256.New, k); h.Write([]byte(m)); return h.Sum(nil) }
	clientKey := mac(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	without := "c=biws,r=" + attrs["r"]
	authMessage := c.bare + "," + string(serverFirst) + "," + without
	sig := mac(stored[:], authMessage)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	c.serverSig = mac(mac(salted, "Server Key"), authMessage)
	return []byte(without + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

// Verify checks server-final, which proves the server knew the password.
func (c *ScramClient) Verify(serverFinal []byte) bool {
	return string(serverFinal) == "v="+base64.StdEncoding.EncodeToString(c.serverSig)
}
