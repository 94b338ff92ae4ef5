package main

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/tern-mqtt/tern/auth"
	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
)

// access holds the broker's authentication and authorisation settings; the
// password and ACL files are reloaded on SIGHUP.
type access struct {
	allowAnonymous bool
	passwordFile   string
	aclFile        string
	passwords      atomic.Pointer[auth.Passwords]
	acl            *auth.ACL
	certAsUsername bool         // --tls-cert-as-username
	tls            *tlsSettings // reloaded with the files; nil without a TLS listener
	jwt            *auth.JWT    // --jwt-key; nil without
	log            *slog.Logger
}

func newAccess(allowAnonymous bool, passwordFile, aclFile string, log *slog.Logger) (*access, error) {
	a := &access{allowAnonymous: allowAnonymous, passwordFile: passwordFile, aclFile: aclFile, log: log}
	if passwordFile != "" {
		p, err := auth.LoadPasswords(passwordFile)
		if err != nil {
			return nil, err
		}
		a.passwords.Store(p)
	}
	if aclFile != "" {
		acl, err := auth.LoadACL(aclFile)
		if err != nil {
			return nil, err
		}
		a.acl = acl
	}
	return a, nil
}

// install sets the engine's hooks.
func (a *access) install(o *engine.Options) {
	o.Authenticate = a.authenticate
	if a.passwordFile != "" {
		// 5.0 enhanced authentication: SCRAM-SHA-256 against the password
		// file's $scram-sha-256$ lines (tern passwd -scram).
		o.EnhancedAuth = func(method string) engine.AuthExchange {
			if method != auth.ScramMethod {
				return nil
			}
			return a.passwords.Load().StartScram()
		}
	}
	if a.acl != nil || a.jwt != nil {
		o.Authorize = a.authorize
	}
}

// authenticate follows Mosquitto: a client without a user name is let in
// only with --allow-anonymous; with a password file, a user name must come
// with its password (5.0 0x86, 3.1.1 return code 4 otherwise); without one,
// a user name is taken as given, under --allow-anonymous only.
func (a *access) authenticate(c *engine.ConnectInfo) codec.ReasonCode {
	if a.certAsUsername && c.CertName != "" {
		return codec.Success // the TLS handshake verified the certificate
	}
	p := a.passwords.Load()
	// A password-file user's password is checked as a password even when it
	// happens to look like a token.
	if a.jwt != nil && c.HasPassword && (p == nil || auth.LooksLikeToken(c.Password) && !(c.HasUsername && p.Has(c.Username))) {
		claims, err := a.jwt.Verify(c.Password, time.Now())
		if err != nil {
			a.log.Info("token refused", "client_id", c.ClientID, "err", err.Error())
			return codec.BadUserNameOrPassword
		}
		// The token says who the client is: a user name that differs from
		// its subject would borrow another user's ACL rules.
		if c.HasUsername && string(c.Username) != claims.Subject {
			a.log.Info("token refused: user name is not its subject", "client_id", c.ClientID)
			return codec.BadUserNameOrPassword
		}
		c.HookData = tokenLogin{subject: claims.Subject, rules: claims.Rules()}
		c.ExpiresAt = claims.ExpiresAt.Time // required by Verify: the connection ends with its token
		return codec.Success
	}
	if p != nil && c.HasUsername {
		if !c.HasPassword || !p.Check(c.Username, c.Password) {
			return codec.BadUserNameOrPassword
		}
		return codec.Success
	}
	if !a.allowAnonymous {
		return codec.NotAuthorized
	}
	return codec.Success
}

// authorize combines the ACL file's rules and a token's topic claims: both
// must allow.
func (a *access) authorize(c *engine.ConnectInfo) engine.Rules {
	var rules []engine.Rules
	if a.acl != nil {
		cl := auth.Client{Username: string(c.Username), HasUsername: c.HasUsername, ClientID: c.ClientID, CertName: c.CertName}
		if a.certAsUsername && c.CertName != "" {
			cl.Username, cl.HasUsername = c.CertName, true
		}
		if t, ok := c.HookData.(tokenLogin); ok && t.subject != "" {
			cl.Username, cl.HasUsername = t.subject, true
		}
		rules = append(rules, a.acl.For(cl))
	}
	if t, ok := c.HookData.(tokenLogin); ok && t.rules != nil {
		rules = append(rules, t.rules)
	}
	switch len(rules) {
	case 0:
		return nil
	case 1:
		return rules[0]
	}
	return allRules(rules)
}

// tokenLogin is what authenticate learnt from a token, for authorize.
type tokenLogin struct {
	subject string // the user the token names; the ACL's user name
	rules   *auth.ClaimRules
}

// allRules allows what every one of its rules allows.
type allRules []engine.Rules

func (rs allRules) CanPublish(t []byte) bool {
	for _, r := range rs {
		if !r.CanPublish(t) {
			return false
		}
	}
	return true
}

func (rs allRules) CanSubscribe(f []byte) bool {
	for _, r := range rs {
		if !r.CanSubscribe(f) {
			return false
		}
	}
	return true
}

func (rs allRules) CanReceive(t []byte) bool {
	for _, r := range rs {
		if !r.CanReceive(t) {
			return false
		}
	}
	return true
}

// reload reads the password and ACL files again (SIGHUP). A file that fails
// to parse leaves the rules in force and is logged.
func (a *access) reload() error {
	var errs []error
	if a.passwordFile != "" {
		if p, err := auth.LoadPasswords(a.passwordFile); err != nil {
			errs = append(errs, err)
		} else {
			a.passwords.Store(p)
			a.log.Info("password file reloaded", "file", a.passwordFile, "users", p.Len())
		}
	}
	if a.acl != nil {
		if err := a.acl.Reload(); err != nil {
			errs = append(errs, err)
		} else {
			a.log.Info("ACL file reloaded", "file", a.aclFile)
		}
	}
	if a.jwt != nil {
		if err := a.jwt.Reload(); err != nil {
			errs = append(errs, err)
		} else {
			a.log.Info("JWT key reloaded")
		}
	}
	if a.tls != nil {
		if err := a.tls.reload(); err != nil {
			errs = append(errs, err)
		} else {
			a.log.Info("TLS certificate reloaded", "file", a.tls.certFile)
		}
	}
	return errors.Join(errs...)
}
