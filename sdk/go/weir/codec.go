package weir

import (
	"encoding/json"
	"strconv"
)

// Codec turns state values into bytes and back.
type Codec[T any] interface {
	Encode(v T) ([]byte, error)
	Decode(b []byte) (T, error)
}

// AppendCodec is a Codec that appends a value's encoding to a buffer: the
// state handles then encode into one buffer per call instead of a new
// slice per value (JSON is one). Its Decode may be given bytes of that
// buffer, valid until the call ends: it copies what it keeps.
type AppendCodec[T any] interface {
	Codec[T]
	AppendEncode(dst []byte, v T) ([]byte, error)
}

// coder is a codec with its AppendCodec side found once (a type assertion
// per value costs in Go's Wasm).
type coder[T any] struct {
	Codec[T]
	appender AppendCodec[T] // nil if it is not one
}

func coderOf[T any](codec Codec[T]) coder[T] {
	a, _ := codec.(AppendCodec[T])
	return coder[T]{codec, a}
}

// JSON is the default codec: encoding/json, with fast paths for strings
// and numbers.
func JSON[T any]() Codec[T] { return jsonCodec[T]{} }

type jsonCodec[T any] struct{}

func (c jsonCodec[T]) Encode(v T) ([]byte, error) { return c.AppendEncode(nil, v) }

func (jsonCodec[T]) AppendEncode(dst []byte, v T) ([]byte, error) {
	switch x := any(v).(type) {
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case uint64:
		return strconv.AppendUint(dst, x, 10), nil
	case string:
		if simple(x) {
			return append(append(append(dst, '"'), x...), '"'), nil
		}
	}
	b, err := json.Marshal(v)
	return append(dst, b...), err
}

func (jsonCodec[T]) Decode(b []byte) (T, error) {
	var v T
	switch p := any(&v).(type) {
	case *int64:
		if n, err := strconv.ParseInt(string(b), 10, 64); err == nil {
			*p = n
			return v, nil
		}
	case *uint64:
		if n, err := strconv.ParseUint(string(b), 10, 64); err == nil {
			*p = n
			return v, nil
		}
	case *string:
		if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' && simple(string(b[1:len(b)-1])) {
			*p = string(b[1 : len(b)-1])
			return v, nil
		}
	}
	err := json.Unmarshal(b, &v)
	return v, err
}

// simple is true for a string JSON writes as it is between quotes.
func simple(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// Bytes keeps []byte values as they are.
func Bytes() Codec[[]byte] { return bytesCodec{} }

type bytesCodec struct{}

func (bytesCodec) Encode(v []byte) ([]byte, error) { return v, nil }
func (bytesCodec) Decode(b []byte) ([]byte, error) { return b, nil }

// defaultCodec is Bytes for []byte, JSON for the rest.
func defaultCodec[T any]() Codec[T] {
	if c, ok := any(bytesCodec{}).(Codec[T]); ok {
		return c
	}
	return jsonCodec[T]{}
}
