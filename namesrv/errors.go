package namesrv

import "errors"

var (
	// ErrInvalidConfig wraps every problem Config.Validate finds.
	ErrInvalidConfig = errors.New("namesrv: invalid config")
	// ErrAlreadyRunning means Run was called a second time.
	ErrAlreadyRunning = errors.New("namesrv: server already running")
)
