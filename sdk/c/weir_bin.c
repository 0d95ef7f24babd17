/*
 * weir_bin.c: the Rust SDK's binary encoding (postcard), field by field
 * (weir.h's weir_bin_*).
 */
#include "weir.h"

weir_bin_writer weir_bin_writer_of(void *buf, size_t size) {
    uint8_t *p = buf;
    return (weir_bin_writer){p, p, p + size, true};
}

static void put(weir_bin_writer *w, const void *bytes, size_t n) {
    if (!w->ok || (size_t)(w->end - w->p) < n) {
        w->ok = false;
        return;
    }
    memcpy(w->p, bytes, n);
    w->p += n;
}

void weir_bin_put_u64(weir_bin_writer *w, uint64_t v) {
    uint8_t b[10];
    size_t n = 0;
    for (; v >= 0x80; v >>= 7) b[n++] = (uint8_t)(v | 0x80);
    b[n++] = (uint8_t)v;
    put(w, b, n);
}

void weir_bin_put_i64(weir_bin_writer *w, int64_t v) {
    weir_bin_put_u64(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void weir_bin_put_str(weir_bin_writer *w, weir_bytes s) {
    weir_bin_put_u64(w, s.len);
    put(w, s.ptr, s.len);
}

void weir_bin_put_f64(weir_bin_writer *w, double v) {
    uint64_t bits;
    memcpy(&bits, &v, 8);
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(bits >> (8 * i));
    put(w, b, 8);
}

bool weir_bin_written(const weir_bin_writer *w, weir_bytes *out) {
    *out = weir_bytes_of(w->start, (size_t)(w->p - w->start));
    return w->ok;
}

weir_bin_reader weir_bin_reader_of(weir_bytes in) { return (weir_bin_reader){in.ptr, in.ptr + in.len, true}; }

static void broken(weir_bin_reader *r) {
    r->ok = false;
    r->p = r->end;
}

uint64_t weir_bin_u64(weir_bin_reader *r) {
    uint64_t v = 0;
    for (int shift = 0; r->ok && r->p < r->end && shift < 64; shift += 7) {
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) return v;
    }
    broken(r);
    return 0;
}

int64_t weir_bin_i64(weir_bin_reader *r) {
    uint64_t u = weir_bin_u64(r);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

weir_bytes weir_bin_str(weir_bin_reader *r) {
    uint64_t n = weir_bin_u64(r);
    if (!r->ok || n > (uint64_t)(r->end - r->p)) {
        broken(r);
        return weir_bytes_of(NULL, 0);
    }
    weir_bytes s = weir_bytes_of(r->p, (size_t)n);
    r->p += n;
    return s;
}

double weir_bin_f64(weir_bin_reader *r) {
    if (!r->ok || r->end - r->p < 8) {
        broken(r);
        return 0;
    }
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++) bits |= (uint64_t)r->p[i] << (8 * i);
    r->p += 8;
    double v;
    memcpy(&v, &bits, 8);
    return v;
}

bool weir_bin_done(const weir_bin_reader *r) { return r->ok && r->p == r->end; }
