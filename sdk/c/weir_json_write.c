/*
 * weir_json_write.c: writing JSON without printf (weir.h's weir_json_writer).
 */
#include <math.h>

#include "weir.h"

weir_json_writer weir_json_writer_of(void *buf, size_t size) {
    uint8_t *p = buf;
    return (weir_json_writer){p, p, p + size, true, 0, 0};
}

static void put(weir_json_writer *w, const void *bytes, size_t n) {
    if (!w->ok || (size_t)(w->end - w->p) < n) {
        w->ok = false;
        return;
    }
    memcpy(w->p, bytes, n);
    w->p += n;
}

static void put_char(weir_json_writer *w, char c) { put(w, &c, 1); }

void weir_json_begin(weir_json_writer *w) {
    put_char(w, '{');
    if (++w->depth > 64) w->ok = false;
    else w->started &= ~(1ULL << (w->depth - 1));
}

void weir_json_end(weir_json_writer *w) {
    put_char(w, '}');
    if (w->depth-- <= 0) w->ok = false;
}

void weir_json_field(weir_json_writer *w, const char *name) {
    if (w->depth <= 0 || w->depth > 64) {
        w->ok = false;
        return;
    }
    uint64_t bit = 1ULL << (w->depth - 1);
    if (w->started & bit) put_char(w, ',');
    w->started |= bit;
    put_char(w, '"');
    put(w, name, strlen(name));
    put(w, "\":", 2);
}

void weir_json_put_string(weir_json_writer *w, weir_bytes s) {
    static const char hex[] = "0123456789abcdef";
    put_char(w, '"');
    size_t from = 0;
    for (size_t i = 0; i < s.len; i++) {
        uint8_t c = s.ptr[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        put(w, s.ptr + from, i - from);
        from = i + 1;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(w, e, 2);
        } else if (c == '\n') put(w, "\\n", 2);
        else if (c == '\t') put(w, "\\t", 2);
        else if (c == '\r') put(w, "\\r", 2);
        else {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(w, e, 6);
        }
    }
    put(w, s.ptr + from, s.len - from);
    put_char(w, '"');
}

void weir_json_put_uint(weir_json_writer *w, uint64_t v) {
    char digits[20];
    int n = 0;
    do digits[19 - n++] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    put(w, digits + 20 - n, (size_t)n);
}

void weir_json_put_int(weir_json_writer *w, int64_t v) {
    if (v < 0) put_char(w, '-');
    weir_json_put_uint(w, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
}

void weir_json_put_number(weir_json_writer *w, double v) {
    if (!isfinite(v)) {
        put(w, "null", 4);
        return;
    }
    char text[32];
    put(w, text, weir_format_double(text, sizeof text, v));
}

void weir_json_put_raw(weir_json_writer *w, weir_bytes json) { put(w, json.ptr, json.len); }

bool weir_json_written(const weir_json_writer *w, weir_bytes *out) {
    *out = weir_bytes_of(w->start, (size_t)(w->p - w->start));
    return w->ok && w->depth == 0;
}
