/*
 * The C SDK's conversions, compiled natively and checked against glibc
 * (tests/all/languages_compiled.rs builds and runs this): numbers read as
 * strtod reads them, numbers written shortest and read back the same,
 * integers, JSON members and strings, and the binary encoding's fields.
 * Prints one line of counts, or what differed, and exits 1 on a difference.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weir.h"

static long failures;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond) && failures++ < 10) {                                                                              \
            printf(__VA_ARGS__);                                                                                       \
            printf("\n");                                                                                              \
        }                                                                                                              \
    } while (0)

/* A random decimal of one of several shapes. */
static void decimal(char *buf, size_t size) {
    switch (rand() % 5) {
    case 0: snprintf(buf, size, "%d.%0*d", rand() % 200 - 100, rand() % 6 + 1, rand() % 100000); break;
    case 1: snprintf(buf, size, "%.*g", rand() % 17 + 1, (double)rand() / RAND_MAX * 1000 - 500); break;
    case 2: snprintf(buf, size, "%lld.%de%d", (long long)rand() * rand(), rand() % 1000, rand() % 60 - 30); break;
    case 3: snprintf(buf, size, "%.17g", (double)rand() / RAND_MAX * 1e6 - 5e5); break;
    default: {
        uint64_t bits = ((uint64_t)rand() << 33) ^ ((uint64_t)rand() << 2) ^ (uint64_t)rand();
        double v;
        memcpy(&v, &bits, 8);
        snprintf(buf, size, "%.*g", rand() % 17 + 1, isfinite(v) ? v : 1.5);
    }
    }
}

