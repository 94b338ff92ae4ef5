package peers

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// prepareTLS makes "tern-tls": Tern serving its clients on --tls-listen
// with a self-signed certificate written into p.dir (its plain listener is
// on another port nobody uses), and the client configuration that trusts it.
func (p *Peer) prepareTLS(ctx context.Context) error {
	if !TernServeHas(ctx, p.bin, "tls-listen") {
		return fmt.Errorf("%w: this tern has no --tls-listen", ErrMissing)
	}
	certPEM, keyPEM, pool, err := selfSigned()
	if err != nil {
		return err
	}
	cert, key := filepath.Join(p.dir, "tern-tls-cert.pem"), filepath.Join(p.dir, "tern-tls-key.pem")
	if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		return err
	}
	p.ClientTLS = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	p.Version += ", TLS listener (ECDSA P-256)"
	plain := p.args
	p.args = func(addr, dir, dataDir string) ([]string, error) {
		other, err := FreePort()
		if err != nil {
			return nil, err
		}
		args, err := plain(other, dir, dataDir)
		if err != nil {
			return nil, err
		}
		return append(args, "--tls-listen", addr, "--tls-cert", cert, "--tls-key", key), nil
	}
	return nil
}

func selfSigned() (certPEM, keyPEM []byte, pool *x509.CertPool, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "tern perf"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	pool = x509.NewCertPool()
	pool.AddCert(parsed)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), pool, nil
}
