/*
 * weir_state.c: keyed state (weir.h's value, list and map functions). A
 * prefetched state is read and written in the call's per-key slots, which
 * weir.c packs into state updates; the others go to the host's `state`
 * import, one call per access.
 */
#include <stdlib.h>

#include "weir_internal.h"

/* The current key's slot of a prefetched state; NULL (with the record
 * failed) when the state is not one or the input has no key. */
slot *slot_of(weir_ctx *ctx, weir_state state, weir_plugin_types_state_kind_t kind) {
    if (state >= decls.count || decls.states[state].kind != kind) {
        weir_fail(ctx, "state handle %u is not a %s state of this operator", state,
                  kind == WEIR_PLUGIN_TYPES_STATE_KIND_VALUE ? "value" : kind == WEIR_PLUGIN_TYPES_STATE_KIND_LIST ? "list" : "map");
        return NULL;
    }
    if (!need_key(ctx, "keyed state")) return NULL;
    if (ctx->group == NO_KEY || !ctx->slots) {
        weir_fail(ctx, "the host sent no prefetched state for this record's key");
        return NULL;
    }
    slot *s = &ctx->slots[(size_t)ctx->group * decls.count + state];
    return s;
}

static bool remote(weir_state state) { return state < decls.count && !decls.states[state].prefetch; }

/* Checks a call on a non-prefetched state; false when the record failed. */
static bool remote_ok(weir_ctx *ctx, weir_state state, weir_plugin_types_state_kind_t kind) {
    if (decls.states[state].kind != kind) {
        slot_of(ctx, state, kind);
        return false;
    }
    return need_key(ctx, "keyed state");
}

static operator_list_u8_t as_list(weir_bytes b) { return (operator_list_u8_t){(uint8_t *)b.ptr, b.len}; }

/* ---- Value state ---- */

bool weir_value_get(weir_ctx *ctx, weir_state state, weir_bytes *value) {
    slot *s = slot_of(ctx, state, WEIR_PLUGIN_TYPES_STATE_KIND_VALUE);
    if (!s || !s->present) return false;
    *value = s->value;
    return true;
}

void weir_value_set(weir_ctx *ctx, weir_state state, weir_bytes value) {
    slot *s = slot_of(ctx, state, WEIR_PLUGIN_TYPES_STATE_KIND_VALUE);
    if (!s) return;
    s->value = arena_copy(value.ptr, value.len);
    s->present = s->dirty = true;
}

void weir_value_clear(weir_ctx *ctx, weir_state state) {
    slot *s = slot_of(ctx, state, WEIR_PLUGIN_TYPES_STATE_KIND_VALUE);
    if (!s) return;
    s->present = false;
    s->dirty = true;
}

/* ---- List state ---- */

static void list_push(slot *s, weir_bytes value) {
    s->items = arena_grow(s->items, &s->cap, s->count, s->count + 1, sizeof(weir_bytes));
    s->items[s->count++] = arena_copy(value.ptr, value.len);
}

/* The host's content of a non-prefetched state, copied into the arena. */
static bool remote_get(weir_ctx *ctx, weir_state state, weir_plugin_types_state_value_t *got) {
    operator_list_u8_t key = as_list(ctx->key);
    return weir_plugin_state_get(state, &key, got);
}

size_t weir_list_get(weir_ctx *ctx, weir_state state, const weir_bytes **items) {
    *items = NULL;
    if (remote(state)) {
        if (!remote_ok(ctx, state, WEIR_PLUGIN_TYPES_STATE_KIND_LIST)) return 0;
        weir_plugin_types_state_value_t got;
        if (!remote_get(ctx, state, &got)) return 0;
        size_t n = 0;
        if (got.tag == WEIR_PLUGIN_TYPES_STATE_VALUE_LIST) {
            n = got.val.list.len;
            weir_bytes *out = arena_alloc(n * sizeof(weir_bytes));
            for (size_t i = 0; i < n; i++) out[i] = arena_copy(got.val.list.ptr[i].ptr, got.val.list.ptr[i].len);
            *items = out;
        }
        weir_plugin_types_state_value_free(&got);
        return n;
    }
    slot *s = slot_of(ctx, state, WEIR_PLUGIN_TYPES_STATE_KIND_LIST);
    if (!s) return 0;
    *items = s->items;
    return s->count;
}

void weir_list_add(weir_ctx *ctx, weir_state state, weir_bytes value) {
    if (remote(state)) {
        if (!remote_ok(ctx, state, WEIR_PLUGIN_TYPES_STATE_KIND_LIST)) return;
        operator_list_u8_t key = as_list(ctx->key), v = as_list(value);
        operator_list_list_u8_t values = {&v, 1};
        weir_plugin_state_append(state, &key, &values);
        return;
    }
    slot *s = slot_of(ctx, state, WEIR_PLUGIN_TYPES_STATE_KIND_LIST);
    if (!s) return;
    list_push(s, value);
    s->dirty = true;
}

void weir_list_update(weir_ctx *ctx, weir_state state, const weir_bytes *values, size_t count) {
    if (remote(state)) {
        weir_list_clear(ctx, state);
        if (weir_failed(ctx) || count == 0) return;
        operator_list_u8_t key = as_list(ctx->key);
        operator_list_u8_t *vs = arena_alloc(count * sizeof *vs);
        for (size_t i = 0; i < count; i++) vs[i] = as_list(values[i]);
        operator_list_list_u8_t list = {vs, count};
        weir_plugin_state_append(state, &key, &list);
        return;
    }
    slot *s = slot_of(ctx, state, WEIR_PLUGIN_TYPES_STATE_KIND_LIST);
    if (!s) return;
    s->count = s->base = 0;
    for (size_t i = 0; i < count; i++) list_push(s, values[i]);
    s->replaced = s->dirty = true;
}

