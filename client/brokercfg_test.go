package client_test

import "github.com/rmq-dev/rmq/broker"

type brokerConfig = broker.Config
