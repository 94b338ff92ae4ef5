package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
)

// The PROXY protocol (HAProxy's, versions 1 and 2): a load balancer in front
// of the broker starts each connection with a header naming the client's
// real address. With Options.ProxyProtocol every connection on the TCP
// listener must start with one; the address it names is the client's for
// the log, the per-address limits and the Authenticate hook.

// readProxyHeader takes the PROXY header at the start of buf: the client
// address it names replaces the socket's, and the per-address limits apply
// to it. 0 and no error: the header is not whole yet.
func (c *conn) readProxyHeader(buf []byte) (int, error) {
	n, addr, err := parseProxyHeader(buf)
	if err != nil {
		c.srv.log.Info("closing connection: no valid PROXY protocol header", "remote", c.remote.String())
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	c.awaitingProxy = false
	if addr.IsValid() {
		c.remote = addr
		c.srv.admitConn(c)
	} // a LOCAL header is the balancer's own health check: no client to count
	return n, nil
}

var proxyV2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// proxyV1Max is the longest version 1 header, CRLF included.
const proxyV1Max = 107

var errProxyHeader = errors.New("engine: bad PROXY protocol header")

// parseProxyHeader reads a PROXY header at the start of b. It returns the
// header's length and the client address it names (invalid for a LOCAL or
// UNKNOWN header: the socket's address stands), or n == 0 and no error when
// b does not hold the whole header yet.
func parseProxyHeader(b []byte) (n int, addr netip.AddrPort, err error) {
	switch {
	case len(b) >= len(proxyV2Signature) && bytes.Equal(b[:len(proxyV2Signature)], proxyV2Signature):
		return parseProxyV2(b)
	case len(b) < len(proxyV2Signature) && bytes.HasPrefix(proxyV2Signature, b):
		return 0, addr, nil
	case len(b) >= 6 && string(b[:6]) == "PROXY ":
		return parseProxyV1(b)
	case len(b) < 6 && bytes.HasPrefix([]byte("PROXY "), b):
		return 0, addr, nil
	}
	return 0, addr, errProxyHeader
}

func parseProxyV1(b []byte) (int, netip.AddrPort, error) {
	end := bytes.Index(b[:min(len(b), proxyV1Max)], []byte("\r\n"))
	if end < 0 {
		if len(b) >= proxyV1Max {
			return 0, netip.AddrPort{}, errProxyHeader
		}
		return 0, netip.AddrPort{}, nil
	}
	f := bytes.Split(b[6:end], []byte(" "))
	n := end + 2
	if len(f) >= 1 && string(f[0]) == "UNKNOWN" {
		return n, netip.AddrPort{}, nil
	}
	if len(f) != 5 || (string(f[0]) != "TCP4" && string(f[0]) != "TCP6") {
		return 0, netip.AddrPort{}, errProxyHeader
	}
	ip, err := netip.ParseAddr(string(f[1]))
	if err != nil || ip.Is4() != (string(f[0]) == "TCP4") {
		return 0, netip.AddrPort{}, errProxyHeader
	}
	if _, err := netip.ParseAddr(string(f[2])); err != nil {
		return 0, netip.AddrPort{}, errProxyHeader
	}
	port, err := strconv.ParseUint(string(f[3]), 10, 16)
	if err != nil || len(f[3]) > 1 && f[3][0] == '0' {
		return 0, netip.AddrPort{}, errProxyHeader
	}
	if _, err := strconv.ParseUint(string(f[4]), 10, 16); err != nil {
		return 0, netip.AddrPort{}, errProxyHeader
	}
	return n, netip.AddrPortFrom(ip.Unmap(), uint16(port)), nil // keyed as the TCP listener keys an IPv4 peer
}

func parseProxyV2(b []byte) (int, netip.AddrPort, error) {
	if len(b) < 16 {
		return 0, netip.AddrPort{}, nil
	}
	verCmd, famProto := b[12], b[13]
	length := int(binary.BigEndian.Uint16(b[14:16]))
	if verCmd>>4 != 2 || verCmd&0xF > 1 {
		return 0, netip.AddrPort{}, errProxyHeader
	}
	n := 16 + length
	if len(b) < n {
		return 0, netip.AddrPort{}, nil
	}
	body := b[16:n]
	if verCmd&0xF == 0 { // LOCAL: the balancer's own connection (a health check)
		return n, netip.AddrPort{}, nil
	}
	switch famProto {
	case 0x11: // TCP over IPv4
		if len(body) < 12 {
			return 0, netip.AddrPort{}, errProxyHeader
		}
		return n, netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[0:4])), binary.BigEndian.Uint16(body[8:10])), nil
	case 0x21: // TCP over IPv6
		if len(body) < 36 {
			return 0, netip.AddrPort{}, errProxyHeader
		}
		return n, netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[0:16])).Unmap(), binary.BigEndian.Uint16(body[32:34])), nil
	case 0x00: // UNSPEC
		return n, netip.AddrPort{}, nil
	}
	return 0, netip.AddrPort{}, errProxyHeader
}
