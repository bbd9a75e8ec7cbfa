package client

import "context"

func errContextDeadline() error { return context.DeadlineExceeded }
