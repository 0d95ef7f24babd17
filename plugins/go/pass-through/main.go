// pass-through, in Go: emits every record unchanged (what the SDK costs per
// record, for `make bench`).
package main

import "weir.dev/sdk/go/weir"

type passThrough struct{}

func (passThrough) Process(r weir.Record, ctx *weir.Context) error {
	ctx.Emit(r.Value)
	return nil
}

func init() { weir.Export(func() weir.Operator { return passThrough{} }) }

func main() {}
