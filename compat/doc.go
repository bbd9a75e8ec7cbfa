// Package compat is the RocketMQ remoting-protocol codec and connection
// layer used by rmq's broker and NameServer adapters.
package compat
