// Package codeccompare holds side-by-side benchmarks of Tern's MQTT codec
// (github.com/tern-mqtt/tern/codec) against the packet codecs of two other Go
// MQTT implementations, eclipse/paho.golang and mochi-mqtt/server, decoding
// and encoding the same wire bytes. It has no code outside its tests; it lives
// in the perf module so that the peer codecs stay out of the main module.
//
// Run it from the perf directory and compare the libraries with benchstat:
//
//	go test -run XXX -bench . -benchmem -count 6 ./codeccompare/ | tee /tmp/codeccompare.txt
//	benchstat -col /lib /tmp/codeccompare.txt
package codeccompare
