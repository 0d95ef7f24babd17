// sensor-average, in Go: the average temperature per sensor over tumbling
// event-time windows, like a Flink KeyedProcessFunction.
//
// Each reading (°C, keyed by sensor id) is added to its window's running sum
// in keyed map state (window end → sum and count, stored as 16 bytes); the
// first reading of a window registers an event-time timer at window_end - 1.
// When it fires, {"id":…,"window_end":…,"avg_c":…,"count":…} is emitted
// (avg_c rounded to 6 decimals) and the window's state removed. A reading
// whose window has fired is late: dropped and counted in
// late_records_dropped.
//
// Config: window_ms (default 5000), `input: json | binary` (binary: the
// Rust plugins' layout, as celsius writes it with `output: binary`). JSON
// is read with fastjson (see celsius).
package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/valyala/fastjson"
	"weir.dev/sdk/go/weir"
)

type total struct {
	sum   float64
	count uint64
}

// totalCodec stores a total as two little-endian 8-byte numbers (a
// weir.AppendCodec: the SDK gives it the buffer to write into).
type totalCodec struct{}

func (c totalCodec) Encode(t total) ([]byte, error) { return c.AppendEncode(nil, t) }

func (totalCodec) AppendEncode(dst []byte, t total) ([]byte, error) {
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(t.sum))
	return binary.LittleEndian.AppendUint64(dst, t.count), nil
}

func (totalCodec) Decode(b []byte) (total, error) {
	if len(b) != 16 {
		return total{}, errors.New("a total is 16 bytes")
	}
	return total{math.Float64frombits(binary.LittleEndian.Uint64(b)), binary.LittleEndian.Uint64(b[8:])}, nil
}

type average struct {
	ID        string  `json:"id"`
	WindowEnd int64   `json:"window_end"`
	AvgC      float64 `json:"avg_c"`
	Count     uint64  `json:"count"`
}

type sensorAverage struct {
	windowMs int64
	input    weir.Encoding
	windows  *weir.MapState[int64, total]
	parser   fastjson.Parser
	digits   []byte
}

func (s *sensorAverage) Open(ctx *weir.InitContext) error {
	config := struct {
		WindowMs int64         `json:"window_ms"`
		Input    weir.Encoding `json:"input"`
	}{WindowMs: 5000}
	if err := ctx.ConfigJSON(&config); err != nil {
		return err
	}
	if config.WindowMs <= 0 {
		return fmt.Errorf("window_ms must be positive, got %d", config.WindowMs)
	}
	s.windowMs, s.input = config.WindowMs, config.Input
	s.windows = weir.NewMapState[int64, total](ctx, "windows").WithCodec(totalCodec{})
	return nil
}

// reading reads a reading's timestamp and temperature.
func (s *sensorAverage) reading(value []byte) (timestamp int64, temperature float64, err error) {
	if s.input == weir.BinaryEncoding {
		r := weir.NewBinReader(value)
		r.String() // the id: the record's key is the sensor
		timestamp, temperature = r.I64(), r.F64()
		return timestamp, temperature, r.Finish()
	}
	v, err := s.parser.ParseBytes(value)
	if err != nil {
		return 0, 0, fmt.Errorf("invalid JSON: %w", err)
	}
	ts, t := v.Get("timestamp"), v.Get("temperature")
	if ts == nil || t == nil || t.Type() != fastjson.TypeNumber {
		return 0, 0, fmt.Errorf("not a reading (timestamp, temperature): %s", value)
	}
	if timestamp, err = ts.Int64(); err != nil {
		return 0, 0, fmt.Errorf("timestamp: %w", err)
	}
	// Exactly, with strconv (fastjson's own parser can be an ulp off for
	// 16-digit mantissas; celsius writes 17).
	s.digits = t.MarshalTo(s.digits[:0])
	temperature, err = strconv.ParseFloat(string(s.digits), 64)
	return timestamp, temperature, err
}

func (s *sensorAverage) Process(r weir.Record, ctx *weir.Context) error {
	timestamp, temperature, err := s.reading(r.Value)
	if err != nil {
		return err
	}
	rem := timestamp % s.windowMs
	if rem < 0 {
		rem += s.windowMs
	}
	end := timestamp - rem + s.windowMs
	if end-1 <= ctx.Watermark() {
		ctx.Count("late_records_dropped", 1)
		return nil
	}
	t, ok, err := s.windows.Get(ctx, end)
	if err != nil {
		return err
	}
	if !ok {
		if err := ctx.RegisterEventTimer(end - 1); err != nil {
			return err
		}
	}
	t.sum += temperature
	t.count++
	return s.windows.Put(ctx, end, t)
}

func (s *sensorAverage) OnTimer(timer weir.Timer, ctx *weir.Context) error {
	end := timer.Timestamp + 1
	t, ok, err := s.windows.Get(ctx, end)
	if err != nil || !ok {
		return err
	}
	if err := s.windows.Remove(ctx, end); err != nil {
		return err
	}
	avg := math.Round(t.sum/float64(t.count)*1e6) / 1e6
	return ctx.EmitJSON(average{timer.KeyString(), end, avg, t.count})
}

func init() { weir.Export(func() weir.Operator { return &sensorAverage{} }) }

func main() {}
