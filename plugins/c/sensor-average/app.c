/*
 * sensor-average, in C: the average temperature per sensor over tumbling
 * event-time windows, like a Flink KeyedProcessFunction.
 *
 * Each reading (°C, keyed by sensor id) is added to its window's running sum
 * in keyed map state (window end, big-endian, so the map is in time order →
 * sum and count); the first reading of a window registers an event-time
 * timer at window_end - 1. When it fires,
 * {"id":…,"window_end":…,"avg_c":…,"count":…} is emitted (avg_c rounded to
 * 6 decimals) and the window's state removed. A reading whose window has
 * fired is late: dropped and counted in late_records_dropped.
 *
 * Config: window_ms (default 5000).
 */
#include <math.h>
#include <stdio.h>

#include "weir.h"

typedef struct {
    double sum;
    uint64_t count;
} total;

static weir_state windows;
static int64_t window_ms = 5000;

/* A window end as a map key: 8 bytes, big-endian. */
static weir_bytes window_key(int64_t end, uint8_t out[8]) {
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)((uint64_t)end >> (56 - 8 * i));
    return weir_bytes_of(out, 8);
}

bool weir_open(weir_init *init) {
    if (!weir_json_int(weir_config(init), "window_ms", &window_ms)) window_ms = 5000;
    if (window_ms <= 0) {
        weir_init_fail(init, "window_ms must be positive, got %lld", (long long)window_ms);
        return false;
    }
    windows = weir_map_state(init, "windows", true);
    return true;
}

void weir_process(weir_ctx *ctx, const weir_record *record) {
    int64_t ts;
    double temperature;
    if (!weir_json_int(record->value, "timestamp", &ts) || !weir_json_number(record->value, "temperature", &temperature)) {
        weir_fail(ctx, "not a reading (timestamp, temperature): %.*s", (int)record->value.len,
                  (const char *)record->value.ptr);
        return;
    }
    int64_t rem = ts % window_ms;
    if (rem < 0) rem += window_ms;
    int64_t end = ts - rem + window_ms;
    if (end - 1 <= weir_watermark(ctx)) {
        weir_count(ctx, "late_records_dropped", 1);
        return;
    }
    uint8_t k[8];
    weir_bytes key = window_key(end, k), old;
    total t = {0, 0};
    if (!weir_map_get(ctx, windows, key, &old) || !weir_read(old, &t, sizeof t)) weir_register_event_timer(ctx, end - 1);
    t.sum += temperature;
    t.count++;
    weir_map_put(ctx, windows, key, WEIR_BYTES_OF(t));
}

void weir_on_timer(weir_ctx *ctx, const weir_timer *timer) {
    int64_t end = timer->timestamp + 1;
    uint8_t k[8];
    weir_bytes key = window_key(end, k), old;
    total t;
    if (!weir_map_get(ctx, windows, key, &old) || !weir_read(old, &t, sizeof t)) return;
    weir_map_remove(ctx, windows, key);
    char out[256];
    int n = snprintf(out, sizeof out, "{\"id\":\"%.*s\",\"window_end\":%lld,\"avg_c\":%.17g,\"count\":%llu}",
                     (int)timer->key.len, (const char *)timer->key.ptr, (long long)end,
                     round(t.sum / (double)t.count * 1e6) / 1e6, (unsigned long long)t.count);
    weir_emit(ctx, weir_bytes_of(out, (size_t)n));
}
