// Package fuzz holds fuzz targets that span packages: random packet
// sequences fed to an in-process broker over real loopback sockets.
package fuzz
