// Package weir is the Go SDK of Weir operators (the `weir:plugin` operator
// world), built with stock Go for wasip1 and made a component by
// `wasm-tools component new`.
//
// An operator is a type with a Process method; Open and OnTimer are
// optional. A keyed counter:
//
//	package main
//
//	import "weir.dev/sdk/go/weir"
//
//	type counter struct{ count *weir.ValueState[uint64] }
//
//	func (c *counter) Open(ctx *weir.InitContext) error {
//		c.count = weir.NewValueState[uint64](ctx, "count")
//		return nil
//	}
//
//	func (c *counter) Process(r weir.Record, ctx *weir.Context) error {
//		n, _, err := c.count.Get(ctx)
//		if err != nil {
//			return err
//		}
//		n++
//		if err := c.count.Set(ctx, n); err != nil {
//			return err
//		}
//		return ctx.EmitJSON(map[string]any{"key": r.KeyString(), "count": n})
//	}
//
//	func init() { weir.Export(func() weir.Operator { return &counter{} }) }
//
//	func main() {}
//
// The SDK does the packing: the host sends a batch of records with the
// prefetched state of their keys in one call, the SDK calls Process per
// record, and answers with every output, state change and timer at once.
// An error returned from Process (or a panic in it) fails that record
// alone; the node's `on_error` decides what happens to it.
package weir

import (
	"encoding/json"
	"fmt"
)

// Operator processes records one at a time.
type Operator interface {
	Process(record Record, ctx *Context) error
}

// Opener is an Operator with an Open method, called once per parallel
// instance before any record: it reads the config and declares state.
type Opener interface {
	Open(ctx *InitContext) error
}

// TimerHandler is an Operator with an OnTimer method, called per fired
// timer with the timer's key current.
type TimerHandler interface {
	OnTimer(timer Timer, ctx *Context) error
}

// Export makes the operator `make` builds the component's; call it from an
// init function of package main.
func Export(make func() Operator) {
	newOperator = make
}

// Record is one input record. Its bytes stay valid until the batch ends.
type Record struct {
	// Key is nil when the node has no `key_by`.
	Key       []byte
	Value     []byte
	Timestamp int64
}

// KeyString is the key as a string ("" when there is none).
func (r Record) KeyString() string { return string(r.Key) }

// JSON decodes the value as JSON into v.
func (r Record) JSON(v any) error { return json.Unmarshal(r.Value, v) }

// Timer is a timer that fired for its key.
type Timer struct {
	Key       []byte
	Timestamp int64
	// EventTime is false for a processing-time timer.
	EventTime bool
}

// KeyString is the timer's key as a string.
func (t Timer) KeyString() string { return string(t.Key) }

// InitContext is what Open gets: where the instance runs, its config, and
// the state it declares.
type InitContext struct {
	NodeID       string
	SubtaskIndex uint32
	Parallelism  uint32
	// Attempt counts the restarts after failures before this start.
	Attempt uint32
	// Config is the node's `config` from the job spec, as JSON ("null" if absent).
	Config []byte
	states []stateDecl
}

// ConfigJSON decodes the config into v; an absent config leaves v as it is.
func (c *InitContext) ConfigJSON(v any) error {
	if string(c.Config) == "null" {
		return nil
	}
	if err := json.Unmarshal(c.Config, v); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// Context is what Process and OnTimer get: time, output, timers, counters.
// State is read and written through the handles Open declared.
type Context struct {
	call *call
}

// Watermark is the operator's event-time watermark when the call started.
func (c *Context) Watermark() int64 { return c.call.watermark }

// ProcessingTime is the host's wall clock (ms) when the call started.
func (c *Context) ProcessingTime() int64 { return c.call.processingTime }

// Key is the current record's or timer's key (nil when there is none).
func (c *Context) Key() []byte { return c.call.key }

// Emit sends a record with the current key and timestamp.
func (c *Context) Emit(value []byte) {
	c.call.out.add(c.call.key, value, c.call.timestamp)
}

// EmitJSON sends v as JSON with the current key and timestamp.
func (c *Context) EmitJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.Emit(b)
	return nil
}

// EmitKeyed sends a record with the given key (nil: none) and timestamp.
func (c *Context) EmitKeyed(key, value []byte, timestamp int64) {
	c.call.out.add(key, value, timestamp)
}

// EmitTo sends a record to the side output `output` (routed by the job
// spec as `node.output`).
func (c *Context) EmitTo(output string, value []byte) {
	c.call.side(output).add(c.call.key, value, c.call.timestamp)
}

// Count adds n to a counter, exported as a Prometheus metric by the host.
func (c *Context) Count(name string, n uint64) {
	c.call.count(name, n)
}

// RegisterEventTimer asks for OnTimer when the watermark passes t (for the
// current key; the node needs `key_by`).
func (c *Context) RegisterEventTimer(t int64) error { return c.call.timer(t, true, true) }

// RegisterProcessingTimer asks for OnTimer when the wall clock passes t.
func (c *Context) RegisterProcessingTimer(t int64) error { return c.call.timer(t, false, true) }

// DeleteEventTimer removes an event-time timer of the current key.
func (c *Context) DeleteEventTimer(t int64) error { return c.call.timer(t, true, false) }

// DeleteProcessingTimer removes a processing-time timer of the current key.
func (c *Context) DeleteProcessingTimer(t int64) error { return c.call.timer(t, false, false) }
