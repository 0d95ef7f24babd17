/*
 * weir_internal.h: what weir.c (calls, output, init) and weir_state.c
 * (keyed state) share. Not part of the API; the names are kept short by
 * macros that give them a weir__ prefix in the object files.
 */
#ifndef WEIR_INTERNAL_H
#define WEIR_INTERNAL_H

#include "operator.h"
#include "weir.h"

#define NO_KEY 0xffffffffu

#define decls weir__decls_
#define arena_alloc weir__arena_alloc
#define arena_copy weir__arena_copy
#define arena_grow weir__arena_grow
#define need_key weir__need_key
#define slot_of weir__slot_of

/* ---- Growable buffers (malloc'd: they are handed to the host) ---- */

typedef struct {
    uint8_t *ptr;
    size_t len, cap;
} buf;

typedef struct {
    uint32_t *ptr;
    size_t len, cap;
} u32s;

typedef struct {
    int64_t *ptr;
    size_t len, cap;
} i64s;

/* Records being packed: keys and values in one buffer, four spans each. */
typedef struct {
    buf data;
    u32s spans;
    i64s timestamps;
} records_out;

/* ---- The instance: the declared states ---- */

typedef struct {
    char *name;
    weir_plugin_types_state_kind_t kind;
    bool prefetch;
} state_decl;

extern struct weir__decls {
    state_decl *states;
    size_t count;
    size_t cap;
} decls;

struct weir_init {
    const operator_init_context_t *context;
    char *node_id;
    char *config;
    char *error;
};

/* ---- Per-key slots of prefetched state ---- */

typedef struct {
    bool dirty;
    /* value */
    bool present;
    weir_bytes value;
    /* list: items[0..count), of which [base..count) were added this call
     * (unless replaced); map: entries[0..count), in key order */
    weir_bytes *items;
    weir_entry *entries;
    size_t count, cap, base;
    bool replaced;
} slot;

typedef struct {
    char *name;
    records_out records;
} side;

typedef struct {
    char *name;
    uint64_t n;
} counter;

struct weir_ctx {
    weir_plugin_types_time_context_t time;
    /* per element (record or timer): the first element with its key */
    const uint32_t *same_key;
    size_t same_key_len;
    size_t elements;
    slot *slots; /* elements × states, for the groups */
    /* the current element */
    size_t index;
    uint32_t group;
    bool has_key;
    weir_bytes key;
    int64_t timestamp;
    char *failure;
    /* what the call produced */
    records_out out;
    side *sides;
    size_t side_count, side_cap;
    counter *counters;
    size_t counter_count, counter_cap;
    weir_plugin_types_timer_update_t *timers;
    size_t timer_count, timer_cap;
    weir_plugin_types_record_error_t *errors;
    size_t error_count, error_cap;
    /* the key of element i, for state updates */
    weir_bytes (*key_of)(const weir_ctx *, size_t);
    const void *input;
};

/* The call's arena: reset when a call returns. */
void *arena_alloc(size_t n);
weir_bytes arena_copy(const uint8_t *p, size_t n);
/* Grows an arena array of `*cap` elements to hold `need`. */
void *arena_grow(void *ptr, size_t *cap, size_t len, size_t need, size_t size);

/* True when the current element has a key; else fails it, naming `what`. */
bool need_key(weir_ctx *ctx, const char *what);
/* The current key's slot of a prefetched state (NULL: the record failed). */
slot *slot_of(weir_ctx *ctx, weir_state state, weir_plugin_types_state_kind_t kind);

#endif
