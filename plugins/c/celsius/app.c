/*
 * celsius, in C: converts sensor readings from °F to °C.
 *
 * Input: JSON readings {"id":"sensor_7","timestamp":1700000000000,"temperature":71.3}
 * (°F). Output: the same reading in °C, with the record's key and timestamp.
 */
#include <stdio.h>

#include "weir.h"

void weir_process(weir_ctx *ctx, const weir_record *record) {
    weir_bytes id;
    int64_t timestamp;
    double f;
    if (!weir_json_string(record->value, "id", &id) || !weir_json_int(record->value, "timestamp", &timestamp) ||
        !weir_json_number(record->value, "temperature", &f)) {
        weir_fail(ctx, "not a reading (id, timestamp, temperature): %.*s", (int)record->value.len,
                  (const char *)record->value.ptr);
        return;
    }
    char out[256];
    int n = snprintf(out, sizeof out, "{\"id\":\"%.*s\",\"timestamp\":%lld,\"temperature\":%.17g}", (int)id.len,
                     (const char *)id.ptr, (long long)timestamp, (f - 32.0) * (5.0 / 9.0));
    if (n < 0 || (size_t)n >= sizeof out) {
        weir_fail(ctx, "reading too long (%d bytes)", n);
        return;
    }
    weir_emit(ctx, weir_bytes_of(out, (size_t)n));
}
