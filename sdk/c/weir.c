/*
 * weir.c: the operator world's exports over weir.h's three functions.
 *
 * A call (`process` or `on-timer`) unpacks the batch once: prefetched state
 * goes into per-key slots, then the plugin runs per record against them, and
 * the changed slots, outputs, timers and counters are packed into one
 * answer. Everything a call allocates for itself lives in an arena that is
 * reset when it returns; what it answers is malloc'd, as the bindings' post-
 * return frees it.
 */
#include "weir.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "weir_internal.h"

/* ---- Growable buffers (malloc'd: they are handed to the host) ---- */

static void *grow(void *ptr, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return ptr;
    size_t cap2 = *cap ? *cap * 2 : 16;
    while (cap2 < need) cap2 *= 2;
    ptr = realloc(ptr, cap2 * size);
    if (!ptr) abort();
    *cap = cap2;
    return ptr;
}

static void buf_add(buf *b, const uint8_t *p, size_t n) {
    b->ptr = grow(b->ptr, &b->cap, b->len + n, 1);
    if (n) memcpy(b->ptr + b->len, p, n);
    b->len += n;
}

static void u32s_add(u32s *v, uint32_t x) {
    v->ptr = grow(v->ptr, &v->cap, v->len + 1, sizeof(uint32_t));
    v->ptr[v->len++] = x;
}

static void records_add(records_out *r, const weir_bytes *key, weir_bytes value, int64_t ts) {
    uint32_t at = (uint32_t)r->data.len;
    if (key) {
        buf_add(&r->data, key->ptr, key->len);
        u32s_add(&r->spans, at);
        u32s_add(&r->spans, (uint32_t)key->len);
        at += (uint32_t)key->len;
    } else {
        u32s_add(&r->spans, 0);
        u32s_add(&r->spans, NO_KEY);
    }
    buf_add(&r->data, value.ptr, value.len);
    u32s_add(&r->spans, at);
    u32s_add(&r->spans, (uint32_t)value.len);
    r->timestamps.ptr = grow(r->timestamps.ptr, &r->timestamps.cap, r->timestamps.len + 1, sizeof(int64_t));
    r->timestamps.ptr[r->timestamps.len++] = ts;
}

static weir_plugin_types_record_batch_t records_finish(records_out *r) {
    weir_plugin_types_record_batch_t b = {
        {r->data.ptr, r->data.len}, {r->spans.ptr, r->spans.len}, {r->timestamps.ptr, r->timestamps.len}};
    memset(r, 0, sizeof *r);
    return b;
}

static void string_dup(operator_string_t *s, const char *text, size_t len) {
    s->ptr = malloc(len ? len : 1);
    if (!s->ptr) abort();
    memcpy(s->ptr, text, len);
    s->len = len;
}

/* ---- The call's arena ---- */

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(16) uint8_t data[];
} chunk;

static chunk *arena;

void *arena_alloc(size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!arena || arena->used + n > arena->cap) {
        size_t cap = n > 65536 ? n : 65536;
        chunk *c = malloc(sizeof(chunk) + cap);
        if (!c) abort();
        c->next = arena;
        c->used = 0;
        c->cap = cap;
        arena = c;
    }
    void *p = arena->data + arena->used;
    arena->used += n;
    return p;
}

weir_bytes arena_copy(const uint8_t *p, size_t n) {
    uint8_t *copy = arena_alloc(n);
    if (n) memcpy(copy, p, n);
    return weir_bytes_of(copy, n);
}

/* Frees every chunk but the newest, which is kept for the next call. */
static void arena_reset(void) {
    if (!arena) return;
    chunk *c = arena->next;
    while (c) {
        chunk *next = c->next;
        free(c);
        c = next;
    }
    arena->next = NULL;
    arena->used = 0;
}

/* Grows an arena array of `*cap` elements to hold `need`. */
void *arena_grow(void *ptr, size_t *cap, size_t len, size_t need, size_t size) {
    if (need <= *cap) return ptr;
    size_t cap2 = *cap ? *cap * 2 : 4;
    while (cap2 < need) cap2 *= 2;
    void *p = arena_alloc(cap2 * size);
    if (len) memcpy(p, ptr, len * size);
    *cap = cap2;
    return p;
}

/* ---- The declared states; failures ---- */

struct weir__decls decls;

static char *vformat(const char *format, va_list args) {
    va_list copy;
    va_copy(copy, args);
    int n = vsnprintf(NULL, 0, format, copy);
    va_end(copy);
    char *s = malloc((size_t)(n > 0 ? n : 0) + 1);
    if (!s) abort();
    vsnprintf(s, (size_t)n + 1, format, args);
    return s;
}

