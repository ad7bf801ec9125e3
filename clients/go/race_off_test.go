//go:build !race

package sessiond

const raceEnabled = false
