/*
 * celsius, in C: converts sensor readings from °F to °C.
 *
 * Input: JSON readings {"id":"sensor_7","timestamp":1700000000000,"temperature":71.3}
 * (°F). Output: the same reading in °C, with the record's key and timestamp.
 * Config (optional): `output: json | binary`, the encoding of the readings it
 * emits; binary is the Rust plugins' layout (id, timestamp, temperature in
 * weir_bin's encoding), cheaper to write and for the next operator to read.
 */

#include "weir.h"

static bool binary;

bool weir_open(weir_init *init) { return weir_config_binary(init, "output", &binary); }

/* Reads a reading's three fields in one pass over its members. */
static bool read_reading(weir_bytes json, weir_bytes *id, weir_bytes *id_json, int64_t *timestamp, double *f) {
    weir_bytes rest = json, name, value;
    int found = 0;
    while (weir_json_member(&rest, &name, &value)) {
        if (WEIR_IS(name, "id")) {
            *id_json = value;
            found |= weir_json_as_string(value, id) ? 1 : 0;
        }
        else if (WEIR_IS(name, "timestamp"))
            found |= weir_json_as_int(value, timestamp) ? 2 : 0;
        else if (WEIR_IS(name, "temperature"))
            found |= weir_json_as_number(value, f) ? 4 : 0;
    }
    return found == 7;
}

void weir_process(weir_ctx *ctx, const weir_record *record) {
    weir_bytes id, id_json;
    int64_t timestamp;
    double f;
    if (!read_reading(record->value, &id, &id_json, &timestamp, &f)) {
        weir_fail(ctx, "not a reading (id, timestamp, temperature): %.*s", (int)record->value.len,
                  (const char *)record->value.ptr);
        return;
    }
    double celsius = (f - 32.0) * (5.0 / 9.0);
    uint8_t out[256];
    weir_bytes reading;
    if (binary) {
        weir_bin_writer w = weir_bin_writer_of(out, sizeof out);
        weir_bin_put_str(&w, id);
        weir_bin_put_i64(&w, timestamp);
        weir_bin_put_f64(&w, celsius);
        if (!weir_bin_written(&w, &reading)) {
            weir_fail(ctx, "reading too long (an id of %zu bytes)", id.len);
            return;
        }
    } else {
        weir_json_writer w = weir_json_writer_of(out, sizeof out);
        weir_json_begin(&w);
        weir_json_field(&w, "id");
        weir_json_put_raw(&w, id_json); /* as it came, escapes and all */
        weir_json_field(&w, "timestamp");
        weir_json_put_int(&w, timestamp);
        weir_json_field(&w, "temperature");
        weir_json_put_number(&w, celsius);
        weir_json_end(&w);
        if (!weir_json_written(&w, &reading)) {
            weir_fail(ctx, "reading too long (an id of %zu bytes)", id.len);
            return;
        }
    }
    weir_emit(ctx, reading);
}
