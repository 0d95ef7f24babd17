/*
 * state-probe, in C: a test plugin that drives every kind of keyed state and
 * both kinds of timers (the Rust testing/state-probe's commands), storing
 * JSON as the other languages' probes do.
 *
 * Each record is a JSON command for its key; after it the plugin emits the
 * key's state as {"key":..,"count":..,"items":[..],"tags":{..}}: add
 * (count += 1, append the item, tag it with the count), replace (the items),
 * untag (an item), clear (everything). timer and untimer register and delete
 * a timer (at, domain: event or processing) and emit nothing; a fired timer
 * emits {"key":..,"fired":..,"event_time":..}. trap traps (the C way to
 * fail: the task fails); any other op fails the record.
 *
 * Config: {"large": true} keeps the list and the map in the host.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "weir.h"

static weir_state count, items, tags;

bool weir_open(weir_init *init) {
    weir_bytes large;
    bool prefetch = !(weir_json_raw(weir_config(init), "large", &large) && large.len == 4 && !memcmp(large.ptr, "true", 4));
    count = weir_value_state(init, "count");
    items = weir_list_state(init, "items", prefetch);
    tags = weir_map_state(init, "tags", prefetch);
    return true;
}

static bool is(weir_bytes b, const char *s) { return b.len == strlen(s) && memcmp(b.ptr, s, b.len) == 0; }

/* Text being built for output. */
typedef struct {
    char text[8192];
    size_t len;
} out;

__attribute__((format(printf, 2, 3)))
static void put(out *o, const char *format, ...) {
    va_list args;
    va_start(args, format);
    int n = vsnprintf(o->text + o->len, sizeof o->text - o->len, format, args);
    va_end(args);
    if (n < 0 || (size_t)n >= sizeof o->text - o->len) abort();
    o->len += (size_t)n;
}

static void show(weir_ctx *ctx, const weir_record *record) {
    out o = {.len = 0};
    weir_bytes c;
    put(&o, "{\"key\":\"%.*s\",\"count\":", (int)record->key.len, (const char *)record->key.ptr);
    if (weir_value_get(ctx, count, &c)) put(&o, "%.*s", (int)c.len, (const char *)c.ptr);
    else put(&o, "null");
    const weir_bytes *list;
    size_t n = weir_list_get(ctx, items, &list);
    put(&o, ",\"items\":[");
    for (size_t i = 0; i < n; i++) put(&o, "%s%.*s", i ? "," : "", (int)list[i].len, (const char *)list[i].ptr);
    const weir_entry *entries;
    n = weir_map_entries(ctx, tags, &entries);
    put(&o, "],\"tags\":{");
    for (size_t i = 0; i < n; i++)
        put(&o, "%s%.*s:%.*s", i ? "," : "", (int)entries[i].key.len, (const char *)entries[i].key.ptr,
            (int)entries[i].value.len, (const char *)entries[i].value.ptr);
    put(&o, "}}");
    weir_emit(ctx, weir_bytes_of(o.text, o.len));
}

void weir_process(weir_ctx *ctx, const weir_record *record) {
    weir_bytes op, item, list, domain;
    if (!weir_json_string(record->value, "op", &op)) {
        weir_fail(ctx, "no op in %.*s", (int)record->value.len, (const char *)record->value.ptr);
        return;
    }
    if (is(op, "add")) {
        weir_bytes c;
        char text[24];
        long long n = 1;
        if (weir_value_get(ctx, count, &c) && c.len < sizeof text) {
            memcpy(text, c.ptr, c.len); /* state bytes are not NUL-terminated */
            text[c.len] = 0;
            n = strtoll(text, NULL, 10) + 1;
        }
        int len = snprintf(text, sizeof text, "%lld", n);
        weir_value_set(ctx, count, weir_bytes_of(text, (size_t)len));
        weir_json_raw(record->value, "item", &item);
        weir_list_add(ctx, items, item);
        weir_map_put(ctx, tags, item, weir_bytes_of(text, (size_t)len));
    } else if (is(op, "replace")) {
        weir_bytes all[64], e;
        size_t n = 0;
        weir_json_raw(record->value, "items", &list);
        while (n < 64 && weir_json_next(&list, &e)) all[n++] = e;
        weir_list_update(ctx, items, all, n);
    } else if (is(op, "untag")) {
        weir_json_raw(record->value, "item", &item);
        weir_map_remove(ctx, tags, item);
    } else if (is(op, "clear")) {
        weir_value_clear(ctx, count);
        weir_list_clear(ctx, items);
        weir_map_clear(ctx, tags);
    } else if (is(op, "timer") || is(op, "untimer")) {
        int64_t at;
        weir_json_int(record->value, "at", &at);
        weir_json_string(record->value, "domain", &domain);
        bool event = is(domain, "event");
        if (is(op, "timer")) event ? weir_register_event_timer(ctx, at) : weir_register_processing_timer(ctx, at);
        else event ? weir_delete_event_timer(ctx, at) : weir_delete_processing_timer(ctx, at);
        return;
    } else if (is(op, "trap")) {
        __builtin_trap();
    } else {
        weir_fail(ctx, "unknown op \"%.*s\"", (int)op.len, (const char *)op.ptr);
        return;
    }
    show(ctx, record);
}

void weir_on_timer(weir_ctx *ctx, const weir_timer *timer) {
    char text[128];
    int n = snprintf(text, sizeof text, "{\"key\":\"%.*s\",\"fired\":%lld,\"event_time\":%s}", (int)timer->key.len,
                     (const char *)timer->key.ptr, (long long)timer->timestamp, timer->event_time ? "true" : "false");
    weir_emit(ctx, weir_bytes_of(text, (size_t)n));
}
