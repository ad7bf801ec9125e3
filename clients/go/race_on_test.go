//go:build race

package sessiond

// raceEnabled: the race detector slows everything ~10x, so timing
// budgets are not checked under it.
const raceEnabled = true
