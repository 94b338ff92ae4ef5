//go:build race

package auth

// raceEnabled: allocation counts mean nothing under the race detector.
const raceEnabled = true
