package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var secret = []byte("0123456789abcdef0123456789abcdef-test-secret")

func writeKey(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pemPublic(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.Claims) []byte {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(s)
}

func claims(exp time.Duration, aud ...string) TokenClaims {
	c := TokenClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "dev-1", Audience: aud}}
	if exp != 0 {
		c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(exp))
	}
	return c
}

func TestJWTHS256(t *testing.T) {
	j, err := LoadJWT(writeKey(t, append(secret, '\n')), "tern")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	good := sign(t, jwt.SigningMethodHS256, secret, claims(time.Hour, "tern"))
	if _, err := j.Verify(good, now); err != nil {
		t.Fatalf("a valid token: %v", err)
	}
	if !LooksLikeToken(good) || LooksLikeToken([]byte("hunter2")) {
		t.Fatal("LooksLikeToken")
	}
	for name, tok := range map[string][]byte{
		"expired":          sign(t, jwt.SigningMethodHS256, secret, claims(-time.Minute, "tern")),
		"no expiry":        sign(t, jwt.SigningMethodHS256, secret, claims(0, "tern")),
		"wrong audience":   sign(t, jwt.SigningMethodHS256, secret, claims(time.Hour, "other")),
		"wrong secret":     sign(t, jwt.SigningMethodHS256, []byte("another secret of at least 32 bytes!"), claims(time.Hour, "tern")),
		"HS512, not HS256": sign(t, jwt.SigningMethodHS512, secret, claims(time.Hour, "tern")),
		"alg none":         sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(time.Hour, "tern")),
		"garbage":          []byte("eyJ.a.b"),
	} {
		if _, err := j.Verify(tok, now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := LoadJWT(writeKey(t, []byte("short")), ""); err == nil {
		t.Error("a 5-byte HS256 secret was accepted")
	}
	// A PEM key that does not parse must not become an HS256 secret anyone
	// holding the (public) text could sign with.
	broken := "-----BEGIN PUBLIC KEY-----\nnot base64 at all, but long enough to pass as a secret\n-----END PUBLIC KEY-----\n"
	if _, err := LoadJWT(writeKey(t, []byte(broken)), ""); err == nil {
		t.Error("a broken PEM public key was taken as an HS256 secret")
	}
}

// The key decides the algorithm: an RSA key accepts RS256 only, so an HS256
// token "signed" with the public key's bytes (the classic confusion) fails.
func TestJWTAsymmetricAndAlgorithmConfusion(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rpub := pemPublic(t, &rk.PublicKey)
	j, err := LoadJWT(writeKey(t, rpub), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Verify(sign(t, jwt.SigningMethodRS256, rk, claims(time.Hour)), time.Now()); err != nil {
		t.Fatalf("RS256: %v", err)
	}
	if _, err := j.Verify(sign(t, jwt.SigningMethodHS256, rpub, claims(time.Hour)), time.Now()); err == nil {
		t.Fatal("an HS256 token keyed with the RSA public key was accepted")
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	je, err := LoadJWT(writeKey(t, pemPublic(t, &ek.PublicKey)), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := je.Verify(sign(t, jwt.SigningMethodES256, ek, claims(time.Hour)), time.Now()); err != nil {
		t.Fatalf("ES256: %v", err)
	}
	if _, err := je.Verify(sign(t, jwt.SigningMethodRS256, rk, claims(time.Hour)), time.Now()); err == nil {
		t.Fatal("an RS256 token was accepted by an EC key")
	}
}

func TestJWTClaimRules(t *testing.T) {
	j, err := LoadJWT(writeKey(t, secret), "")
	if err != nil {
		t.Fatal(err)
	}
	c := claims(time.Hour)
	c.Publish, c.Subscribe = []string{"dev/1/#"}, []string{"cmd/1/+"}
	got, err := j.Verify(sign(t, jwt.SigningMethodHS256, secret, c), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r := got.Rules()
	if !r.CanPublish([]byte("dev/1/temp")) || r.CanPublish([]byte("dev/2/temp")) || r.CanPublish([]byte("cmd/1/x")) {
		t.Fatal("publish claims")
	}
	if !r.CanSubscribe([]byte("cmd/1/+")) || !r.CanSubscribe([]byte("cmd/#")) || r.CanSubscribe([]byte("dev/1/#")) {
		t.Fatal("subscribe claims")
	}
	if !r.CanReceive([]byte("cmd/1/reboot")) || r.CanReceive([]byte("cmd/2/reboot")) {
		t.Fatal("receive claims")
	}
	c.Publish = []string{"bad/#/x"}
	if _, err := j.Verify(sign(t, jwt.SigningMethodHS256, secret, c), time.Now()); err == nil || !strings.Contains(err.Error(), "claims") {
		t.Fatalf("a malformed filter claim: %v", err)
	}
	if c := claims(time.Hour); c.Rules() != nil {
		t.Fatal("a token without topic claims restricts")
	}
}