void weir_fail(weir_ctx *ctx, const char *format, ...) {
    if (ctx->failure) return;
    va_list args;
    va_start(args, format);
    ctx->failure = vformat(format, args);
    va_end(args);
}

bool weir_failed(const weir_ctx *ctx) { return ctx->failure != NULL; }

bool need_key(weir_ctx *ctx, const char *what) {
    if (ctx->has_key) return true;
    weir_fail(ctx, "%s need%s a keyed input: give the node `key_by`", what, what[0] == 't' ? "" : "s");
    return false;
}

/* ---- Output, timers, counters ---- */

int64_t weir_watermark(const weir_ctx *ctx) { return ctx->time.watermark; }
int64_t weir_processing_time(const weir_ctx *ctx) { return ctx->time.processing_time; }

void weir_emit(weir_ctx *ctx, weir_bytes value) {
    records_add(&ctx->out, ctx->has_key ? &ctx->key : NULL, value, ctx->timestamp);
}

void weir_emit_keyed(weir_ctx *ctx, const weir_bytes *key, weir_bytes value, int64_t timestamp) {
    records_add(&ctx->out, key, value, timestamp);
}

void weir_emit_to(weir_ctx *ctx, const char *output, weir_bytes value) {
    side *s = NULL;
    for (size_t i = 0; i < ctx->side_count; i++)
        if (strcmp(ctx->sides[i].name, output) == 0) s = &ctx->sides[i];
    if (!s) {
        ctx->sides = grow(ctx->sides, &ctx->side_cap, ctx->side_count + 1, sizeof(side));
        s = &ctx->sides[ctx->side_count++];
        memset(s, 0, sizeof *s);
        s->name = strdup(output);
    }
    records_add(&s->records, ctx->has_key ? &ctx->key : NULL, value, ctx->timestamp);
}

void weir_count(weir_ctx *ctx, const char *name, uint64_t n) {
    for (size_t i = 0; i < ctx->counter_count; i++)
        if (strcmp(ctx->counters[i].name, name) == 0) {
            ctx->counters[i].n += n;
            return;
        }
    ctx->counters = grow(ctx->counters, &ctx->counter_cap, ctx->counter_count + 1, sizeof(counter));
    ctx->counters[ctx->counter_count++] = (counter){strdup(name), n};
}

static void timer(weir_ctx *ctx, int64_t timestamp, bool event_time, bool reg) {
    if (!need_key(ctx, "timers")) return;
    ctx->timers = grow(ctx->timers, &ctx->timer_cap, ctx->timer_count + 1, sizeof *ctx->timers);
    weir_plugin_types_timer_update_t *t = &ctx->timers[ctx->timer_count++];
    t->key.ptr = malloc(ctx->key.len ? ctx->key.len : 1);
    if (!t->key.ptr) abort();
    memcpy(t->key.ptr, ctx->key.ptr, ctx->key.len);
    t->key.len = ctx->key.len;
    t->timestamp = timestamp;
    t->domain = event_time ? WEIR_PLUGIN_TYPES_TIME_DOMAIN_EVENT_TIME : WEIR_PLUGIN_TYPES_TIME_DOMAIN_PROCESSING_TIME;
    t->op.tag = reg ? WEIR_PLUGIN_TYPES_TIMER_OP_REGISTER : WEIR_PLUGIN_TYPES_TIMER_OP_DELETE;
}

void weir_register_event_timer(weir_ctx *ctx, int64_t t) { timer(ctx, t, true, true); }
void weir_register_processing_timer(weir_ctx *ctx, int64_t t) { timer(ctx, t, false, true); }
void weir_delete_event_timer(weir_ctx *ctx, int64_t t) { timer(ctx, t, true, false); }
void weir_delete_processing_timer(weir_ctx *ctx, int64_t t) { timer(ctx, t, false, false); }

void weir_log(weir_level level, const char *format, ...) {
    va_list args;
    va_start(args, format);
    char *text = vformat(format, args);
    va_end(args);
    operator_string_t message = {(uint8_t *)text, strlen(text)};
    weir_plugin_logging_log((weir_plugin_logging_level_t)level, &message);
    free(text);
}

/* ---- Calls ---- */

