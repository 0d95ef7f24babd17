/*
 * weir_json.c: top-level fields of flat JSON objects (weir.h's
 * weir_json_*), enough for the example plugins' readings and configs.
 */
#include <stdlib.h>

#include "weir.h"

typedef struct {
    const uint8_t *p, *end;
} cursor;

static void skip_ws(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

/* Skips a string at the cursor (on its opening quote); false if unterminated. */
static bool skip_string(cursor *c) {
    for (c->p++; c->p < c->end; c->p++) {
        if (*c->p == '\\') c->p++;
        else if (*c->p == '"') {
            c->p++;
            return true;
        }
    }
    return false;
}

/* Skips one value of any kind. */
static bool skip_value(cursor *c) {
    skip_ws(c);
    if (c->p >= c->end) return false;
    if (*c->p == '"') return skip_string(c);
    if (*c->p == '{' || *c->p == '[') {
        int depth = 0;
        while (c->p < c->end) {
            uint8_t ch = *c->p;
            if (ch == '"') {
                if (!skip_string(c)) return false;
                continue;
            }
            if (ch == '{' || ch == '[') depth++;
            else if (ch == '}' || ch == ']') {
                if (--depth == 0) {
                    c->p++;
                    return true;
                }
            }
            c->p++;
        }
        return false;
    }
    while (c->p < c->end && *c->p != ',' && *c->p != '}' && *c->p != ']' && *c->p != ' ' && *c->p != '\n') c->p++;
    return true;
}

/* Moves the cursor to the value of the top-level `field`; false if absent. */
static bool find(weir_bytes json, const char *field, cursor *c) {
    size_t flen = strlen(field);
    c->p = json.ptr;
    c->end = json.ptr + json.len;
    skip_ws(c);
    if (c->p >= c->end || *c->p != '{') return false;
    c->p++;
    for (;;) {
        skip_ws(c);
        if (c->p >= c->end || *c->p != '"') return false;
        const uint8_t *name = c->p + 1;
        if (!skip_string(c)) return false;
        size_t nlen = (size_t)(c->p - 1 - name);
        skip_ws(c);
        if (c->p >= c->end || *c->p != ':') return false;
        c->p++;
        skip_ws(c);
        if (nlen == flen && memcmp(name, field, flen) == 0) return true;
        if (!skip_value(c)) return false;
        skip_ws(c);
        if (c->p >= c->end || *c->p != ',') return false;
        c->p++;
    }
}

/* The number at the cursor, copied out for strtod (the input is not
 * NUL-terminated). */
static bool number_text(cursor *c, char *text, size_t size) {
    size_t n = 0;
    while (c->p + n < c->end && n + 1 < size &&
           ((c->p[n] >= '0' && c->p[n] <= '9') || c->p[n] == '-' || c->p[n] == '+' || c->p[n] == '.' ||
            c->p[n] == 'e' || c->p[n] == 'E'))
        n++;
    if (n == 0) return false;
    memcpy(text, c->p, n);
    text[n] = 0;
    return true;
}

bool weir_json_number(weir_bytes json, const char *field, double *out) {
    cursor c;
    char text[64], *end;
    if (!find(json, field, &c) || !number_text(&c, text, sizeof text)) return false;
    *out = strtod(text, &end);
    return *end == 0;
}

bool weir_json_int(weir_bytes json, const char *field, int64_t *out) {
    cursor c;
    char text[64], *end;
    if (!find(json, field, &c) || !number_text(&c, text, sizeof text)) return false;
    *out = strtoll(text, &end, 10);
    return *end == 0;
}

bool weir_json_string(weir_bytes json, const char *field, weir_bytes *out) {
    cursor c;
    if (!find(json, field, &c) || c.p >= c.end || *c.p != '"') return false;
    const uint8_t *start = c.p + 1;
    if (!skip_string(&c)) return false;
    *out = weir_bytes_of(start, (size_t)(c.p - 1 - start));
    return true;
}

bool weir_json_raw(weir_bytes json, const char *field, weir_bytes *out) {
    cursor c;
    if (!find(json, field, &c)) return false;
    const uint8_t *start = c.p;
    if (!skip_value(&c) || c.p == start) return false;
    *out = weir_bytes_of(start, (size_t)(c.p - start));
    return true;
}

bool weir_json_next(weir_bytes *rest, weir_bytes *element) {
    cursor c = {rest->ptr, rest->ptr + rest->len};
    skip_ws(&c);
    if (c.p < c.end && (*c.p == '[' || *c.p == ',')) c.p++;
    skip_ws(&c);
    if (c.p >= c.end || *c.p == ']') return false;
    const uint8_t *start = c.p;
    if (!skip_value(&c) || c.p == start) return false;
    *element = weir_bytes_of(start, (size_t)(c.p - start));
    *rest = weir_bytes_of(c.p, (size_t)(c.end - c.p));
    return true;
}
