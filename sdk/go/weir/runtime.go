package weir

import (
	"errors"
	"fmt"
	"path"
	"runtime"
	"runtime/debug"
	"strings"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
	"weir.dev/sdk/go/internal/export_wit_world"
	"weir.dev/sdk/go/internal/weir_plugin_logging"
	"weir.dev/sdk/go/internal/weir_plugin_types"

	// The generated exports (`//go:wasmexport init`, `process`, ...).
	_ "weir.dev/sdk/go/internal/wit_exports"
)

const noKey = 0xffffffff

var (
	newOperator func() Operator
	operator    Operator
	decls       []stateDecl
	opened      bool
	// The call in progress, and its buffers (reused: the host has copied
	// an answer out before the next call).
	current call
)

func init() {
	export_wit_world.InitImpl = func(c weir_plugin_types.InitContext) initResult {
		defer collectOnlyInCalls()()
		return initOperator(c)
	}
	export_wit_world.ProcessImpl = func(b weir_plugin_types.Batch) effectsResult {
		defer collectOnlyInCalls()()
		return process(b)
	}
	export_wit_world.OnTimerImpl = func(t weir_plugin_types.TimerBatch) effectsResult {
		defer collectOnlyInCalls()()
		return onTimer(t)
	}
	debug.SetGCPercent(-1)
}

// collectOnlyInCalls turns the garbage collector on for an export call and
// returns what turns it off again. Between calls the host writes the next
// call's arguments through `cabi_realloc`, where a guest may not call an
// import; a collection started by one of those allocations can make the Go
// scheduler call one (poll_oneoff, to idle), and the component model traps
// ("cannot leave component instance"). Turning it off waits for a
// collection in progress to end, so none runs between calls.
func collectOnlyInCalls() func() {
	debug.SetGCPercent(100)
	return func() { debug.SetGCPercent(-1) }
}

// Log writes to the host's log, tagged with the node and subtask.
func Log(level Level, format string, args ...any) {
	weir_plugin_logging.Log(level, fmt.Sprintf(format, args...))
}

// Level is a log level.
type Level = weir_plugin_logging.Level

// The log levels.
const (
	Trace = weir_plugin_logging.LevelTrace
	Debug = weir_plugin_logging.LevelDebug
	Info  = weir_plugin_logging.LevelInfo
	Warn  = weir_plugin_logging.LevelWarn
	Error = weir_plugin_logging.LevelError
)

// records are records being packed: keys and values in one buffer, four
// spans each.
type records struct {
	data       []byte
	spans      []uint32
	timestamps []int64
}

func (r *records) add(key, value []byte, ts int64) {
	at := uint32(len(r.data))
	if key == nil {
		r.spans = append(r.spans, 0, noKey)
	} else {
		r.data = append(r.data, key...)
		r.spans = append(r.spans, at, uint32(len(key)))
		at += uint32(len(key))
	}
	r.data = append(r.data, value...)
	r.spans = append(r.spans, at, uint32(len(value)))
	r.timestamps = append(r.timestamps, ts)
}

func (r *records) reset() {
	r.data, r.spans, r.timestamps = r.data[:0], r.spans[:0], r.timestamps[:0]
}

func (r *records) batch() weir_plugin_types.RecordBatch {
	return weir_plugin_types.RecordBatch{Data: r.data, Spans: r.spans, Timestamps: r.timestamps}
}

type sideOut struct {
	name string
	records
}

type call struct {
	watermark, processingTime int64
	sameKey                   []uint32
	slots                     []slot
	// the current element
	group     uint32
	hasKey    bool
	key       []byte
	timestamp int64
	// what the call produced
	out      records
	sides    []sideOut
	counters []witTypes.Tuple2[string, uint64]
	timers   []weir_plugin_types.TimerUpdate
	errors   []weir_plugin_types.RecordError
	updates  updates
	// encoded state values and map keys (see kept)
	arena []byte
}

func (c *call) side(name string) *records {
	for i := range c.sides {
		if c.sides[i].name == name {
			return &c.sides[i].records
		}
	}
	c.sides = append(c.sides, sideOut{name: name})
	return &c.sides[len(c.sides)-1].records
}

func (c *call) count(name string, n uint64) {
	for i := range c.counters {
		if c.counters[i].F0 == name {
			c.counters[i].F1 += n
			return
		}
	}
	c.counters = append(c.counters, witTypes.Tuple2[string, uint64]{F0: name, F1: n})
}

func (c *call) timer(t int64, eventTime, register bool) error {
	if !c.hasKey {
		return errors.New("timers need a keyed input: give the node `key_by`")
	}
	domain := weir_plugin_types.TimeDomainProcessingTime
	if eventTime {
		domain = weir_plugin_types.TimeDomainEventTime
	}
	op := weir_plugin_types.MakeTimerOpDelete()
	if register {
		op = weir_plugin_types.MakeTimerOpRegister()
	}
	c.timers = append(c.timers, weir_plugin_types.TimerUpdate{Key: c.key, Timestamp: t, Domain: domain, Op: op})
	return nil
}

