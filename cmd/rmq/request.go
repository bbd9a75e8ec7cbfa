package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/client"
)

func requestCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:      "request",
		Usage:     "send a request message and print the reply a responder sends back",
		ArgsUsage: "TOPIC [BODY]",
		Description: "Request-reply, RocketMQ 4.6 style: the message is stored in TOPIC with CORRELATION_ID,\n" +
			"REPLY_TO_CLIENT and TTL properties; a responder that consumes it answers with\n" +
			"Consumer.Reply (or RocketMQ's reply API) and the broker pushes the reply back here.\n" +
			"The body is BODY, the file named by --file, or standard input, as for send. The reply\n" +
			"body is printed as is; --output json prints it with its properties and the round trip.\n" +
			"The reply is awaited at most --timeout.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "read the body from `PATH` (- for stdin)"},
			&cli.StringFlag{Name: "tag", Usage: "message tag, for the responders' filters"},
			&cli.GenericFlag{Name: "key", Value: &repeated{}, Usage: "business key (repeatable)"},
			&cli.GenericFlag{Name: "property", Value: &repeated{}, Usage: "user property `k=v` (repeatable)"},
		},
		Action: request,
	})
}

// requestReply is a reply as --output json shows it.
type requestReply struct {
	CorrelationID string            `json:"correlation_id"`
	Topic         string            `json:"topic"`
	BrokerGroup   string            `json:"broker_group"`
	Body          string            `json:"body,omitempty"`
	BodyBase64    []byte            `json:"body_base64,omitempty"` // a body that is not UTF-8
	Properties    map[string]string `json:"properties,omitempty"`
	RoundTripMS   float64           `json:"round_trip_ms"`
}

// table is the body alone; request prints it straight to stdout rather
// than through render's tabwriter, which would realign a body's tabs.
func (r requestReply) table(w io.Writer) {
	if r.BodyBase64 != nil {
		_, _ = w.Write(r.BodyBase64)
	} else {
		_, _ = io.WriteString(w, r.Body)
	}
}

func request(c *cli.Context) error {
	args, err := wantArgs(c, "TOPIC", "[BODY]")
	if err != nil {
		return err
	}
	topic := args[0]
	if err := client.ValidateTopic(topic); err != nil {
		return explain(err, topic)
	}
	msg := &client.Message{Topic: topic, Tags: c.String("tag"), Keys: repeatedValues(c, "key")}
	for _, kv := range repeatedValues(c, "property") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("--property %q: want k=v", kv)
		}
		if msg.Properties == nil {
			msg.Properties = map[string]string{}
		}
		msg.Properties[k] = v
	}
	if msg.Body, err = readBody(c, args); err != nil {
		return err
	}
	if len(msg.Body) == 0 {
		return errors.New("body is empty")
	}
	ns, err := nameServers(c)
	if err != nil {
		return err
	}
	timeout := c.Duration("timeout")
	p, err := client.NewProducer(client.ProducerConfig{NameServers: ns, Credentials: credentials(c), TLS: clientTLS(c), SendTimeout: timeout, Logger: clientLogger(c)})
	if err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	start := time.Now()
	reply, err := p.Request(ctx, msg)
	rtt := time.Since(start)
	cancel()
	closeCtx, cancelClose := context.WithTimeout(context.WithoutCancel(c.Context), 5*time.Second)
	defer cancelClose()
	if cerr := p.Close(closeCtx); err == nil && cerr != nil {
		return cerr
	}
	if errors.Is(err, client.ErrNoReply) {
		return &explained{fmt.Sprintf("no reply within %v (does a responder consume %s and reply?): %v", timeout, topic, err), err}
	}
	if err != nil {
		return explain(err, topic)
	}
	out := requestReply{CorrelationID: reply.Properties[client.PropCorrelationID], Topic: reply.Topic,
		BrokerGroup: reply.Queue.Group, Properties: reply.Properties, RoundTripMS: float64(rtt.Microseconds()) / 1000}
	if utf8.Valid(reply.Body) {
		out.Body = string(reply.Body)
	} else {
		out.BodyBase64 = reply.Body
	}
	if jsonOutput(c) {
		return render(c, out)
	}
	w := c.App.Writer
	out.table(w)
	if !bytes.HasSuffix(reply.Body, []byte("\n")) {
		_, err = fmt.Fprintln(w)
	}
	return err
}
