//go:build !amd64 && !arm64

package chaos

// sysSetns is unknown here: the socket tests of TestNetRules skip.
const sysSetns = 0
