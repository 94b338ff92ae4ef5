module github.com/tern-mqtt/tern/perf

go 1.26.8

require (
	github.com/eclipse/paho.golang v0.23.0
	github.com/mochi-mqtt/server/v2 v2.7.9
	github.com/tern-mqtt/tern v0.0.0
)

replace github.com/tern-mqtt/tern => ../
