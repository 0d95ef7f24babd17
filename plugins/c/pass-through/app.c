/* pass-through, in C: emits every record unchanged (what the SDK costs per
 * record, for `make bench`). */
#include "weir.h"

void weir_process(weir_ctx *ctx, const weir_record *record) { weir_emit(ctx, record->value); }
