package wire

import (
	"bytes"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// encodeBuf is a reusable msgpack encoder and buffer. msgpack.Marshal
// grows a fresh buffer for every request, and profiles of a producer at
// 120k msgs/s showed that growth (allocation and zeroing) as the largest
// single cost; requests and responses are encoded into pooled buffers.
type encodeBuf struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

// maxPooledBuf keeps an occasional huge request from pinning memory.
const maxPooledBuf = 4 << 20

var encodePool = sync.Pool{New: func() any {
	e := &encodeBuf{}
	e.enc = msgpack.NewEncoder(&e.buf)
	return e
}}

// encode marshals v into a pooled buffer; call release once the bytes
// have been written.
func encode(v any) (*encodeBuf, error) {
	e := encodePool.Get().(*encodeBuf)
	e.buf.Reset()
	e.enc.Reset(&e.buf)
	if err := e.enc.Encode(v); err != nil {
		e.release()
		return nil, err
	}
	return e, nil
}

func (e *encodeBuf) bytes() []byte { return e.buf.Bytes() }

func (e *encodeBuf) release() {
	if e.buf.Cap() <= maxPooledBuf {
		encodePool.Put(e)
	}
}
