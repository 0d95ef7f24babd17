/*
 * weir_json.c: top-level fields of flat JSON objects (weir.h's
 * weir_json_*), enough for the example plugins' readings and configs.
 */
#include <errno.h>
#include <stdlib.h>

#include "weir.h"

typedef struct {
    const uint8_t *p, *end;
} cursor;

/* Byte classes: whitespace, what a number is made of, and what ends a
 * scalar (whitespace, `,`, `}`, `]`): one table load a byte. */
enum { WS = 1, NUM = 2, END = 4 };
static const uint8_t cls[256] = {
    [' '] = WS | END, ['\t'] = WS | END, ['\n'] = WS | END, ['\r'] = WS | END,
    [','] = END, ['}'] = END, [']'] = END,
    ['0'] = NUM, ['1'] = NUM, ['2'] = NUM, ['3'] = NUM, ['4'] = NUM, ['5'] = NUM, ['6'] = NUM, ['7'] = NUM,
    ['8'] = NUM, ['9'] = NUM, ['.'] = NUM, ['e'] = NUM, ['E'] = NUM, ['+'] = NUM, ['-'] = NUM,
};

static void skip_ws(cursor *c) {
    while (c->p < c->end && (cls[*c->p] & WS)) c->p++;
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
    while (c->p < c->end && !(cls[*c->p] & END)) c->p++;
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

/* The length of the number text at p (0 if there is none), which must end
 * at `end` or before what ends a scalar. */
static size_t number_len(const uint8_t *p, const uint8_t *end) {
    const uint8_t *q = p;
    while (q < end && (cls[*q] & NUM)) q++;
    return q < end && !(cls[*q] & END) ? 0 : (size_t)(q - p);
}

/* The n bytes at p, NUL-terminated in `text` (or in `*heap` when longer),
 * for strtoll. */
static const char *c_string(const uint8_t *p, size_t n, char text[64], char **heap) {
    char *s = n < 64 ? text : (*heap = malloc(n + 1));
    if (s == NULL) return NULL;
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

/* The n > 0 bytes of number text at p as an integer. */
static bool int_of(const uint8_t *p, size_t n, int64_t *out) {
    /* Up to 18 digits cannot overflow; anything longer goes to strtoll. */
    size_t i = p[0] == '-';
    uint64_t v = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) v = v * 10 + (uint64_t)(p[i] - '0');
    if (i == n && n > (size_t)(p[0] == '-') && n - (p[0] == '-') <= 18) {
        *out = p[0] == '-' ? -(int64_t)v : (int64_t)v;
        return true;
    }
    char text[64], *heap = NULL, *stop;
    const char *s = c_string(p, n, text, &heap);
    bool ok = s != NULL && (errno = 0, *out = strtoll(s, &stop, 10), *stop == 0 && errno == 0);
    free(heap);
    return ok;
}

static bool to_number(const uint8_t *p, const uint8_t *end, double *out) {
    size_t n = number_len(p, end);
    return n > 0 && weir_parse_double(weir_bytes_of(p, n), out);
}

static bool to_int(const uint8_t *p, const uint8_t *end, int64_t *out) {
    size_t n = number_len(p, end);
    return n > 0 && int_of(p, n, out);
}

bool weir_json_number(weir_bytes json, const char *field, double *out) {
    cursor c;
    return find(json, field, &c) && to_number(c.p, c.end, out);
}

bool weir_json_int(weir_bytes json, const char *field, int64_t *out) {
    cursor c;
    return find(json, field, &c) && to_int(c.p, c.end, out);
}

bool weir_json_as_number(weir_bytes value, double *out) {
    return value.len > 0 && number_len(value.ptr, value.ptr + value.len) == value.len &&
           weir_parse_double(value, out);
}

bool weir_json_as_int(weir_bytes value, int64_t *out) {
    return value.len > 0 && number_len(value.ptr, value.ptr + value.len) == value.len &&
           int_of(value.ptr, value.len, out);
}

bool weir_json_as_string(weir_bytes value, weir_bytes *out) {
    if (value.len < 2 || value.ptr[0] != '"' || value.ptr[value.len - 1] != '"') return false;
    *out = weir_bytes_of(value.ptr + 1, value.len - 2);
    return true;
}

bool weir_json_member(weir_bytes *rest, weir_bytes *name, weir_bytes *value) {
    cursor c = {rest->ptr, rest->ptr + rest->len};
    skip_ws(&c);
    if (c.p < c.end && (*c.p == '{' || *c.p == ',')) c.p++;
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '"') return false;
    const uint8_t *n = c.p + 1;
    if (!skip_string(&c)) return false;
    *name = weir_bytes_of(n, (size_t)(c.p - 1 - n));
    skip_ws(&c);
    if (c.p >= c.end || *c.p != ':') return false;
    c.p++;
    skip_ws(&c);
    const uint8_t *start = c.p;
    if (!skip_value(&c) || c.p == start) return false;
    *value = weir_bytes_of(start, (size_t)(c.p - start));
    *rest = weir_bytes_of(c.p, (size_t)(c.end - c.p));
    return true;
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
