package weir

import (
	"bytes"
	"errors"
	"sort"
	"strconv"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
	"weir.dev/sdk/go/internal/weir_plugin_state"
	"weir.dev/sdk/go/internal/weir_plugin_types"
)

type stateDecl struct {
	name     string
	kind     weir_plugin_types.StateKind
	prefetch bool
}

var errNoKey = errors.New("keyed state needs a keyed input: give the node `key_by`")

func declare(ctx *InitContext, name string, kind weir_plugin_types.StateKind) uint32 {
	if opened {
		panic("weir: state is declared in Open only")
	}
	for _, d := range ctx.states {
		if d.name == name {
			panic("weir: state `" + name + "` is declared twice")
		}
	}
	ctx.states = append(ctx.states, stateDecl{name, kind, true})
	return uint32(len(ctx.states) - 1)
}

// large keeps state `handle` in the host instead of prefetching it.
func large(ctx *InitContext, handle uint32) {
	if opened {
		panic("weir: Large is called in Open only")
	}
	ctx.states[handle].prefetch = false
}

// ValueState is one value per key.
type ValueState[T any] struct {
	handle uint32
	codec  coder[T]
}

// NewValueState declares a value state (JSON values; WithCodec to change).
func NewValueState[T any](ctx *InitContext, name string) *ValueState[T] {
	return &ValueState[T]{declare(ctx, name, weir_plugin_types.StateKindValue), coderOf(defaultCodec[T]())}
}

// WithCodec sets how values are stored.
func (s *ValueState[T]) WithCodec(codec Codec[T]) *ValueState[T] { s.codec = coderOf(codec); return s }

// Get is the current key's value; ok is false when it has none.
func (s *ValueState[T]) Get(ctx *Context) (v T, ok bool, err error) {
	sl, err := ctx.call.valueSlot(s.handle)
	if err != nil || !sl.present {
		return v, false, err
	}
	v, err = s.codec.Decode(sl.value)
	return v, err == nil, err
}

// Set replaces the current key's value.
func (s *ValueState[T]) Set(ctx *Context, v T) error {
	sl, err := ctx.call.valueSlot(s.handle)
	if err != nil {
		return err
	}
	b, err := kept(ctx.call, s.codec, v)
	if err != nil {
		return err
	}
	sl.value, sl.present, sl.dirty = b, true, true
	return nil
}

// Clear removes the current key's value.
func (s *ValueState[T]) Clear(ctx *Context) error {
	sl, err := ctx.call.valueSlot(s.handle)
	if err != nil {
		return err
	}
	sl.value, sl.present, sl.dirty = nil, false, true
	return nil
}

// ListState is an ordered list of values per key.
type ListState[T any] struct {
	handle uint32
	codec  coder[T]
	ctx    *InitContext
}

// NewListState declares a list state (prefetched, JSON values).
func NewListState[T any](ctx *InitContext, name string) *ListState[T] {
	return &ListState[T]{declare(ctx, name, weir_plugin_types.StateKindList), coderOf(defaultCodec[T]()), ctx}
}

// WithCodec sets how elements are stored.
func (s *ListState[T]) WithCodec(codec Codec[T]) *ListState[T] { s.codec = coderOf(codec); return s }

// Large keeps the list in the host: read and written one host call per
// access, instead of coming with every batch.
func (s *ListState[T]) Large() *ListState[T] { large(s.ctx, s.handle); return s }

