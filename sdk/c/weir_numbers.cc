// weir_numbers.cc: weir.h's number conversions, from the C++ libraries that
// do them best: fast_float (Debian's libfast-float-dev, header-only) reads
// a decimal exactly, libc++'s std::to_chars writes the shortest text that
// reads back the same (as Rust's ryu and JavaScript do). Compiled by
// build.sh with clang++ for wasm32-wasi, without exceptions.
#include <charconv>
#include <fast_float/fast_float.h>

#include "weir.h"

extern "C" bool weir_parse_double(weir_bytes text, double *out) {
    const char *first = reinterpret_cast<const char *>(text.ptr), *last = first + text.len;
    auto r = fast_float::from_chars(first, last, *out);
    return r.ec == std::errc() && r.ptr == last;
}

extern "C" size_t weir_format_double(char *buf, size_t size, double v) {
    auto r = std::to_chars(buf, buf + size, v);
    return r.ec == std::errc() ? static_cast<size_t>(r.ptr - buf) : 0;
}