int main(void) {
    srand(7);
    long parsed = 0, written = 0;
    char text[64], json[160];
    for (long i = 0; i < 500000; i++, parsed++) {
        decimal(text, sizeof text);
        snprintf(json, sizeof json, "{\"a\":[1,{\"t\":2}],\"t\":%s}", text);
        double v, expected = strtod(text, NULL);
        CHECK(weir_json_number(weir_str(json), "t", &v) && memcmp(&v, &expected, 8) == 0, "read %s as %.17g", text,
              v);

        char out[32];
        size_t n = weir_format_double(out, sizeof out, expected);
        out[n] = 0;
        double back = strtod(out, NULL);
        int digits = 1; /* the fewest %.Ng digits that read back */
        char shortest[40];
        for (; digits < 17; digits++) {
            snprintf(shortest, sizeof shortest, "%.*g", digits, expected);
            if (strtod(shortest, NULL) == expected) break;
        }
        snprintf(shortest, sizeof shortest, "%.*g", digits, expected);
        CHECK(n > 0 && memcmp(&back, &expected, 8) == 0 && n <= strlen(shortest) + 1, "wrote %.17g as %s (%s)",
              expected, out, shortest);
        written++;
    }
    int64_t k;
    CHECK(weir_json_int(weir_str("{\"k\":-9223372036854775808}"), "k", &k) && k == INT64_MIN, "int min");
    CHECK(weir_json_int(weir_str("{\"k\":123456789012345678}"), "k", &k) && k == 123456789012345678, "int");
    CHECK(!weir_json_int(weir_str("{\"k\":9223372036854775808}"), "k", &k), "int overflow read");
    CHECK(!weir_json_int(weir_str("{\"k\":12x}"), "k", &k), "12x read as an int");
    double d;
    CHECK(!weir_json_number(weir_str("{\"k\":\"1\"}"), "k", &d), "a string read as a number");

    weir_bytes rest = weir_str("{ \"id\" : \"a\\\"b\", \"n\": 5 , \"o\":{\"x\":[1]} }"), name, value;
    int members = 0;
    while (weir_json_member(&rest, &name, &value)) members++;
    CHECK(members == 3, "%d members", members);
    /* Members' names and values as they stand, whatever whitespace ends them. */
    rest = weir_str("{\"t\":\t-1.5e3\r\n,\"ts\" :17\t}");
    CHECK(weir_json_member(&rest, &name, &value) && WEIR_IS(name, "t") && weir_json_as_number(value, &d) && d == -1500,
          "t is %.*s", (int)value.len, (const char *)value.ptr);
    CHECK(weir_json_member(&rest, &name, &value) && WEIR_IS(name, "ts") && weir_json_as_int(value, &k) && k == 17,
          "ts is %.*s", (int)value.len, (const char *)value.ptr);
    CHECK(!weir_json_member(&rest, &name, &value), "a member past the end");
    CHECK(!weir_json_as_number(weir_str("1.5x"), &d) && !weir_json_as_int(weir_str(""), &k) &&
              !weir_json_as_number(weir_str("\"1\""), &d),
          "not numbers read as numbers");
    CHECK(!WEIR_IS(weir_str("temperaturE"), "temperature") && WEIR_IS(weir_str("temperature"), "temperature") &&
              !WEIR_IS(weir_str("temp"), "temperature"),
          "WEIR_IS");

    uint8_t buf[64];
    weir_json_writer w = weir_json_writer_of(buf, sizeof buf);
    weir_json_begin(&w);
    weir_json_field(&w, "s");
    weir_json_put_string(&w, weir_str("q\"\\\n\x01"));
    weir_json_field(&w, "n");
    weir_json_put_number(&w, 65.5);
    weir_json_field(&w, "i");
    weir_json_put_int(&w, INT64_MIN);
    weir_json_field(&w, "x");
    weir_json_put_number(&w, NAN);
    weir_json_end(&w);
    weir_bytes out;
    const char *expected_json = "{\"s\":\"q\\\"\\\\\\n\\u0001\",\"n\":65.5,\"i\":-9223372036854775808,\"x\":null}";
    CHECK(weir_json_written(&w, &out) && out.len == strlen(expected_json) && memcmp(out.ptr, expected_json, out.len) == 0,
          "wrote %.*s", (int)out.len, (const char *)out.ptr);
    w = weir_json_writer_of(buf, 4);
    weir_json_begin(&w);
    weir_json_field(&w, "long");
    weir_json_end(&w);
    CHECK(!weir_json_written(&w, &out), "an overflowing write reported whole");

    /* The layout a Rust SensorReading {id: "sensor_7", timestamp: 1700000000000, temperature: 21.5} has in postcard. */
    static const uint8_t postcard[] = {8, 's', 'e', 'n', 's', 'o', 'r', '_', '7', 0x80, 0xa0, 0xab, 0xfe, 0xf9, 0x62,
                                       0, 0, 0, 0, 0, 0x80, 0x35, 0x40};
    weir_bin_writer b = weir_bin_writer_of(buf, sizeof buf);
    weir_bin_put_str(&b, weir_str("sensor_7"));
    weir_bin_put_i64(&b, 1700000000000);
    weir_bin_put_f64(&b, 21.5);
    CHECK(weir_bin_written(&b, &out) && out.len == sizeof postcard && memcmp(out.ptr, postcard, sizeof postcard) == 0,
          "binary reading of %zu bytes", out.len);
    weir_bin_reader r = weir_bin_reader_of(weir_bytes_of(postcard, sizeof postcard));
    weir_bytes id = weir_bin_str(&r);
    int64_t ts = weir_bin_i64(&r);
    double t = weir_bin_f64(&r);
    CHECK(weir_bin_done(&r) && id.len == 8 && ts == 1700000000000 && t == 21.5, "read the binary reading back");
    r = weir_bin_reader_of(weir_bytes_of(postcard, sizeof postcard - 1));
    weir_bin_str(&r), weir_bin_i64(&r), weir_bin_f64(&r);
    CHECK(!weir_bin_done(&r), "a short binary reading read whole");
    weir_bin_writer neg = weir_bin_writer_of(buf, sizeof buf);
    weir_bin_put_i64(&neg, -1);
    weir_bin_put_i64(&neg, INT64_MIN);
    CHECK(weir_bin_written(&neg, &out) && out.len == 11 && out.ptr[0] == 1 && out.ptr[10] == 1, "zigzag");

    if (failures) {
        printf("%ld differences\n", failures);
        return 1;
    }
    printf("%ld numbers read as strtod reads them, %ld written shortest and read back; JSON and binary fields as "
           "expected\n",
           parsed, written);
    return 0;
}