/* Prepares a call over `elements` records or timers. */
static void call_start(weir_ctx *ctx, const weir_plugin_types_prefetched_state_t *state,
                       weir_plugin_types_time_context_t time, size_t elements) {
    memset(ctx, 0, sizeof *ctx);
    ctx->time = time;
    ctx->elements = elements;
    ctx->same_key = state->same_key.ptr;
    ctx->same_key_len = state->same_key.len;
    ctx->group = NO_KEY;
    if (ctx->same_key_len && decls.count) {
        size_t n = elements * decls.count;
        ctx->slots = arena_alloc(n * sizeof(slot));
        memset(ctx->slots, 0, n * sizeof(slot));
    }
    const uint8_t *data = state->items.data.ptr;
    const uint32_t *spans = state->items.spans.ptr;
    for (size_t e = 0; e < state->entries.len; e++) {
        const weir_plugin_types_state_entry_t *entry = &state->entries.ptr[e];
        if (!ctx->slots || entry->key >= ctx->same_key_len || entry->state >= decls.count) continue;
        uint32_t group = ctx->same_key[entry->key];
        if (group == NO_KEY || group >= elements) continue;
        slot *s = &ctx->slots[(size_t)group * decls.count + entry->state];
        size_t first = entry->first_item, n = entry->item_count;
        switch (decls.states[entry->state].kind) {
        case WEIR_PLUGIN_TYPES_STATE_KIND_VALUE:
            if (n) {
                s->present = true;
                s->value = weir_bytes_of(data + spans[2 * first], spans[2 * first + 1]);
            }
            break;
        case WEIR_PLUGIN_TYPES_STATE_KIND_LIST:
            s->items = arena_alloc(n * sizeof(weir_bytes));
            for (size_t i = 0; i < n; i++)
                s->items[i] = weir_bytes_of(data + spans[2 * (first + i)], spans[2 * (first + i) + 1]);
            s->count = s->cap = s->base = n;
            break;
        default:
            s->entries = arena_alloc(n / 2 * sizeof(weir_entry));
            for (size_t i = 0; i + 1 < n; i += 2) {
                size_t k = first + i;
                s->entries[i / 2].key = weir_bytes_of(data + spans[2 * k], spans[2 * k + 1]);
                s->entries[i / 2].value = weir_bytes_of(data + spans[2 * k + 2], spans[2 * k + 3]);
            }
            s->count = s->cap = n / 2;
            break;
        }
    }
}

/* Makes element `index` (with `key`, or none) the current one. */
static void call_at(weir_ctx *ctx, size_t index, const weir_bytes *key, int64_t timestamp) {
    ctx->index = index;
    ctx->has_key = key != NULL;
    ctx->key = key ? *key : weir_bytes_of("", 0);
    ctx->timestamp = timestamp;
    ctx->group = index < ctx->same_key_len ? ctx->same_key[index] : NO_KEY;
}

/* Ends the current element: its failure, if any, becomes a record error. */
static void call_done(weir_ctx *ctx) {
    if (!ctx->failure) return;
    ctx->errors = grow(ctx->errors, &ctx->error_cap, ctx->error_count + 1, sizeof *ctx->errors);
    weir_plugin_types_record_error_t *e = &ctx->errors[ctx->error_count++];
    e->index = (uint32_t)ctx->index;
    e->message.ptr = (uint8_t *)ctx->failure;
    e->message.len = strlen(ctx->failure);
    ctx->failure = NULL;
}

typedef struct {
    buf data;
    u32s spans;
    weir_plugin_types_state_update_t *ptr;
    size_t len, cap;
} updates_out;

static uint32_t item(updates_out *u, weir_bytes b) {
    u32s_add(&u->spans, (uint32_t)u->data.len);
    u32s_add(&u->spans, (uint32_t)b.len);
    buf_add(&u->data, b.ptr, b.len);
    return (uint32_t)(u->spans.len / 2 - 1);
}

static void update(updates_out *u, uint32_t state, uint32_t key, weir_plugin_types_update_kind_t kind,
                   uint32_t first) {
    u->ptr = grow(u->ptr, &u->cap, u->len + 1, sizeof *u->ptr);
    u->ptr[u->len++] = (weir_plugin_types_state_update_t){state, key, kind, first, (uint32_t)(u->spans.len / 2) - first};
}