// start prepares a call over n records or timers.
func (c *call) start(state weir_plugin_types.PrefetchedState, time weir_plugin_types.TimeContext, n int) {
	c.watermark, c.processingTime = time.Watermark, time.ProcessingTime
	c.sameKey = state.SameKey
	c.out.reset()
	c.sides, c.counters, c.timers, c.errors = nil, nil, nil, nil
	c.slots = c.slots[:0]
	c.arena = c.arena[:0]
	if len(c.sameKey) == 0 || len(decls) == 0 {
		return
	}
	need := n * len(decls)
	if cap(c.slots) < need {
		c.slots = make([]slot, need)
	} else {
		c.slots = c.slots[:need]
		clear(c.slots)
	}
	data, spans := state.Items.Data, state.Items.Spans
	item := func(j uint32) []byte { return data[spans[2*j] : spans[2*j]+spans[2*j+1] : spans[2*j]+spans[2*j+1]] }
	for _, e := range state.Entries {
		if int(e.Key) >= len(c.sameKey) || int(e.State) >= len(decls) {
			continue
		}
		group := c.sameKey[e.Key]
		if group == noKey || int(group) >= n {
			continue
		}
		s := &c.slots[int(group)*len(decls)+int(e.State)]
		switch decls[e.State].kind {
		case weir_plugin_types.StateKindValue:
			if e.ItemCount > 0 {
				s.value, s.present = item(e.FirstItem), true
			}
		case weir_plugin_types.StateKindList:
			s.items = make([][]byte, e.ItemCount)
			for i := range s.items {
				s.items[i] = item(e.FirstItem + uint32(i))
			}
			s.base = len(s.items)
		default:
			s.entries = make([]entry, e.ItemCount/2)
			for i := range s.entries {
				s.entries[i] = entry{item(e.FirstItem + 2*uint32(i)), item(e.FirstItem + 2*uint32(i) + 1)}
			}
		}
	}
}

// at makes element i (with key, or none) the current one.
func (c *call) at(i int, key []byte, hasKey bool, ts int64) {
	if hasKey && key == nil {
		key = []byte{} // an empty key, not none
	}
	c.key, c.hasKey, c.timestamp = key, hasKey, ts
	c.group = noKey
	if i < len(c.sameKey) {
		c.group = c.sameKey[i]
	}
}

func (c *call) fail(i int, message string) {
	c.errors = append(c.errors, weir_plugin_types.RecordError{Index: uint32(i), Message: message})
}

// updates are state changes being packed: operands (and keys) are items.
type updates struct {
	data    []byte
	spans   []uint32
	updates []weir_plugin_types.StateUpdate
}

func (u *updates) item(b []byte) uint32 {
	u.spans = append(u.spans, uint32(len(u.data)), uint32(len(b)))
	u.data = append(u.data, b...)
	return uint32(len(u.spans)/2 - 1)
}

func (u *updates) push(state, key uint32, kind weir_plugin_types.UpdateKind, first uint32) {
	u.updates = append(u.updates, weir_plugin_types.StateUpdate{
		State: state, Key: key, Kind: kind, FirstItem: first, ItemCount: uint32(len(u.spans)/2) - first})
}

// finish packs the call's answer; keyOf(g) is element g's key.
func (c *call) finish(keyOf func(int) []byte) weir_plugin_types.Effects {
	u := &c.updates
	u.data, u.spans, u.updates = u.data[:0], u.spans[:0], u.updates[:0]
	ns := len(decls)
	for g := 0; ns > 0 && g < len(c.slots)/ns; g++ {
		key := uint32(noKey)
		for st := 0; st < ns; st++ {
			s := &c.slots[g*ns+st]
			if !s.dirty {
				continue
			}
			if key == noKey {
				key = u.item(keyOf(g))
			}
			first := uint32(len(u.spans) / 2)
			switch decls[st].kind {
			case weir_plugin_types.StateKindValue:
				if s.present {
					u.item(s.value)
					u.push(uint32(st), key, weir_plugin_types.UpdateKindSet, first)
				} else {
					u.push(uint32(st), key, weir_plugin_types.UpdateKindClear, first)
				}
			case weir_plugin_types.StateKindList:
				from, kind := s.base, weir_plugin_types.UpdateKindAppend
				if s.replaced {
					from, kind = 0, weir_plugin_types.UpdateKindReplace
				}
				for _, b := range s.items[from:] {
					u.item(b)
				}
				u.push(uint32(st), key, kind, first)
			default:
				for _, e := range s.entries {
					u.item(e.k)
					u.item(e.v)
				}
				u.push(uint32(st), key, weir_plugin_types.UpdateKindReplace, first)
			}
		}
	}
	sides := make([]weir_plugin_types.SideOutput, len(c.sides))
	for i := range c.sides {
		sides[i] = weir_plugin_types.SideOutput{Name: c.sides[i].name, Records: c.sides[i].batch()}
	}
	return weir_plugin_types.Effects{
		Outputs:      c.out.batch(),
		SideOutputs:  sides,
		StateUpdates: weir_plugin_types.StateUpdates{Items: weir_plugin_types.Items{Data: u.data, Spans: u.spans}, Updates: u.updates},
		TimerUpdates: c.timers,
		Counters:     c.counters,
		Errors:       c.errors,
	}
}

