package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWT verifies JSON Web Tokens that clients put in the CONNECT password
// field. The key file decides the algorithm, so that a token cannot choose
// a weaker one: a PEM RSA public key (or certificate) accepts RS256 only, an
// EC P-256 one ES256 only, and anything else is an HS256 secret (the file's
// bytes, trailing newline removed). Tokens must carry an expiry ("exp");
// with an audience set, "aud" must name it. Claims "publish" and "subscribe"
// (lists of topic filters) restrict the client to those topics. Reload
// re-reads the key (SIGHUP).
type JWT struct {
	path     string
	audience string
	key      atomic.Pointer[jwtKey]
}

type jwtKey struct {
	key    any
	method string
}

// TokenClaims are the claims Tern reads.
type TokenClaims struct {
	jwt.RegisteredClaims
	Publish   []string `json:"publish,omitempty"`
	Subscribe []string `json:"subscribe,omitempty"`
}

// LoadJWT reads the key file.
func LoadJWT(path, audience string) (*JWT, error) {
	j := &JWT{path: path, audience: audience}
	if err := j.Reload(); err != nil {
		return nil, err
	}
	return j, nil
}

// Reload reads the key again; on an error the old key stays.
func (j *JWT) Reload() error {
	b, err := os.ReadFile(j.path)
	if err != nil {
		return err
	}
	k, err := parseJWTKey(b)
	if err != nil {
		return fmt.Errorf("%s: %w", j.path, err)
	}
	j.key.Store(k)
	return nil
}

func parseJWTKey(b []byte) (*jwtKey, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		var pub any
		switch blk.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, err
			}
			pub = c.PublicKey
		default:
			p, err := x509.ParsePKIXPublicKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("want a PEM public key or certificate: %w", err)
			}
			pub = p
		}
		switch k := pub.(type) {
		case *rsa.PublicKey:
			return &jwtKey{key: k, method: "RS256"}, nil
		case *ecdsa.PublicKey:
			if k.Curve.Params().BitSize != 256 {
				return nil, errors.New("an EC key must be P-256 (ES256)")
			}
			return &jwtKey{key: k, method: "ES256"}, nil
		}
		return nil, fmt.Errorf("unsupported public key %T (want RSA or EC P-256)", pub)
	}
	if bytes.Contains(b, []byte("-----BEGIN")) {
		// A PEM block that did not parse must not become an HS256 secret:
		// a public key's text is public, and anyone could sign with it.
		return nil, errors.New("a PEM block that does not parse (want a public key or certificate)")
	}
	secret := bytes.TrimRight(b, "\r\n")
	if len(secret) < 32 {
		return nil, errors.New("an HS256 secret must be at least 32 bytes")
	}
	return &jwtKey{key: secret, method: "HS256"}, nil
}

// LooksLikeToken reports whether a password has a JWT's shape, so that a
// broker with both a password file and a JWT key knows which to ask.
func LooksLikeToken(password []byte) bool {
	return bytes.Count(password, []byte{'.'}) == 2 && bytes.HasPrefix(password, []byte("eyJ"))
}

// Verify checks a token and returns its claims.
func (j *JWT) Verify(token []byte, now time.Time) (*TokenClaims, error) {
	k := j.key.Load()
	opts := []jwt.ParserOption{jwt.WithValidMethods([]string{k.method}), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now })}
	if j.audience != "" {
		opts = append(opts, jwt.WithAudience(j.audience))
	}
	var claims TokenClaims
	_, err := jwt.ParseWithClaims(string(token), &claims, func(*jwt.Token) (any, error) { return k.key, nil }, opts...)
	if err != nil {
		return nil, err
	}
	for _, f := range append(append([]string{}, claims.Publish...), claims.Subscribe...) {
		if err := validFilter(f); err != nil {
			return nil, fmt.Errorf("token claims: %w", err)
		}
	}
	return &claims, nil
}

// Rules returns the topic restrictions of the claims, nil when the token
// has none (the client may then use every topic, as far as the token says).
func (c *TokenClaims) Rules() *ClaimRules {
	if c.Publish == nil && c.Subscribe == nil {
		return nil
	}
	r := &ClaimRules{}
	for _, f := range c.Publish {
		r.publish = append(r.publish, newFilter(f))
	}
	for _, f := range c.Subscribe {
		r.subscribe = append(r.subscribe, newFilter(f))
	}
	return r
}

// ClaimRules are a token's topic claims as rules: "publish" filters grant
// writing, "subscribe" filters reading; nothing else is granted.
type ClaimRules struct {
	publish, subscribe []filter
}

func (r *ClaimRules) CanPublish(topic []byte) bool {
	for _, f := range r.publish {
		if f.matches(topic) {
			return true
		}
	}
	return false
}

func (r *ClaimRules) CanReceive(topic []byte) bool {
	for _, f := range r.subscribe {
		if f.matches(topic) {
			return true
		}
	}
	return false
}

func (r *ClaimRules) CanSubscribe(filter []byte) bool {
	g := strings.Split(string(filter), "/")
	for _, f := range r.subscribe {
		if intersects(f.levels, g) {
			return true
		}
	}
	return false
}