/* The changed slots, as state updates. */
static weir_plugin_types_state_updates_t pack_updates(weir_ctx *ctx) {
    updates_out u = {0};
    for (size_t g = 0; ctx->slots && g < ctx->elements; g++) {
        uint32_t key = NO_KEY;
        for (size_t st = 0; st < decls.count; st++) {
            slot *s = &ctx->slots[g * decls.count + st];
            if (!s->dirty) continue;
            if (key == NO_KEY) key = item(&u, ctx->key_of(ctx, g));
            uint32_t first = (uint32_t)(u.spans.len / 2);
            switch (decls.states[st].kind) {
            case WEIR_PLUGIN_TYPES_STATE_KIND_VALUE:
                if (s->present) {
                    item(&u, s->value);
                    update(&u, (uint32_t)st, key, WEIR_PLUGIN_TYPES_UPDATE_KIND_SET, first);
                } else {
                    update(&u, (uint32_t)st, key, WEIR_PLUGIN_TYPES_UPDATE_KIND_CLEAR, first);
                }
                break;
            case WEIR_PLUGIN_TYPES_STATE_KIND_LIST:
                for (size_t i = s->replaced ? 0 : s->base; i < s->count; i++) item(&u, s->items[i]);
                update(&u, (uint32_t)st, key,
                       s->replaced ? WEIR_PLUGIN_TYPES_UPDATE_KIND_REPLACE : WEIR_PLUGIN_TYPES_UPDATE_KIND_APPEND, first);
                break;
            default:
                for (size_t i = 0; i < s->count; i++) {
                    item(&u, s->entries[i].key);
                    item(&u, s->entries[i].value);
                }
                update(&u, (uint32_t)st, key, WEIR_PLUGIN_TYPES_UPDATE_KIND_REPLACE, first);
                break;
            }
        }
    }
    return (weir_plugin_types_state_updates_t){
        {{u.data.ptr, u.data.len}, {u.spans.ptr, u.spans.len}}, {u.ptr, u.len}};
}

static void call_finish(weir_ctx *ctx, operator_effects_t *ret) {
    ret->outputs = records_finish(&ctx->out);
    ret->side_outputs.len = ctx->side_count;
    ret->side_outputs.ptr = ctx->side_count ? malloc(ctx->side_count * sizeof *ret->side_outputs.ptr) : NULL;
    for (size_t i = 0; i < ctx->side_count; i++) {
        ret->side_outputs.ptr[i].name = (operator_string_t){(uint8_t *)ctx->sides[i].name, strlen(ctx->sides[i].name)};
        ret->side_outputs.ptr[i].records = records_finish(&ctx->sides[i].records);
    }
    free(ctx->sides);
    ret->state_updates = pack_updates(ctx);
    ret->timer_updates = (weir_plugin_types_list_timer_update_t){ctx->timers, ctx->timer_count};
    ret->counters.len = ctx->counter_count;
    ret->counters.ptr = ctx->counter_count ? malloc(ctx->counter_count * sizeof *ret->counters.ptr) : NULL;
    for (size_t i = 0; i < ctx->counter_count; i++) {
        ret->counters.ptr[i].f0 = (operator_string_t){(uint8_t *)ctx->counters[i].name, strlen(ctx->counters[i].name)};
        ret->counters.ptr[i].f1 = ctx->counters[i].n;
    }
    free(ctx->counters);
    ret->errors = (weir_plugin_types_list_record_error_t){ctx->errors, ctx->error_count};
}

static weir_bytes record_key(const weir_ctx *ctx, size_t i) {
    const weir_plugin_types_record_batch_t *r = ctx->input;
    return weir_bytes_of(r->data.ptr + r->spans.ptr[4 * i], r->spans.ptr[4 * i + 1]);
}

static weir_bytes timer_key(const weir_ctx *ctx, size_t i) {
    const weir_plugin_types_list_fired_timer_t *t = ctx->input;
    return weir_bytes_of(t->ptr[i].key.ptr, t->ptr[i].key.len);
}

bool exports_operator_process(operator_batch_t *batch, operator_effects_t *ret, operator_operator_error_t *err) {
    (void)err;
    weir_ctx ctx;
    const weir_plugin_types_record_batch_t *r = &batch->records;
    size_t n = r->timestamps.len;
    call_start(&ctx, &batch->state, batch->time, n);
    ctx.key_of = record_key;
    ctx.input = r;
    for (size_t i = 0; i < n; i++) {
        const uint32_t *sp = &r->spans.ptr[4 * i];
        weir_record record = {sp[1] != NO_KEY, weir_bytes_of(r->data.ptr + sp[0], sp[1] == NO_KEY ? 0 : sp[1]),
                              weir_bytes_of(r->data.ptr + sp[2], sp[3]), r->timestamps.ptr[i]};
        call_at(&ctx, i, record.has_key ? &record.key : NULL, record.timestamp);
        weir_process(&ctx, &record);
        call_done(&ctx);
    }
    call_finish(&ctx, ret);
    operator_batch_free(batch);
    arena_reset();
    return true;
}

