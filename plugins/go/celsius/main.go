// celsius, in Go: converts sensor readings from °F to °C.
//
// Input: JSON readings {"id":"sensor_7","timestamp":1700000000000,"temperature":71.3}
// (°F). Output: the same reading in °C, with the record's key and timestamp.
// Config (optional): `output: json | binary`, the encoding of the readings
// it emits; binary is the Rust plugins' layout (id, timestamp, temperature
// in weir.BinWriter's encoding), cheaper for the next operator to read.
//
// The JSON is read with fastjson (Debian's golang-github-valyala-fastjson-dev,
// which scripts/setup.sh installs): encoding/json, by reflection, costs
// about 5 µs a reading in Wasm, several times the rest of the pipeline.
package main

import (
	"fmt"
	"strconv"

	"github.com/valyala/fastjson"
	"weir.dev/sdk/go/weir"
)

type celsius struct {
	output weir.Encoding
	parser fastjson.Parser
	arena  fastjson.Arena
	out    weir.BinWriter
	digits []byte
}

// number reads a JSON number exactly, with strconv (fastjson's own parser
// can be an ulp off for 16-digit mantissas).
func (c *celsius) number(v *fastjson.Value) (float64, error) {
	if v.Type() != fastjson.TypeNumber {
		return 0, fmt.Errorf("not a number: %s", v)
	}
	c.digits = v.MarshalTo(c.digits[:0])
	return strconv.ParseFloat(string(c.digits), 64)
}

func (c *celsius) Open(ctx *weir.InitContext) error {
	config := struct {
		Output weir.Encoding `json:"output"`
	}{}
	err := ctx.ConfigJSON(&config)
	c.output = config.Output
	return err
}

// field is a reading's field; a missing one is an error (a missing
// temperature is not 0 °F).
func field(v *fastjson.Value, name string) (*fastjson.Value, error) {
	if f := v.Get(name); f != nil {
		return f, nil
	}
	return nil, fmt.Errorf("the reading has no %s", name)
}

func (c *celsius) Process(r weir.Record, ctx *weir.Context) error {
	v, err := c.parser.ParseBytes(r.Value)
	if err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	t, err := field(v, "temperature")
	if err != nil {
		return err
	}
	f, err := c.number(t)
	if err != nil {
		return fmt.Errorf("temperature: %w", err)
	}
	celsius := (f - 32) * (5.0 / 9.0)
	if c.output == weir.BinaryEncoding {
		id, err := field(v, "id")
		if err != nil {
			return err
		}
		ts, err := field(v, "timestamp")
		if err != nil {
			return err
		}
		idBytes, err := id.StringBytes()
		if err != nil {
			return fmt.Errorf("id: %w", err)
		}
		timestamp, err := ts.Int64()
		if err != nil {
			return fmt.Errorf("timestamp: %w", err)
		}
		ctx.Emit(c.out.Reset().String(idBytes).I64(timestamp).F64(celsius).Bytes)
		return nil
	}
	// The reading as it came, with the temperature replaced.
	c.arena.Reset()
	v.Set("temperature", c.arena.NewNumberFloat64(celsius))
	c.out.Bytes = v.MarshalTo(c.out.Bytes[:0])
	ctx.Emit(c.out.Bytes)
	return nil
}

func init() { weir.Export(func() weir.Operator { return &celsius{} }) }

func main() {}
