/*
 * weir.h: the C SDK of Weir operators (the `weir:plugin` operator world).
 *
 * An operator is three functions the plugin defines:
 *
 *     #include "weir.h"
 *
 *     static weir_state count;
 *
 *     bool weir_open(weir_init *init) {             // once per instance
 *         count = weir_value_state(init, "count");
 *         return true;
 *     }
 *
 *     void weir_process(weir_ctx *ctx, const weir_record *record) {
 *         uint64_t n = 0;                            // per record
 *         weir_bytes old;
 *         if (weir_value_get(ctx, count, &old)) weir_read(old, &n, sizeof n);
 *         n++;
 *         weir_value_set(ctx, count, WEIR_BYTES_OF(n));
 *         char out[64];
 *         int len = snprintf(out, sizeof out, "{\"count\":%llu}", (unsigned long long)n);
 *         weir_emit(ctx, weir_bytes_of(out, (size_t)len));
 *     }
 *
 *     void weir_on_timer(weir_ctx *ctx, const weir_timer *timer) { ... }
 *
 * `weir_open` and `weir_on_timer` may be left out. The SDK (weir.c) does
 * the packing: the host sends a batch of records with the prefetched state
 * of their keys in one call, the SDK calls `weir_process` per record, and
 * answers with every output, state change and timer at once.
 *
 * Lifetimes: bytes the SDK hands out (record keys and values, state
 * contents) stay valid until the current call returns, that is until the
 * last record of the batch is processed. Bytes handed to the SDK are copied.
 *
 * Build (see docs/languages.md): `wit-bindgen c` on wit/operator.wit for the
 * operator world, then clang --target=wasm32-wasi -mexec-model=reactor over
 * the app, the SDK (weir.c, weir_state.c, weir_json.c, weir_json_write.c,
 * weir_bin.c; weir_numbers.cc with clang++) and the generated operator.c, then `wasm-tools component new` (sdk/c/build.sh does it all).
 */
#ifndef WEIR_H
#define WEIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes the caller does not own. */
typedef struct {
    const uint8_t *ptr;
    size_t len;
} weir_bytes;

static inline weir_bytes weir_bytes_of(const void *ptr, size_t len) {
    weir_bytes b = {(const uint8_t *)ptr, len};
    return b;
}

/* A NUL-terminated string's bytes. */
static inline weir_bytes weir_str(const char *s) { return weir_bytes_of(s, strlen(s)); }

/* Whether `b` holds exactly the text of the string literal `lit`, compared
 * inline (a field name: `WEIR_IS(name, "temperature")`). */
#define WEIR_IS(b, lit) ((b).len == sizeof(lit) - 1 && weir__same((b).ptr, lit, sizeof(lit) - 1))
static inline bool weir__same(const uint8_t *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (a[i] != (uint8_t)b[i]) return false;
    return true;
}

/* The bytes of a fixed-size value (a number, a struct): the usual encoding
 * of C state. */
#define WEIR_BYTES_OF(x) weir_bytes_of(&(x), sizeof(x))

/* Copies `b` into `out` when it has exactly `size` bytes; false otherwise. */
static inline bool weir_read(weir_bytes b, void *out, size_t size) {
    if (b.len != size) return false;
    memcpy(out, b.ptr, size);
    return true;
}

/* One input record. `has_key` is false when the node has no `key_by`. */
typedef struct {
    bool has_key;
    weir_bytes key;
    weir_bytes value;
    /* Event time, ms since the Unix epoch. */
    int64_t timestamp;
} weir_record;

/* A timer that fired, for its key. */
typedef struct {
    weir_bytes key;
    int64_t timestamp;
    /* True for an event-time timer, false for a processing-time one. */
    bool event_time;
} weir_timer;

/* One map entry. */
typedef struct {
    weir_bytes key;
    weir_bytes value;
} weir_entry;

/* A keyed state declared in `weir_open`. */
typedef uint32_t weir_state;

typedef struct weir_init weir_init;
typedef struct weir_ctx weir_ctx;

/* ---- What the plugin defines ---- */

/* Once per parallel instance, before any record. Declares the states.
 * Return false (after weir_init_fail) to fail the task. Optional. */
bool weir_open(weir_init *init);
/* Once per record. A failure (weir_fail) fails this record alone; the
 * node's `on_error` decides what happens to it. */
void weir_process(weir_ctx *ctx, const weir_record *record);
/* Once per fired timer, with the timer's key current. Optional. */
void weir_on_timer(weir_ctx *ctx, const weir_timer *timer);

/* ---- In weir_open ---- */

/* The node's `config` from the job spec, as JSON text (`null` if absent);
 * valid during weir_open. */
weir_bytes weir_config(const weir_init *init);
const char *weir_node_id(const weir_init *init);
uint32_t weir_subtask_index(const weir_init *init);
uint32_t weir_parallelism(const weir_init *init);