bool exports_operator_on_timer(operator_timer_batch_t *timers, operator_effects_t *ret, operator_operator_error_t *err) {
    (void)err;
    weir_ctx ctx;
    size_t n = timers->timers.len;
    call_start(&ctx, &timers->state, timers->time, n);
    ctx.key_of = timer_key;
    ctx.input = &timers->timers;
    for (size_t i = 0; i < n; i++) {
        const weir_plugin_types_fired_timer_t *f = &timers->timers.ptr[i];
        weir_timer t = {weir_bytes_of(f->key.ptr, f->key.len), f->timestamp,
                        f->domain == WEIR_PLUGIN_TYPES_TIME_DOMAIN_EVENT_TIME};
        call_at(&ctx, i, &t.key, t.timestamp);
        weir_on_timer(&ctx, &t);
        call_done(&ctx);
    }
    call_finish(&ctx, ret);
    operator_timer_batch_free(timers);
    arena_reset();
    return true;
}

/* ---- init ---- */

weir_bytes weir_config(const weir_init *init) { return weir_str(init->config); }
const char *weir_node_id(const weir_init *init) { return init->node_id; }
uint32_t weir_subtask_index(const weir_init *init) { return init->context->subtask_index; }
uint32_t weir_parallelism(const weir_init *init) { return init->context->parallelism; }

void weir_init_fail(weir_init *init, const char *format, ...) {
    if (init->error) return;
    va_list args;
    va_start(args, format);
    init->error = vformat(format, args);
    va_end(args);
}

bool weir_config_binary(weir_init *init, const char *field, bool *binary) {
    weir_bytes config = weir_config(init), raw;
    *binary = false;
    if (!weir_json_raw(config, field, &raw)) return true;
    if (raw.len == 8 && memcmp(raw.ptr, "\"binary\"", 8) == 0) *binary = true;
    else if (!(raw.len == 6 && memcmp(raw.ptr, "\"json\"", 6) == 0)) {
        weir_init_fail(init, "%s must be json or binary, got %.*s", field, (int)raw.len, (const char *)raw.ptr);
        return false;
    }
    return true;
}

static weir_state declare(weir_init *init, const char *name, weir_plugin_types_state_kind_t kind, bool prefetch) {
    for (size_t i = 0; i < decls.count; i++)
        if (strcmp(decls.states[i].name, name) == 0) weir_init_fail(init, "state `%s` is declared twice", name);
    decls.states = grow(decls.states, &decls.cap, decls.count + 1, sizeof(state_decl));
    decls.states[decls.count] = (state_decl){strdup(name), kind, prefetch};
    return (weir_state)decls.count++;
}

weir_state weir_value_state(weir_init *init, const char *name) {
    return declare(init, name, WEIR_PLUGIN_TYPES_STATE_KIND_VALUE, true);
}
weir_state weir_list_state(weir_init *init, const char *name, bool prefetch) {
    return declare(init, name, WEIR_PLUGIN_TYPES_STATE_KIND_LIST, prefetch);
}
weir_state weir_map_state(weir_init *init, const char *name, bool prefetch) {
    return declare(init, name, WEIR_PLUGIN_TYPES_STATE_KIND_MAP, prefetch);
}

static char *dup_n(const uint8_t *p, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

__attribute__((weak)) bool weir_open(weir_init *init) {
    (void)init;
    return true;
}

__attribute__((weak)) void weir_on_timer(weir_ctx *ctx, const weir_timer *timer) {
    (void)ctx;
    (void)timer;
}

bool exports_operator_init(operator_init_context_t *context, operator_operator_info_t *ret,
                           operator_operator_error_t *err) {
    weir_init init = {context, dup_n(context->node_id.ptr, context->node_id.len),
                      dup_n(context->config.ptr, context->config.len), NULL};
    decls.count = 0;
    bool ok = weir_open(&init) && !init.error;
    free(init.config);
    operator_init_context_free(context);
    if (!ok) {
        const char *message = init.error ? init.error : "weir_open returned false";
        string_dup(&err->message, message, strlen(message));
        free(init.error);
        return false;
    }
    ret->states.len = decls.count;
    ret->states.ptr = malloc((decls.count ? decls.count : 1) * sizeof *ret->states.ptr);
    for (size_t i = 0; i < decls.count; i++) {
        string_dup(&ret->states.ptr[i].name, decls.states[i].name, strlen(decls.states[i].name));
        ret->states.ptr[i].kind = decls.states[i].kind;
        ret->states.ptr[i].prefetch = decls.states[i].prefetch;
    }
    return true;
}
