package wire

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// TestAuthBlock: a signed frame carries its auth block between header and
// body and decodes back; an unsigned frame is byte for byte what it was
// before access control existed.
func TestAuthBlock(t *testing.T) {
	plain := AppendFrame(nil, Frame{Code: 10, ID: 7, Body: []byte{0x80}})
	want := []byte{0, 0, 0, 13, Version, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 7, 0x80}
	if !bytes.Equal(plain, want) {
		t.Fatalf("unsigned frame % x, want % x", plain, want)
	}
	a := &Auth{AccessKey: "ak1", Timestamp: 1_700_000_000_123, Signature: Sign([]byte("secret"), 10, 1_700_000_000_123, []byte{0x80})}
	signed := AppendFrame(nil, Frame{Code: 10, ID: 7, Body: []byte{0x80}, Auth: a})
	if got, want := len(signed), len(plain)+1+3+8+SignatureSize; got != want {
		t.Fatalf("signed frame is %d bytes, want %d", got, want)
	}
	f, n, err := DecodeFrame(signed, DefaultMaxFrame)
	if err != nil || n != len(signed) {
		t.Fatalf("DecodeFrame: %v (%d of %d bytes)", err, n, len(signed))
	}
	if f.Flags&FlagAuth == 0 || f.Auth == nil || *f.Auth != *a || !bytes.Equal(f.Body, []byte{0x80}) {
		t.Fatalf("decoded %+v auth %+v, want the same auth and body 80", f, f.Auth)
	}
	// A truncated block is malformed, not a short body.
	bad := append([]byte(nil), signed[:4+HeaderSize+5]...)
	bad[3] = byte(HeaderSize + 5)
	if _, _, err := DecodeFrame(bad, DefaultMaxFrame); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated auth block: %v, want ErrMalformed", err)
	}
	// The signature covers the code, the time and the body.
	base := Sign([]byte("secret"), 10, 1, []byte("b"))
	for name, other := range map[string][SignatureSize]byte{
		"code": Sign([]byte("secret"), 11, 1, []byte("b")),
		"time": Sign([]byte("secret"), 10, 2, []byte("b")),
		"body": Sign([]byte("secret"), 10, 1, []byte("c")),
		"key":  Sign([]byte("secreT"), 10, 1, []byte("b")),
	} {
		if other == base {
			t.Errorf("changing the %s leaves the signature unchanged", name)
		}
	}
}

// TestConnSigns: a Conn with credentials signs each request, so the
// server sees the access key, a current time and a valid signature.
func TestConnSigns(t *testing.T) {
	got := make(chan *Request, 2)
	addr := startServer(t, func(_ context.Context, r *Request) (any, error) {
		got <- r
		return Empty{}, nil
	}, ServerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Call(ctx, CodeListTopics, Empty{}, nil); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.Auth != nil {
		t.Fatalf("unsigned Conn sent auth %+v", r.Auth)
	}
	c.SetCredentials(Credentials{AccessKey: "ak1", SecretKey: "secret"})
	before := time.Now().UnixMilli()
	if err := c.Call(ctx, CodeTopicStatus, &TopicRequest{Name: "orders"}, nil); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.Auth == nil || r.Auth.AccessKey != "ak1" {
		t.Fatalf("auth %+v, want access key ak1", r.Auth)
	}
	if r.Auth.Timestamp < before || r.Auth.Timestamp > time.Now().UnixMilli() {
		t.Fatalf("timestamp %d not within the call", r.Auth.Timestamp)
	}
	if Sign([]byte("secret"), CodeTopicStatus, r.Auth.Timestamp, r.Body) != r.Auth.Signature ||
		NewSigner([]byte("secret")).Sign(CodeTopicStatus, r.Auth.Timestamp, r.Body) != r.Auth.Signature {
		t.Fatal("signature does not verify")
	}
	var req TopicRequest
	if err := r.Decode(&req); err != nil || req.Name != "orders" {
		t.Fatalf("body %q decoded to %+v, %v", r.Body, req, err)
	}
	c.SetCredentials(Credentials{AccessKey: string(make([]byte, MaxAccessKey+1))})
	if err := c.Call(ctx, CodeListTopics, Empty{}, nil); err == nil {
		t.Fatal("an access key longer than 255 bytes was sent")
	}
}