// Get is the current key's elements.
func (s *ListState[T]) Get(ctx *Context) ([]T, error) {
	raw, err := ctx.call.listItems(s.handle)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(raw))
	for _, b := range raw {
		v, err := s.codec.Decode(b)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Add appends an element.
func (s *ListState[T]) Add(ctx *Context, v T) error {
	b, err := kept(ctx.call, s.codec, v)
	if err != nil {
		return err
	}
	return ctx.call.listAppend(s.handle, b)
}

// Update replaces the elements.
func (s *ListState[T]) Update(ctx *Context, vs []T) error {
	all := make([][]byte, 0, len(vs))
	for _, v := range vs {
		b, err := kept(ctx.call, s.codec, v)
		if err != nil {
			return err
		}
		all = append(all, b)
	}
	return ctx.call.listReplace(s.handle, all)
}

// Clear removes every element.
func (s *ListState[T]) Clear(ctx *Context) error { return ctx.call.listReplace(s.handle, nil) }

// Entry is one map entry.
type Entry[K comparable, V any] struct {
	Key   K
	Value V
}

// MapState is a map per key, ordered by the encoded map keys' bytes.
type MapState[K comparable, V any] struct {
	handle   uint32
	keyCodec coder[K]
	codec    coder[V]
	ctx      *InitContext
	// the last map key looked up and its encoding (a Get and a Put of one
	// key encode it once), for key types that compare with == safely
	memoable, memoed bool
	memoKey          K
	memo             []byte
}

// NewMapState declares a map state (prefetched, JSON keys and values).
func NewMapState[K comparable, V any](ctx *InitContext, name string) *MapState[K, V] {
	s := &MapState[K, V]{handle: declare(ctx, name, weir_plugin_types.StateKindMap), codec: coderOf(defaultCodec[V]()), ctx: ctx}
	var zero K
	switch any(zero).(type) {
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, string:
		s.memoable = true
	}
	return s.WithKeyCodec(defaultCodec[K]())
}

// WithCodec sets how values are stored.
func (s *MapState[K, V]) WithCodec(codec Codec[V]) *MapState[K, V] {
	s.codec = coderOf(codec)
	return s
}

// WithKeyCodec sets how map keys are stored (and so their order); its
// Encode must be a function of the key alone.
func (s *MapState[K, V]) WithKeyCodec(codec Codec[K]) *MapState[K, V] {
	s.keyCodec, s.memoed = coderOf(codec), false
	return s
}

// key is map key k encoded, valid until the next call of key (a map keeps
// a copy: see keep).
func (s *MapState[K, V]) key(k K) ([]byte, error) {
	if s.memoed && s.memoKey == k {
		return s.memo, nil
	}
	a := s.keyCodec.appender
	if a == nil {
		return s.keyCodec.Encode(k)
	}
	out, err := a.AppendEncode(s.memo[:0], k)
	if err != nil {
		s.memoed = false
		return nil, err
	}
	s.memo, s.memoKey, s.memoed = out, k, s.memoable
	return out, nil
}

// Large keeps the map in the host, one host call per access.
func (s *MapState[K, V]) Large() *MapState[K, V] { large(s.ctx, s.handle); return s }

// Get is the value of map key k; ok is false when there is none.
func (s *MapState[K, V]) Get(ctx *Context, k K) (v V, ok bool, err error) {
	kb, err := s.key(k)
	if err != nil {
		return v, false, err
	}
	b, ok, err := ctx.call.mapGet(s.handle, kb)
	if err != nil || !ok {
		return v, false, err
	}
	v, err = s.codec.Decode(b)
	return v, err == nil, err
}

// Put sets map key k to v.
func (s *MapState[K, V]) Put(ctx *Context, k K, v V) error {
	kb, err := s.key(k)
	if err != nil {
		return err
	}
	vb, err := kept(ctx.call, s.codec, v)
	if err != nil {
		return err
	}
	return ctx.call.mapPut(s.handle, kb, vb)
}

// Remove removes map key k.
func (s *MapState[K, V]) Remove(ctx *Context, k K) error {
	kb, err := s.key(k)
	if err != nil {
		return err
	}
	return ctx.call.mapRemove(s.handle, kb)
}

// Entries are the current key's entries, in map-key order.
func (s *MapState[K, V]) Entries(ctx *Context) ([]Entry[K, V], error) {
	raw, err := ctx.call.mapEntries(s.handle)
	if err != nil {
		return nil, err
	}
	out := make([]Entry[K, V], 0, len(raw))
	for _, e := range raw {
		k, err := s.keyCodec.Decode(e.k)
		if err != nil {
			return nil, err
		}
		v, err := s.codec.Decode(e.v)
		if err != nil {
			return nil, err
		}
		out = append(out, Entry[K, V]{k, v})
	}
	return out, nil
}

// Clear removes every entry.
func (s *MapState[K, V]) Clear(ctx *Context) error { return ctx.call.mapClear(s.handle) }

// ---- The call's side: prefetched slots, or host calls ----

// kept is v encoded: with an AppendCodec into the call's buffer, where it
// stays valid until the call ends (the answer copies it out), with another
// codec its Encode.
func kept[T any](c *call, codec coder[T], v T) ([]byte, error) {
	a := codec.appender
	if a == nil {
		return codec.Encode(v)
	}
	at := len(c.arena)
	out, err := a.AppendEncode(c.arena, v)
	if err != nil {
		return nil, err
	}
	c.arena = out
	return out[at:len(out):len(out)], nil
}

// keep copies b into the call's buffer.
func (c *call) keep(b []byte) []byte {
	at := len(c.arena)
	c.arena = append(c.arena, b...)
	return c.arena[at:len(c.arena):len(c.arena)]
}

type entry struct{ k, v []byte }

// slot is one prefetched state of one key during a call.
type slot struct {
	dirty, present, replaced bool
	value                    []byte
	items                    [][]byte // list; [base:] were added this call
	base                     int
	entries                  []entry // map, in key order
}

func (c *call) kind(handle uint32, kind weir_plugin_types.StateKind) error {
	if int(handle) >= len(decls) || decls[handle].kind != kind {
		return errors.New("state handle " + strconv.Itoa(int(handle)) + " is not of this kind")
	}
	if !c.hasKey {
		return errNoKey
	}
	return nil
}

func (c *call) valueSlot(handle uint32) (*slot, error) {
	if err := c.kind(handle, weir_plugin_types.StateKindValue); err != nil {
		return nil, err
	}
	return c.prefetched(handle)
}

func (c *call) prefetched(handle uint32) (*slot, error) {
	if c.group == noKey || len(c.slots) == 0 {
		return nil, errors.New("the host sent no prefetched state for this record's key")
	}
	return &c.slots[int(c.group)*len(decls)+int(handle)], nil
}

func remote(handle uint32) bool { return !decls[handle].prefetch }

func (c *call) listItems(h uint32) ([][]byte, error) {
	if err := c.kind(h, weir_plugin_types.StateKindList); err != nil {
		return nil, err
	}
	if remote(h) {
		got := weir_plugin_state.Get(h, c.key)
		if got.IsNone() || got.Some().Tag() != weir_plugin_types.StateValueList {
			return nil, nil
		}
		return got.Some().List(), nil
	}
	sl, err := c.prefetched(h)
	if err != nil {
		return nil, err
	}
	return sl.items, nil
}

func (c *call) listAppend(h uint32, b []byte) error {
	if err := c.kind(h, weir_plugin_types.StateKindList); err != nil {
		return err
	}
	if remote(h) {
		weir_plugin_state.Append(h, c.key, [][]byte{b})
		return nil
	}
	sl, err := c.prefetched(h)
	if err != nil {
		return err
	}
	sl.items = append(sl.items, b)
	sl.dirty = true
	return nil
}

func (c *call) listReplace(h uint32, all [][]byte) error {
	if err := c.kind(h, weir_plugin_types.StateKindList); err != nil {
		return err
	}
	if remote(h) {
		weir_plugin_state.Clear(h, c.key)
		if len(all) > 0 {
			weir_plugin_state.Append(h, c.key, all)
		}
		return nil
	}
	sl, err := c.prefetched(h)
	if err != nil {
		return err
	}
	sl.items, sl.base, sl.replaced, sl.dirty = all, 0, true, true
	return nil
}

func (c *call) mapSlot(h uint32) (*slot, error) {
	if err := c.kind(h, weir_plugin_types.StateKindMap); err != nil {
		return nil, err
	}
	if remote(h) {
		return nil, nil
	}
	return c.prefetched(h)
}

func find(entries []entry, k []byte) (int, bool) {
	// Most keys hold a few entries: look for k itself first.
	if len(entries) <= 8 {
		for i := range entries {
			if string(entries[i].k) == string(k) {
				return i, true
			}
		}
	}
	i := sort.Search(len(entries), func(i int) bool { return bytes.Compare(entries[i].k, k) >= 0 })
	return i, i < len(entries) && bytes.Equal(entries[i].k, k)
}

func (c *call) mapGet(h uint32, k []byte) ([]byte, bool, error) {
	sl, err := c.mapSlot(h)
	if err != nil {
		return nil, false, err
	}
	if sl == nil {
		got := weir_plugin_state.MapGet(h, c.key, k)
		return got.SomeOr(nil), got.IsSome(), nil
	}
	i, ok := find(sl.entries, k)
	if !ok {
		return nil, false, nil
	}
	return sl.entries[i].v, true, nil
}

func (c *call) mapPut(h uint32, k, v []byte) error {
	sl, err := c.mapSlot(h)
	if err != nil {
		return err
	}
	if sl == nil {
		weir_plugin_state.MapPut(h, c.key, k, v)
		return nil
	}
	i, ok := find(sl.entries, k)
	if ok {
		sl.entries[i].v = v
	} else {
		sl.entries = append(sl.entries, entry{})
		copy(sl.entries[i+1:], sl.entries[i:])
		sl.entries[i] = entry{c.keep(k), v}
	}
	sl.dirty = true
	return nil
}

func (c *call) mapRemove(h uint32, k []byte) error {
	sl, err := c.mapSlot(h)
	if err != nil {
		return err
	}
	if sl == nil {
		weir_plugin_state.MapRemove(h, c.key, k)
		return nil
	}
	if i, ok := find(sl.entries, k); ok {
		sl.entries = append(sl.entries[:i], sl.entries[i+1:]...)
		sl.dirty = true
	}
	return nil
}

func (c *call) mapEntries(h uint32) ([]entry, error) {
	sl, err := c.mapSlot(h)
	if err != nil {
		return nil, err
	}
	if sl != nil {
		return sl.entries, nil
	}
	var out []entry
	after := witTypes.None[[]byte]()
	for {
		page := weir_plugin_state.MapRange(h, c.key, after, 1024)
		for _, e := range page {
			out = append(out, entry{e.F0, e.F1})
		}
		if len(page) < 1024 {
			return out, nil
		}
		after = witTypes.Some(page[len(page)-1].F0)
	}
}

func (c *call) mapClear(h uint32) error {
	sl, err := c.mapSlot(h)
	if err != nil {
		return err
	}
	if sl == nil {
		weir_plugin_state.Clear(h, c.key)
		return nil
	}
	sl.entries, sl.dirty = nil, true
	return nil
}
