module github.com/tern-mqtt/tern

go 1.26.8
