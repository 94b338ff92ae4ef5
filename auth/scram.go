package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SCRAM-SHA-256 (RFC 5802, RFC 7677), the server side, for MQTT 5.0
// enhanced authentication. Credentials are password file lines
//
//	user:$scram-sha-256$<iterations>$<salt>$<StoredKey>$<ServerKey>
//
// (base64), which tern passwd -scram writes; the broker never sees the
// password, and a plain-password CONNECT checks against the same line.
// Mosquitto does not read these lines.

// ScramMethod is the MQTT Authentication Method name.
const ScramMethod = "SCRAM-SHA-256"

// ScramHash returns a password file hash field for SCRAM-SHA-256.
func ScramHash(password []byte, iterations int) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	stored, server := scramKeys(password, salt, iterations)
	b := base64.StdEncoding
	return "$scram-sha-256$" + strconv.Itoa(iterations) + "$" + b.EncodeToString(salt) + "$" + b.EncodeToString(stored) + "$" + b.EncodeToString(server)
}

func scramKeys(password, salt []byte, iterations int) (stored, server []byte) {
	salted, err := pbkdf2.Key(sha256.New, string(password), salt, iterations, sha256.Size)
	if err != nil {
		panic(err)
	}
	clientKey := hmacSHA256(salted, []byte("Client Key"))
	s := sha256.Sum256(clientKey)
	return s[:], hmacSHA256(salted, []byte("Server Key"))
}

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

func parseScram(h string) (entry, error) {
	f := strings.Split(strings.TrimPrefix(h, "$scram-sha-256$"), "$")
	if len(f) != 4 {
		return entry{}, errors.New("bad $scram-sha-256$ hash: want iterations$salt$StoredKey$ServerKey")
	}
	it, err := strconv.Atoi(f[0])
	if err != nil || it < 1 || it > MaxIterations {
		return entry{}, errors.New("bad $scram-sha-256$ hash: iterations must be 1 to 10000000")
	}
	b := base64.StdEncoding
	salt, e1 := b.DecodeString(f[1])
	stored, e2 := b.DecodeString(f[2])
	server, e3 := b.DecodeString(f[3])
	if e1 != nil || e2 != nil || e3 != nil || len(stored) != sha256.Size || len(server) != sha256.Size {
		return entry{}, errors.New("bad $scram-sha-256$ hash: base64 salt and two 32-byte keys")
	}
	return entry{kind: 's', iterations: it, salt: salt, hash: stored, serverKey: server, raw: h}, nil
}

// ErrScram is a failed SCRAM exchange: bad messages or a wrong proof.
var ErrScram = errors.New("auth: SCRAM authentication failed")

// ScramExchange is one server side of a SCRAM-SHA-256 exchange.
type ScramExchange struct {
	p           *Passwords
	user        string
	e           entry
	known       bool
	gs2         string // the base64 GS2 header client-final must repeat
	clientBare  string
	serverFirst string
	nonce       string
	step        int
}

// StartScram begins an exchange against the passwords in p.
func (p *Passwords) StartScram() *ScramExchange { return &ScramExchange{p: p} }

// User is the authenticated user name, once the exchange is done.
func (x *ScramExchange) User() string { return x.user }

// Step takes the client's message and returns the server's; done once the
// client is authenticated (the reply is then server-final).
func (x *ScramExchange) Step(msg []byte) (reply []byte, done bool, err error) {
	x.step++
	switch x.step {
	case 1:
		return x.first(string(msg))
	case 2:
		return x.final(string(msg))
	}
	return nil, false, ErrScram
}

// first reads client-first "n,,n=user,r=nonce". No channel binding is
// offered, so "y,," (a client that could bind but thinks the server
// cannot) is accepted too (RFC 5802 section 6).
func (x *ScramExchange) first(m string) ([]byte, bool, error) {
	switch {
	case strings.HasPrefix(m, "n,,"):
		x.gs2 = "biws" // base64("n,,")
	case strings.HasPrefix(m, "y,,"):
		x.gs2 = "eSws" // base64("y,,")
	default:
		return nil, false, fmt.Errorf("%w: want a GS2 header n,, or y,, (no channel binding, no authzid)", ErrScram)
	}
	x.clientBare = m[3:]
	if strings.HasPrefix(x.clientBare, "m=") { // a mandatory extension we do not know
		return nil, false, fmt.Errorf("%w: unsupported mandatory extension", ErrScram)
	}
	attrs := scramAttrs(x.clientBare)
	user, cnonce := attrs["n"], attrs["r"]
	if user == "" || cnonce == "" {
		return nil, false, fmt.Errorf("%w: client-first without n= or r=", ErrScram)
	}
	x.user = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(user)
	x.e, x.known = x.p.users[x.user]
	if !x.known || x.e.kind != 's' {
		// Go on with made-up values so that the client cannot tell which
		// users exist; the proof will fail.
		x.known = false
		x.e = entry{kind: 's', iterations: ScramIterations, salt: fakeSalt(x.user), hash: make([]byte, 32), serverKey: make([]byte, 32)}
	}
	snonce := make([]byte, 18)
	_, _ = rand.Read(snonce)
	x.nonce = cnonce + base64.RawStdEncoding.EncodeToString(snonce)
	x.serverFirst = "r=" + x.nonce + ",s=" + base64.StdEncoding.EncodeToString(x.e.salt) + ",i=" + strconv.Itoa(x.e.iterations)
	return []byte(x.serverFirst), false, nil
}

// final reads client-final "c=biws,r=nonce,p=proof".
func (x *ScramExchange) final(m string) ([]byte, bool, error) {
	i := strings.LastIndex(m, ",p=")
	if i < 0 {
		return nil, false, fmt.Errorf("%w: client-final without a proof", ErrScram)
	}
	withoutProof := m[:i]
	attrs := scramAttrs(withoutProof)
	if attrs["c"] != x.gs2 || attrs["r"] != x.nonce {
		return nil, false, fmt.Errorf("%w: channel binding or nonce mismatch", ErrScram)
	}
	proof, err := base64.StdEncoding.DecodeString(m[i+3:])
	if err != nil || len(proof) != sha256.Size {
		return nil, false, fmt.Errorf("%w: bad proof", ErrScram)
	}
	authMessage := x.clientBare + "," + x.serverFirst + "," + withoutProof
	sig := hmacSHA256(x.e.hash, []byte(authMessage))
	clientKey := make([]byte, sha256.Size)
	for k := range clientKey {
		clientKey[k] = proof[k] ^ sig[k]
	}
	stored := sha256.Sum256(clientKey)
	if subtle.ConstantTimeCompare(stored[:], x.e.hash) != 1 || !x.known {
		return nil, false, ErrScram
	}
	serverSig := hmacSHA256(x.e.serverKey, []byte(authMessage))
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSig)), true, nil
}

func scramAttrs(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if len(kv) >= 2 && kv[1] == '=' {
			out[kv[:1]] = kv[2:]
		}
	}
	return out
}

// fakeSalt is stable per user name, so that asking twice about an unknown
// user gets the same salt, as for a real one; keyed by a secret drawn once
// per process, so that nobody can compute it to tell a real salt from it.
func fakeSalt(user string) []byte {
	return hmacSHA256(decoyKey, []byte(user))[:16]
}

var decoyKey = func() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}()

// ScramIterations is the PBKDF2 count tern passwd -scram writes (RFC 7677's
// minimum); made-up answers for unknown users give it too.
const ScramIterations = 4096
