// Package auth checks client credentials: password files in Mosquitto's
// format (so that users migrating from Mosquitto keep theirs) and bcrypt.
package auth

import (
	"bufio"
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// Hash formats of a password file line "user:hash":
//
//	$7$<iterations>$<salt>$<hash>  PBKDF2-HMAC-SHA512, 64-byte hash (mosquitto_passwd's default)
//	$6$<salt>$<hash>               SHA-512(password || salt) (mosquitto_passwd -H sha512, Mosquitto ≤ 1.6)
//	$2a$, $2b$, $2y$               bcrypt
//	$scram-sha-256$<i>$<salt>$<StoredKey>$<ServerKey>  SCRAM-SHA-256 keys (scram.go; tern passwd -scram)
//
// Salts and hashes of $6$ and $7$ are standard base64, as Mosquitto writes them.

// DefaultIterations is the PBKDF2 iteration count tern passwd writes. Mosquitto
// writes 101; every CONNECT pays for the count on an event loop, so it stays
// low enough (about half a millisecond) that a reconnect storm of a fleet is
// not a denial of service, and the salt makes precomputation useless.
const DefaultIterations = 1000

// MaxIterations bounds the iterations of a hash read or written: a line
// claiming more would make each CONNECT a denial of service.
const MaxIterations = 10_000_000

// Passwords is a parsed password file. Safe for concurrent use.
type Passwords struct {
	users map[string]entry

	// bcrypt costs tens of milliseconds per check, on an event loop: a
	// successful check is remembered (by a hash of user and password) so
	// that a client reconnecting does not pay again.
	mu   sync.Mutex
	good map[[32]byte]struct{}
}

type entry struct {
	kind       byte // '6', '7', 'b' (bcrypt) or 's' (SCRAM-SHA-256)
	iterations int
	salt, hash []byte
	serverKey  []byte // SCRAM's ServerKey ('s'; hash is StoredKey)
	raw        string // the hash field as written, for bcrypt and for Write
}

// maxRemembered bounds the bcrypt successes remembered.
const maxRemembered = 1 << 16

// LoadPasswords reads a password file.
func LoadPasswords(path string) (*Passwords, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p, err := ParsePasswords(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// ParsePasswords reads "user:hash" lines; blank lines and lines starting with
// # are skipped. A malformed line is an error naming its number.
func ParsePasswords(r io.Reader) (*Passwords, error) {
	p := &Passwords{users: make(map[string]entry)}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("line %d: not user:hash", n)
		}
		e, err := parseHash(hash)
		if err != nil {
			return nil, fmt.Errorf("line %d (user %q): %w", n, user, err)
		}
		p.users[user] = e
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

func parseHash(h string) (entry, error) {
	switch {
	case strings.HasPrefix(h, "$2a$"), strings.HasPrefix(h, "$2b$"), strings.HasPrefix(h, "$2y$"):
		if _, err := bcrypt.Cost([]byte(h)); err != nil {
			return entry{}, fmt.Errorf("bad bcrypt hash: %w", err)
		}
		return entry{kind: 'b', raw: h}, nil
	case strings.HasPrefix(h, "$scram-sha-256$"):
		return parseScram(h)
	case strings.HasPrefix(h, "$6$"):
		f := strings.Split(h[3:], "$")
		if len(f) != 2 {
			return entry{}, errors.New("bad $6$ hash: want $6$salt$hash")
		}
		salt, err1 := base64.StdEncoding.DecodeString(f[0])
		sum, err2 := base64.StdEncoding.DecodeString(f[1])
		if err1 != nil || err2 != nil || len(sum) != sha512.Size {
			return entry{}, errors.New("bad $6$ hash: salt and hash must be base64, the hash 64 bytes")
		}
		return entry{kind: '6', salt: salt, hash: sum, raw: h}, nil
	case strings.HasPrefix(h, "$7$"):
		f := strings.Split(h[3:], "$")
		if len(f) != 3 {
			return entry{}, errors.New("bad $7$ hash: want $7$iterations$salt$hash")
		}
		it, err := strconv.Atoi(f[0])
		if err != nil || it < 1 || it > MaxIterations {
			return entry{}, fmt.Errorf("bad $7$ hash: iterations must be 1 to %d", MaxIterations)
		}
		salt, err1 := base64.StdEncoding.DecodeString(f[1])
		sum, err2 := base64.StdEncoding.DecodeString(f[2])
		if err1 != nil || err2 != nil || len(sum) != sha512.Size {
			return entry{}, errors.New("bad $7$ hash: salt and hash must be base64, the hash 64 bytes")
		}
		return entry{kind: '7', iterations: it, salt: salt, hash: sum, raw: h}, nil
	}
	return entry{}, errors.New("unknown hash format (want $7$, $6$, $scram-sha-256$ or bcrypt; a plain-text password file must be hashed first, e.g. with tern passwd or mosquitto_passwd -U)")
}

// Check reports whether password is user's. An unknown user costs about as
// much as a known one, so that timing does not tell which users exist.
func (p *Passwords) Check(user, password []byte) bool {
	e, ok := p.users[string(user)]
	if !ok {
		e = decoy
	}
	var match bool
	switch e.kind {
	case '7':
		sum, err := pbkdf2.Key(sha512.New, string(password), e.salt, e.iterations, sha512.Size)
		match = err == nil && subtle.ConstantTimeCompare(sum, e.hash) == 1
	case 's':
		stored, _ := scramKeys(password, e.salt, e.iterations)
		match = subtle.ConstantTimeCompare(stored, e.hash) == 1
	case '6':
		h := sha512.New()
		h.Write(password)
		h.Write(e.salt)
		match = subtle.ConstantTimeCompare(h.Sum(nil), e.hash) == 1
	case 'b':
		key := rememberKey(user, password, e.raw)
		p.mu.Lock()
		_, match = p.good[key]
		p.mu.Unlock()
		if !match && bcrypt.CompareHashAndPassword([]byte(e.raw), password) == nil { // constant time inside
			match = true
			p.mu.Lock()
			if p.good == nil || len(p.good) >= maxRemembered {
				p.good = make(map[[32]byte]struct{})
			}
			p.good[key] = struct{}{}
			p.mu.Unlock()
		}
	}
	return ok && match
}

func rememberKey(user, password []byte, hash string) [32]byte {
	h := sha256.New()
	for _, b := range [][]byte{user, password, []byte(hash)} {
		h.Write(strconv.AppendInt(nil, int64(len(b)), 10))
		h.Write([]byte{0})
		h.Write(b)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// decoy is checked for unknown users.
var decoy = func() entry {
	e, err := parseHash(Hash7([]byte("decoy"), DefaultIterations))
	if err != nil {
		panic(err)
	}
	return e
}()

// Has reports whether user is in the file.
func (p *Passwords) Has(user []byte) bool {
	_, ok := p.users[string(user)]
	return ok
}

// Len returns the number of users.
func (p *Passwords) Len() int { return len(p.users) }

// Hash7 returns a $7$ (PBKDF2-HMAC-SHA512) hash of password with a random
// 12-byte salt, as mosquitto_passwd writes.
func Hash7(password []byte, iterations int) string {
	salt := make([]byte, 12)
	_, _ = rand.Read(salt) // never fails (crypto/rand)
	sum, err := pbkdf2.Key(sha512.New, string(password), salt, iterations, sha512.Size)
	if err != nil {
		panic(err) // only for key lengths out of range
	}
	return "$7$" + strconv.Itoa(iterations) + "$" + base64.StdEncoding.EncodeToString(salt) + "$" + base64.StdEncoding.EncodeToString(sum)
}

// SetPassword adds user to the password file at path, or changes its
// password, keeping every other line as it is; hash is the new hash field
// (Hash7 or a bcrypt hash). With hash empty, it deletes user. The file is
// replaced atomically, with mode 0600 when new.
func SetPassword(path, user, hash string) error {
	if user == "" || strings.ContainsAny(user, ":\n\r") || strings.HasPrefix(user, "#") || strings.TrimSpace(user) != user {
		return errors.New("a user name must be non-empty, without ':' or line breaks, not start with '#' (a comment) nor with or end in spaces")
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	mode := os.FileMode(0o600)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	var out bytes.Buffer
	found := false
	for _, line := range strings.SplitAfter(string(old), "\n") {
		if line == "" {
			continue
		}
		if u, _, ok := strings.Cut(strings.TrimRight(line, "\r\n"), ":"); ok && u == user && !strings.HasPrefix(line, "#") {
			if found || hash == "" {
				found = true
				continue
			}
			found = true
			line = user + ":" + hash + "\n"
		}
		if !strings.HasSuffix(line, "\n") {
			line += "\n"
		}
		out.WriteString(line)
	}
	if !found {
		if hash == "" {
			return fmt.Errorf("user %q is not in %s", user, path)
		}
		out.WriteString(user + ":" + hash + "\n")
	}
	if _, err := ParsePasswords(bytes.NewReader(out.Bytes())); err != nil {
		return fmt.Errorf("%s would not be valid: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(out.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Users returns the user names, sorted.
func (p *Passwords) Users() []string {
	out := make([]string, 0, len(p.users))
	for u := range p.users {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}