// panicked describes a recovered panic: its value and the frame of the
// plugin's code that raised it.
func panicked(r any) string {
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs)])
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "runtime.") && !strings.HasPrefix(f.Function, "weir.dev/sdk/go/") {
			return fmt.Sprintf("panic: %v (at %s:%d in %s)", r, path.Base(f.File), f.Line, f.Function)
		}
		if !more {
			return fmt.Sprintf("panic: %v", r)
		}
	}
}

type effectsResult = witTypes.Result[weir_plugin_types.Effects, weir_plugin_types.OperatorError]

func processRecord(ctx *Context, i int, r Record) {
	defer func() {
		if p := recover(); p != nil {
			ctx.call.fail(i, panicked(p))
		}
	}()
	if err := operator.Process(r, ctx); err != nil {
		ctx.call.fail(i, err.Error())
	}
}

func process(batch weir_plugin_types.Batch) effectsResult {
	c := &current
	records := batch.Records
	data, spans := records.Data, records.Spans
	n := len(records.Timestamps)
	c.start(batch.State, batch.Time, n)
	ctx := &Context{c}
	for i := 0; i < n; i++ {
		ko, kl, vo, vl := spans[4*i], spans[4*i+1], spans[4*i+2], spans[4*i+3]
		r := Record{Value: data[vo : vo+vl : vo+vl], Timestamp: records.Timestamps[i]}
		if kl != noKey {
			r.Key = data[ko : ko+kl : ko+kl]
		}
		c.at(i, r.Key, kl != noKey, r.Timestamp)
		processRecord(ctx, i, r)
	}
	return witTypes.Ok[weir_plugin_types.Effects, weir_plugin_types.OperatorError](c.finish(func(g int) []byte {
		return data[spans[4*g] : spans[4*g]+spans[4*g+1]]
	}))
}

func fireTimer(ctx *Context, h TimerHandler, i int, t Timer) {
	defer func() {
		if p := recover(); p != nil {
			ctx.call.fail(i, panicked(p))
		}
	}()
	if err := h.OnTimer(t, ctx); err != nil {
		ctx.call.fail(i, err.Error())
	}
}

func onTimer(timers weir_plugin_types.TimerBatch) effectsResult {
	c := &current
	fired := timers.Timers
	c.start(timers.State, timers.Time, len(fired))
	ctx := &Context{c}
	h, ok := operator.(TimerHandler)
	for i, f := range fired {
		c.at(i, f.Key, true, f.Timestamp)
		if ok {
			fireTimer(ctx, h, i, Timer{f.Key, f.Timestamp, f.Domain == weir_plugin_types.TimeDomainEventTime})
		}
	}
	return witTypes.Ok[weir_plugin_types.Effects, weir_plugin_types.OperatorError](c.finish(func(g int) []byte {
		return fired[g].Key
	}))
}

type initResult = witTypes.Result[weir_plugin_types.OperatorInfo, weir_plugin_types.OperatorError]

func open(ctx *InitContext) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = errors.New(panicked(p))
		}
	}()
	if newOperator == nil {
		return errors.New("no operator: call weir.Export from an init function of package main")
	}
	operator = newOperator()
	if o, ok := operator.(Opener); ok {
		return o.Open(ctx)
	}
	return nil
}

func initOperator(context weir_plugin_types.InitContext) initResult {
	ctx := &InitContext{NodeID: context.NodeId, SubtaskIndex: context.SubtaskIndex,
		Parallelism: context.Parallelism, Attempt: context.Attempt, Config: []byte(context.Config)}
	opened = false
	if err := open(ctx); err != nil {
		return witTypes.Err[weir_plugin_types.OperatorInfo](weir_plugin_types.OperatorError{Message: err.Error()})
	}
	opened = true
	decls = ctx.states
	states := make([]weir_plugin_types.StateDescriptor, len(decls))
	for i, d := range decls {
		states[i] = weir_plugin_types.StateDescriptor{Name: d.name, Kind: d.kind, Prefetch: d.prefetch}
	}
	return witTypes.Ok[weir_plugin_types.OperatorInfo, weir_plugin_types.OperatorError](weir_plugin_types.OperatorInfo{States: states})
}
