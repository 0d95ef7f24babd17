package weir

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Encoding is how a plugin's records are encoded, as a config field
// (`output: json | binary`; JSON when absent), the way the Rust SDK's
// `Encoding` is.
type Encoding int

const (
	// JSONEncoding: JSON, what sources and sinks speak.
	JSONEncoding Encoding = iota
	// BinaryEncoding: the Rust SDK's binary encoding (postcard), read and
	// written field by field with BinWriter and BinReader.
	BinaryEncoding
)

// UnmarshalJSON reads "json" or "binary".
func (e *Encoding) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"json"`:
		*e = JSONEncoding
	case `"binary"`:
		*e = BinaryEncoding
	default:
		return fmt.Errorf("an encoding is json or binary, got %s", b)
	}
	return nil
}

// BinWriter appends values in the Rust SDK's binary encoding (postcard), so
// a Go plugin's records are what a Rust plugin with `Bin` reads: a struct is
// its fields in order, a string or byte field its length as a varint and its
// bytes, an unsigned integer a varint, a signed one a zigzag varint, a float
// its 4 or 8 little-endian bytes.
//
//	w := weir.BinWriter{}
//	w.String(id).I64(timestamp).F64(temperature)
//	ctx.Emit(w.Bytes)
type BinWriter struct{ Bytes []byte }

// Reset empties the writer, keeping its buffer.
func (w *BinWriter) Reset() *BinWriter { w.Bytes = w.Bytes[:0]; return w }

// String appends a string (or bytes) field.
func (w *BinWriter) String(s []byte) *BinWriter {
	w.Bytes = append(binary.AppendUvarint(w.Bytes, uint64(len(s))), s...)
	return w
}

// U64 appends an unsigned integer field (u8 to u64 alike).
func (w *BinWriter) U64(v uint64) *BinWriter { w.Bytes = binary.AppendUvarint(w.Bytes, v); return w }

// I64 appends a signed integer field (i16 to i64 alike).
func (w *BinWriter) I64(v int64) *BinWriter { w.Bytes = binary.AppendVarint(w.Bytes, v); return w }

// F64 appends an f64 field.
func (w *BinWriter) F64(v float64) *BinWriter {
	w.Bytes = binary.LittleEndian.AppendUint64(w.Bytes, math.Float64bits(v))
	return w
}

// BinReader reads values in the Rust SDK's binary encoding, in the order
// they were written. The first malformed field stops it: later reads
// return zero values and Finish the error.
//
//	r := weir.NewBinReader(record.Value)
//	id, ts, t := r.String(), r.I64(), r.F64()
//	if err := r.Finish(); err != nil { return err }
type BinReader struct {
	b   []byte
	err error
}

// NewBinReader reads b.
func NewBinReader(b []byte) *BinReader { return &BinReader{b: b} }

var errBinEnd = errors.New("invalid binary value: it ends inside a field")

func (r *BinReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

// String reads a string or bytes field; the result aliases the input.
func (r *BinReader) String() []byte {
	n := r.U64()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail(errBinEnd)
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

// U64 reads an unsigned integer field.
func (r *BinReader) U64() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errBinEnd)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// I64 reads a signed integer field.
func (r *BinReader) I64() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(errBinEnd)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// F64 reads an f64 field.
func (r *BinReader) F64() float64 {
	if len(r.b) < 8 {
		r.fail(errBinEnd)
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

// Finish says whether every field read was whole and nothing is left over.
func (r *BinReader) Finish() error {
	if r.err == nil && len(r.b) > 0 {
		r.err = fmt.Errorf("invalid binary value: %d bytes left over", len(r.b))
	}
	return r.err
}
