//go:build !linux

package engine

import "net"

// listenConfig keeps Go's per-connection keep-alive where the kernel does not
// copy the listening socket's to accepted ones (see listen_linux.go).
var listenConfig net.ListenConfig
