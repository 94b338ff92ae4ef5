package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// tlsSettings builds the TLS listener's configuration from the flags and
// reloads its certificate and key on SIGHUP without touching connections.
type tlsSettings struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

func newTLSSettings(certFile, keyFile, clientCAFile, clientAuth string) (*tlsSettings, *tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, nil, errors.New("--tls-listen and --wss-listen need --tls-cert and --tls-key")
	}
	ts := &tlsSettings{certFile: certFile, keyFile: keyFile}
	if err := ts.reload(); err != nil {
		return nil, nil, err
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return ts.cert.Load(), nil
		},
	}
	switch clientAuth {
	case "none":
		cfg.ClientAuth = tls.NoClientCert
	case "request":
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case "require":
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		return nil, nil, fmt.Errorf("bad --tls-client-auth %q: want none, request or require", clientAuth)
	}
	if clientAuth != "none" {
		if clientCAFile == "" {
			return nil, nil, errors.New("--tls-client-auth " + clientAuth + " needs --tls-client-ca")
		}
		pem, err := os.ReadFile(clientCAFile)
		if err != nil {
			return nil, nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("%s: no PEM certificate", clientCAFile)
		}
		cfg.ClientCAs = pool
	}
	return ts, cfg, nil
}

// reload reads the certificate and key again; on an error the old pair
// stays. New handshakes use the new pair; established connections go on.
func (ts *tlsSettings) reload() error {
	pair, err := tls.LoadX509KeyPair(ts.certFile, ts.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	ts.cert.Store(&pair)
	return nil
}
