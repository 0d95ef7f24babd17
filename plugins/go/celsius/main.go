// celsius, in Go: converts sensor readings from °F to °C.
//
// Input: JSON readings {"id":"sensor_7","timestamp":1700000000000,"temperature":71.3}
// (°F). Output: the same reading in °C, with the record's key and timestamp.
package main

import (
	"errors"

	"weir.dev/sdk/go/weir"
)

// A reading; the temperature is a pointer so that a missing one is an
// error, not 0 °F.
type reading struct {
	ID          string   `json:"id"`
	Timestamp   int64    `json:"timestamp"`
	Temperature *float64 `json:"temperature"`
}

type celsius struct{}

func (celsius) Process(r weir.Record, ctx *weir.Context) error {
	var in reading
	if err := r.JSON(&in); err != nil {
		return err
	}
	if in.Temperature == nil {
		return errors.New("the reading has no temperature")
	}
	c := (*in.Temperature - 32) * (5.0 / 9.0)
	in.Temperature = &c
	return ctx.EmitJSON(in)
}

func init() { weir.Export(func() weir.Operator { return celsius{} }) }

func main() {}