void weir_list_clear(weir_ctx *ctx, weir_state state) {
    if (remote(state)) {
        if (!remote_ok(ctx, state, WEIR_PLUGIN_TYPES_STATE_KIND_LIST)) return;
        operator_list_u8_t key = as_list(ctx->key);
        weir_plugin_state_clear(state, &key);
        return;
    }
    weir_list_update(ctx, state, NULL, 0);
}

/* ---- Map state ---- */

static int compare(weir_bytes a, weir_bytes b) {
    int c = memcmp(a.ptr, b.ptr, a.len < b.len ? a.len : b.len);
    return c ? c : (a.len > b.len) - (a.len < b.len);
}

/* The index of `key` in the slot's entries, or where it would go (*found false). */
static size_t map_find(const slot *s, weir_bytes key, bool *found) {
    size_t lo = 0, hi = s->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = compare(s->entries[mid].key, key);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    *found = false;
    return lo;
}


bool weir_map_get(weir_ctx *ctx, weir_state state, weir_bytes key, weir_bytes *value) {
    if (remote(state)) {
        if (!remote_ok(ctx, state, WEIR_PLUGIN_TYPES_STATE_KIND_MAP)) return false;
        operator_list_u8_t k = as_list(ctx->key), mk = as_list(key), got;
        if (!weir_plugin_state_map_get(state, &k, &mk, &got)) return false;
        *value = arena_copy(got.ptr, got.len);
        operator_list_u8_free(&got);
        return true;
    }
    slot *s = slot_of(ctx, state, WEIR_PLUGIN_TYPES_STATE_KIND_MAP);
    if (!s) return false;
    bool found;
    size_t i = map_find(s, key, &found);
    if (found) *value = s->entries[i].value;
    return found;
}

void weir_map_put(weir_ctx *ctx, weir_state state, weir_bytes key, weir_bytes value) {
    if (remote(state)) {
        if (!remote_ok(ctx, state, WEIR_PLUGIN_TYPES_STATE_KIND_MAP)) return;
        operator_list_u8_t k = as_list(ctx->key), mk = as_list(key), v = as_list(value);
        weir_plugin_state_map_put(state, &k, &mk, &v);
        return;
    }
    slot *s = slot_of(ctx, state, WEIR_PLUGIN_TYPES_STATE_KIND_MAP);
    if (!s) return;
    bool found;
    size_t i = map_find(s, key, &found);
    if (!found) {
        s->entries = arena_grow(s->entries, &s->cap, s->count, s->count + 1, sizeof(weir_entry));
        memmove(&s->entries[i + 1], &s->entries[i], (s->count - i) * sizeof(weir_entry));
        s->count++;
        s->entries[i].key = arena_copy(key.ptr, key.len);
    }
    s->entries[i].value = arena_copy(value.ptr, value.len);
    s->dirty = true;
}

void weir_map_remove(weir_ctx *ctx, weir_state state, weir_bytes key) {
    if (remote(state)) {
        if (!remote_ok(ctx, state, WEIR_PLUGIN_TYPES_STATE_KIND_MAP)) return;
        operator_list_u8_t k = as_list(ctx->key), mk = as_list(key);
        weir_plugin_state_map_remove(state, &k, &mk);
        return;
    }
    slot *s = slot_of(ctx, state, WEIR_PLUGIN_TYPES_STATE_KIND_MAP);
    if (!s) return;
    bool found;
    size_t i = map_find(s, key, &found);
    if (!found) return;
    memmove(&s->entries[i], &s->entries[i + 1], (s->count - i - 1) * sizeof(weir_entry));
    s->count--;
    s->dirty = true;
}

size_t weir_map_entries(weir_ctx *ctx, weir_state state, const weir_entry **entries) {
    *entries = NULL;
    if (remote(state)) {
        if (!remote_ok(ctx, state, WEIR_PLUGIN_TYPES_STATE_KIND_MAP)) return 0;
        weir_entry *all = NULL;
        size_t count = 0, cap = 0;
        operator_list_u8_t k = as_list(ctx->key), after;
        bool has_after = false;
        for (;;) {
            operator_list_tuple2_list_u8_list_u8_t page;
            weir_plugin_state_map_range(state, &k, has_after ? &after : NULL, 1024, &page);
            all = arena_grow(all, &cap, count, count + page.len, sizeof(weir_entry));
            for (size_t i = 0; i < page.len; i++) {
                all[count].key = arena_copy(page.ptr[i].f0.ptr, page.ptr[i].f0.len);
                all[count++].value = arena_copy(page.ptr[i].f1.ptr, page.ptr[i].f1.len);
            }
            size_t got = page.len;
            operator_list_tuple2_list_u8_list_u8_free(&page);
            if (got < 1024) break;
            after = as_list(all[count - 1].key);
            has_after = true;
        }
        *entries = all;
        return count;
    }
    slot *s = slot_of(ctx, state, WEIR_PLUGIN_TYPES_STATE_KIND_MAP);
    if (!s) return 0;
    *entries = s->entries;
    return s->count;
}

void weir_map_clear(weir_ctx *ctx, weir_state state) {
    if (remote(state)) {
        if (!remote_ok(ctx, state, WEIR_PLUGIN_TYPES_STATE_KIND_MAP)) return;
        operator_list_u8_t k = as_list(ctx->key);
        weir_plugin_state_clear(state, &k);
        return;
    }
    slot *s = slot_of(ctx, state, WEIR_PLUGIN_TYPES_STATE_KIND_MAP);
    if (!s) return;
    s->count = 0;
    s->dirty = true;
}