/* Keyed state, scoped to the current record's (or timer's) key. A
 * prefetched state comes with each batch, so reading and writing it costs
 * no host call; `prefetch = false` keeps a large list or map in the host,
 * one host call per access. Value states are always prefetched. */
weir_state weir_value_state(weir_init *init, const char *name);
weir_state weir_list_state(weir_init *init, const char *name, bool prefetch);
weir_state weir_map_state(weir_init *init, const char *name, bool prefetch);

/* Fails `init` with a printf-style message. */
void weir_init_fail(weir_init *init, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* ---- In weir_process and weir_on_timer ---- */

/* The operator's event-time watermark and the host's processing time when
 * the call started. */
int64_t weir_watermark(const weir_ctx *ctx);
int64_t weir_processing_time(const weir_ctx *ctx);

/* Emits a record with the current key and timestamp. */
void weir_emit(weir_ctx *ctx, weir_bytes value);
/* Emits a record with the given key (NULL: none) and timestamp. */
void weir_emit_keyed(weir_ctx *ctx, const weir_bytes *key, weir_bytes value, int64_t timestamp);
/* Emits to the side output `output` (the job spec routes it, as `node.output`). */
void weir_emit_to(weir_ctx *ctx, const char *output, weir_bytes value);
/* Adds `n` to a counter, exported as a Prometheus metric by the host. */
void weir_count(weir_ctx *ctx, const char *name, uint64_t n);

/* Timers of the current key (the node needs `key_by`). */
void weir_register_event_timer(weir_ctx *ctx, int64_t timestamp);
void weir_register_processing_timer(weir_ctx *ctx, int64_t timestamp);
void weir_delete_event_timer(weir_ctx *ctx, int64_t timestamp);
void weir_delete_processing_timer(weir_ctx *ctx, int64_t timestamp);

/* Fails the current record (or timer) with a printf-style message; what was
 * done for it before stays done. The first failure of a record counts. */
void weir_fail(weir_ctx *ctx, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* True once the current record has failed. */
bool weir_failed(const weir_ctx *ctx);

/* Value state: false when the key has none. */
bool weir_value_get(weir_ctx *ctx, weir_state state, weir_bytes *value);
void weir_value_set(weir_ctx *ctx, weir_state state, weir_bytes value);
void weir_value_clear(weir_ctx *ctx, weir_state state);

/* List state: the key's elements (*items is set; their count returned). */
size_t weir_list_get(weir_ctx *ctx, weir_state state, const weir_bytes **items);
void weir_list_add(weir_ctx *ctx, weir_state state, weir_bytes value);
/* Replaces the key's elements. */
void weir_list_update(weir_ctx *ctx, weir_state state, const weir_bytes *values, size_t count);
void weir_list_clear(weir_ctx *ctx, weir_state state);

/* Map state, ordered by the map keys' bytes. */
bool weir_map_get(weir_ctx *ctx, weir_state state, weir_bytes key, weir_bytes *value);
void weir_map_put(weir_ctx *ctx, weir_state state, weir_bytes key, weir_bytes value);
void weir_map_remove(weir_ctx *ctx, weir_state state, weir_bytes key);
/* The key's entries in map-key order (*entries is set; their count returned). */
size_t weir_map_entries(weir_ctx *ctx, weir_state state, const weir_entry **entries);
void weir_map_clear(weir_ctx *ctx, weir_state state);

/* ---- Anywhere ---- */

typedef enum { WEIR_TRACE, WEIR_DEBUG, WEIR_INFO, WEIR_WARN, WEIR_ERROR } weir_level;
/* Logs into the host's log, tagged with the node and subtask. */
void weir_log(weir_level level, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* Flat JSON objects, as the example plugins read them: the top-level field
 * `field` of the object in `json`, as a number, an integer or a string
 * (the string's bytes as they are, escapes not decoded). False when the
 * field is missing or of another type. Nested objects and arrays are
 * skipped, not searched; for anything more, compile a JSON library such as
 * cJSON with the same clang. */
bool weir_json_number(weir_bytes json, const char *field, double *out);
bool weir_json_int(weir_bytes json, const char *field, int64_t *out);
bool weir_json_string(weir_bytes json, const char *field, weir_bytes *out);
/* The field's value as JSON text, whatever its type. */
bool weir_json_raw(weir_bytes json, const char *field, weir_bytes *out);
/* Numbers as text (weir_numbers.cc): reads a decimal (all of `text`)
 * exactly, as strtod would but several times faster; writes the shortest
 * text that reads back as `v` (as Rust and JavaScript print numbers: 65.5,
 * 21.833333333333332, 1e+21) into buf and returns its length, 0 if it does
 * not fit (32 bytes always do). */
bool weir_parse_double(weir_bytes text, double *out);
size_t weir_format_double(char *buf, size_t size, double v);

/* Writes JSON into a buffer without printf (weir_json_write.c): objects
 * (nested up to 64 deep) whose fields are put in order, commas and quotes
 * included.
 *
 *     uint8_t buf[256];
 *     weir_json_writer w = weir_json_writer_of(buf, sizeof buf);
 *     weir_json_begin(&w);
 *     weir_json_field(&w, "id");
 *     weir_json_put_string(&w, key);     // quoted and escaped
 *     weir_json_field(&w, "avg_c");
 *     weir_json_put_number(&w, avg);     // shortest, as Rust prints it
 *     weir_json_end(&w);
 *     weir_bytes out;
 *     if (weir_json_written(&w, &out)) weir_emit(ctx, out);
 *
 * A write past the buffer's end makes weir_json_written false. */
typedef struct {
    uint8_t *start, *p, *end;
    bool ok;
    int depth;
    uint64_t started; /* bit d: the object at depth d has a field */
} weir_json_writer;
weir_json_writer weir_json_writer_of(void *buf, size_t size);
void weir_json_begin(weir_json_writer *w);
void weir_json_end(weir_json_writer *w);
/* The next field's name (plain: written as it is between quotes). */
void weir_json_field(weir_json_writer *w, const char *name);
void weir_json_put_string(weir_json_writer *w, weir_bytes s);
void weir_json_put_int(weir_json_writer *w, int64_t v);
void weir_json_put_uint(weir_json_writer *w, uint64_t v);
/* Non-finite numbers, which JSON has not, are written as null. */
void weir_json_put_number(weir_json_writer *w, double v);
/* JSON text as it is (a value read with weir_json_member or _raw). */
void weir_json_put_raw(weir_json_writer *w, weir_bytes json);
bool weir_json_written(const weir_json_writer *w, weir_bytes *out);

/* Iterates a JSON object's members in one pass: `*rest` starts as the
 * object's text and each call sets `*name` (its bytes, escapes not decoded)
 * and `*value` (JSON text) to the next member's; false after the last.
 * Read the values with weir_json_as_*, false when of another type. */
bool weir_json_member(weir_bytes *rest, weir_bytes *name, weir_bytes *value);
bool weir_json_as_number(weir_bytes value, double *out);
bool weir_json_as_int(weir_bytes value, int64_t *out);
bool weir_json_as_string(weir_bytes value, weir_bytes *out);
/* Iterates a JSON array: `*rest` starts as the array's text (from
 * weir_json_raw) and each call sets `*element` to the next element's JSON
 * text; false after the last. */
bool weir_json_next(weir_bytes *rest, weir_bytes *element);

/* The Rust SDK's binary encoding (postcard), field by field, so that a C
 * plugin's records are what a Rust plugin with `Bin` (or `output: binary`)
 * reads and writes: a struct is its fields in order; a string or bytes
 * field its length as a varint, then its bytes; an unsigned integer a
 * varint (7 bits a byte, low first); a signed one a zigzag varint; a double
 * its 8 little-endian bytes.
 *
 *     uint8_t buf[64];
 *     weir_bin_writer w = weir_bin_writer_of(buf, sizeof buf);
 *     weir_bin_put_str(&w, id);
 *     weir_bin_put_i64(&w, timestamp);
 *     weir_bin_put_f64(&w, temperature);
 *     weir_bytes out;
 *     if (weir_bin_written(&w, &out)) weir_emit(ctx, out);
 *
 *     weir_bin_reader r = weir_bin_reader_of(record->value);
 *     weir_bytes id = weir_bin_str(&r);
 *     int64_t ts = weir_bin_i64(&r);
 *     double t = weir_bin_f64(&r);
 *     if (!weir_bin_done(&r)) weir_fail(ctx, "not a reading");
 *
 * A write past the buffer's end or a read past the input's makes the
 * writer's or reader's result false (later reads return zero). */
typedef struct {
    uint8_t *start, *p, *end;
    bool ok;
} weir_bin_writer;
weir_bin_writer weir_bin_writer_of(void *buf, size_t size);
void weir_bin_put_str(weir_bin_writer *w, weir_bytes s);
void weir_bin_put_u64(weir_bin_writer *w, uint64_t v);
void weir_bin_put_i64(weir_bin_writer *w, int64_t v);
void weir_bin_put_f64(weir_bin_writer *w, double v);
/* What was written; false if it did not fit. */
bool weir_bin_written(const weir_bin_writer *w, weir_bytes *out);

typedef struct {
    const uint8_t *p, *end;
    bool ok;
} weir_bin_reader;
weir_bin_reader weir_bin_reader_of(weir_bytes in);
weir_bytes weir_bin_str(weir_bin_reader *r);
uint64_t weir_bin_u64(weir_bin_reader *r);
int64_t weir_bin_i64(weir_bin_reader *r);
double weir_bin_f64(weir_bin_reader *r);
/* True when every field read was whole and nothing is left over. */
bool weir_bin_done(const weir_bin_reader *r);

/* The config's field `field` names the binary encoding: true for "binary",
 * false for "json" or no such field; anything else fails the init. */
bool weir_config_binary(weir_init *init, const char *field, bool *binary);

#ifdef __cplusplus
}
#endif

#endif
