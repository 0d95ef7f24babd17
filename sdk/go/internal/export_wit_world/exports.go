// Package export_wit_world is where the bindings `wit-bindgen go` generates
// (into ../, at build time) look for the operator world's exports. They are
// forwarded to the SDK's runtime (package weir), which sets them when it is
// imported.
package export_wit_world

import (
	witTypes "go.bytecodealliance.org/pkg/wit/types"
	"weir.dev/sdk/go/internal/weir_plugin_types"
)

type (
	initResult   = witTypes.Result[weir_plugin_types.OperatorInfo, weir_plugin_types.OperatorError]
	effectResult = witTypes.Result[weir_plugin_types.Effects, weir_plugin_types.OperatorError]
)

// The runtime's implementations of the exports.
var (
	InitImpl    func(weir_plugin_types.InitContext) initResult
	ProcessImpl func(weir_plugin_types.Batch) effectResult
	OnTimerImpl func(weir_plugin_types.TimerBatch) effectResult
)

func Init(context weir_plugin_types.InitContext) initResult { return InitImpl(context) }

func Process(batch weir_plugin_types.Batch) effectResult { return ProcessImpl(batch) }

func OnTimer(timers weir_plugin_types.TimerBatch) effectResult { return OnTimerImpl(timers) }
