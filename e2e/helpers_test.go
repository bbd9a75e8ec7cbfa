package e2e

import (
	"fmt"

	"github.com/rmq-dev/rmq/broker"
)

func brokerTopic(name string) broker.TopicSpec { return broker.TopicSpec{Name: name, Queues: 4} }

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
