// state-probe, in Go: a test plugin that drives every kind of keyed state
// and both kinds of timers (the Rust testing/state-probe's commands).
//
// Each record is a JSON command for its key; after it the plugin emits the
// key's state as {"key":..,"count":..,"items":[..],"tags":{..}}: add
// (count += 1, append the item, tag it with the count), replace (the
// items), untag (an item), clear (everything). timer and untimer register
// and delete a timer (at, domain: event or processing) and emit nothing; a
// fired timer emits {"key":..,"fired":..,"event_time":..}. panic panics
// with the command's item; any other op fails the record.
//
// Config: {"large": true} keeps the list and the map in the host.
package main

import (
	"fmt"

	"weir.dev/sdk/go/weir"
)

type command struct {
	Op     string   `json:"op"`
	Item   string   `json:"item"`
	Items  []string `json:"items"`
	At     int64    `json:"at"`
	Domain string   `json:"domain"`
}

type probe struct {
	count *weir.ValueState[int64]
	items *weir.ListState[string]
	tags  *weir.MapState[string, int64]
}

func (p *probe) Open(ctx *weir.InitContext) error {
	var config struct {
		Large bool `json:"large"`
	}
	if err := ctx.ConfigJSON(&config); err != nil {
		return err
	}
	p.count = weir.NewValueState[int64](ctx, "count")
	p.items = weir.NewListState[string](ctx, "items")
	p.tags = weir.NewMapState[string, int64](ctx, "tags")
	if config.Large {
		p.items.Large()
		p.tags.Large()
	}
	return nil
}

func (p *probe) Process(r weir.Record, ctx *weir.Context) error {
	var cmd command
	if err := r.JSON(&cmd); err != nil {
		return err
	}
	switch cmd.Op {
	case "add":
		n, _, err := p.count.Get(ctx)
		if err != nil {
			return err
		}
		n++
		if err := p.count.Set(ctx, n); err != nil {
			return err
		}
		if err := p.items.Add(ctx, cmd.Item); err != nil {
			return err
		}
		if err := p.tags.Put(ctx, cmd.Item, n); err != nil {
			return err
		}
	case "replace":
		if err := p.items.Update(ctx, cmd.Items); err != nil {
			return err
		}
	case "untag":
		if err := p.tags.Remove(ctx, cmd.Item); err != nil {
			return err
		}
	case "clear":
		if err := p.count.Clear(ctx); err != nil {
			return err
		}
		if err := p.items.Clear(ctx); err != nil {
			return err
		}
		if err := p.tags.Clear(ctx); err != nil {
			return err
		}
	case "timer", "untimer":
		event := cmd.Domain == "event"
		switch {
		case cmd.Op == "timer" && event:
			return ctx.RegisterEventTimer(cmd.At)
		case cmd.Op == "timer":
			return ctx.RegisterProcessingTimer(cmd.At)
		case event:
			return ctx.DeleteEventTimer(cmd.At)
		default:
			return ctx.DeleteProcessingTimer(cmd.At)
		}
	case "panic":
		panic(cmd.Item)
	default:
		return fmt.Errorf("unknown op %q", cmd.Op)
	}
	return p.show(r, ctx)
}

func (p *probe) show(r weir.Record, ctx *weir.Context) error {
	n, ok, err := p.count.Get(ctx)
	if err != nil {
		return err
	}
	items, err := p.items.Get(ctx)
	if err != nil {
		return err
	}
	entries, err := p.tags.Entries(ctx)
	if err != nil {
		return err
	}
	tags := map[string]int64{}
	for _, e := range entries {
		tags[e.Key] = e.Value
	}
	var count any
	if ok {
		count = n
	}
	if items == nil {
		items = []string{}
	}
	return ctx.EmitJSON(map[string]any{"key": r.KeyString(), "count": count, "items": items, "tags": tags})
}

func (p *probe) OnTimer(t weir.Timer, ctx *weir.Context) error {
	return ctx.EmitJSON(map[string]any{"key": t.KeyString(), "fired": t.Timestamp, "event_time": t.EventTime})
}

func init() { weir.Export(func() weir.Operator { return &probe{} }) }

func main() {}
