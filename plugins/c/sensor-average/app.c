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
 * Config: window_ms (default 5000), `input: json | binary` (binary: the Rust
 * plugins' layout, as celsius writes it with `output: binary`).
 */
#include <math.h>

#include "weir.h"

typedef struct {
    double sum;
    uint64_t count;
} total;

static weir_state windows;
static int64_t window_ms = 5000;
static bool binary;

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
    return weir_config_binary(init, "input", &binary);
}

/* Reads a JSON reading's timestamp and temperature in one pass. */
static bool read_reading(weir_bytes json, int64_t *timestamp, double *temperature) {
    weir_bytes rest = json, name, value;
    int found = 0;
    while (weir_json_member(&rest, &name, &value)) {
        if (WEIR_IS(name, "timestamp"))
            found |= weir_json_as_int(value, timestamp) ? 1 : 0;
        else if (WEIR_IS(name, "temperature"))
            found |= weir_json_as_number(value, temperature) ? 2 : 0;
    }
    return found == 3;
}

void weir_process(weir_ctx *ctx, const weir_record *record) {
    int64_t ts;
    double temperature;
    if (binary) {
        weir_bin_reader r = weir_bin_reader_of(record->value);
        weir_bin_str(&r); /* the id: the record's key is the sensor */
        ts = weir_bin_i64(&r);
        temperature = weir_bin_f64(&r);
        if (!weir_bin_done(&r)) {
            weir_fail(ctx, "not a binary reading (id, timestamp, temperature): %zu bytes", record->value.len);
            return;
        }
    } else if (!read_reading(record->value, &ts, &temperature)) {
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
    uint8_t out[256];
    weir_json_writer w = weir_json_writer_of(out, sizeof out);
    weir_json_begin(&w);
    weir_json_field(&w, "id");
    weir_json_put_string(&w, timer->key);
    weir_json_field(&w, "window_end");
    weir_json_put_int(&w, end);
    weir_json_field(&w, "avg_c");
    weir_json_put_number(&w, round(t.sum / (double)t.count * 1e6) / 1e6);
    weir_json_field(&w, "count");
    weir_json_put_uint(&w, t.count);
    weir_json_end(&w);
    weir_bytes average;
    if (!weir_json_written(&w, &average)) {
        weir_fail(ctx, "average too long (a key of %zu bytes)", timer->key.len);
        return;
    }
    weir_emit(ctx, average);
}
