package erpclient

import (
	"reflect"
	"sort"
	"sync"
)

// The memory cache bounds what its entries really hold, so it measures the
// decoded answers it keeps rather than guessing from the body's length: a
// decoded page is several small heap objects per row (structs, slices,
// multi-language maps, strings), and the decoder's copy of the body, which
// its strings point into, stays alive as long as the page does.

// heapSize returns the bytes of the heap objects reachable from v: what
// keeping v alive costs, in Go's allocation size classes. It reads v only
// (v is shared read-only by the cache's readers). An object reachable twice
// counts twice, which errs on the safe side; decoded answers share nothing.
// The walk stops at maxSizeDepth, so a cyclic value cannot loop.
func heapSize(v any) int64 {
	if v == nil {
		return 0
	}
	rv := reflect.ValueOf(v)
	p := planOf(rv.Type())
	n := p.reach(rv, 0)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Chan, reflect.Func, reflect.UnsafePointer:
	default: // the interface's boxed copy of a non-pointer value is an allocation of its own
		n += allocSize(p.size)
	}
	return n
}

// maxSizeDepth bounds the walk (decoded answers nest a handful of levels).
const maxSizeDepth = 32

// sizeSample is how many elements of a longer slice the walk visits.
const sizeSample = 8

// sizePlan is what the walk needs to know of a type, worked out once per
// type so the walk itself looks nothing up.
type sizePlan struct {
	kind     reflect.Kind
	size     int64 // of one value
	pointers bool  // values can refer to other heap objects
	elem     *sizePlan
	key      *sizePlan   // maps
	fields   []sizeField // structs: the fields that can refer to other objects
	rt       reflect.Type
}

type sizeField struct {
	index int
	plan  *sizePlan
}

// reach is the size of what v points to (not of v's own inline bytes).
func (p *sizePlan) reach(v reflect.Value, depth int) int64 {
	if !p.pointers || depth > maxSizeDepth {
		return 0
	}
	switch p.kind {
	case reflect.Pointer:
		if v.IsNil() {
			return 0
		}
		return allocSize(p.elem.size) + p.elem.reach(v.Elem(), depth+1)
	case reflect.String:
		return allocSize(int64(v.Len()))
	case reflect.Slice:
		if v.IsNil() || v.Cap() == 0 {
			return 0
		}
		n := allocSize(int64(v.Cap()) * p.elem.size)
		if !p.elem.pointers {
			return n
		}
		l := v.Len()
		if l <= sizeSample {
			for i := range l {
				n += p.elem.reach(v.Index(i), depth+1)
			}
			return n
		}
		// rows of one answer look alike: walk evenly spaced ones and scale up
		var sampled int64
		for j := range sizeSample {
			sampled += p.elem.reach(v.Index(j*l/sizeSample), depth+1)
		}
		return n + sampled*int64(l)/sizeSample
	case reflect.Array:
		var n int64
		for i := range v.Len() {
			n += p.elem.reach(v.Index(i), depth+1)
		}
		return n
	case reflect.Struct:
		var n int64
		for _, f := range p.fields {
			n += f.plan.reach(v.Field(f.index), depth+1)
		}
		return n
	case reflect.Map:
		if v.IsNil() {
			return 0
		}
		n := mapSize(v.Len(), p.key.size, p.elem.size)
		if p.key.pointers || p.elem.pointers {
			// reused holders: MapIter.Key and Value would allocate a copy per entry
			k, e := reflect.New(p.key.rt).Elem(), reflect.New(p.elem.rt).Elem()
			it := v.MapRange()
			for it.Next() {
				if p.key.pointers {
					k.SetIterKey(it)
					n += p.key.reach(k, depth+1)
				}
				if p.elem.pointers {
					e.SetIterValue(it)
					n += p.elem.reach(e, depth+1)
				}
			}
		}
		return n
	case reflect.Interface:
		if v.IsNil() {
			return 0
		}
		e := v.Elem()
		ep := planOf(e.Type())
		switch e.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Chan, reflect.Func, reflect.UnsafePointer:
			return ep.reach(e, depth+1)
		}
		return allocSize(ep.size) + ep.reach(e, depth+1)
	}
	return 0 // channels and functions are not data an answer holds
}

var (
	plansMu sync.Mutex
	plans   = map[reflect.Type]*sizePlan{}
)

// planOf returns t's plan, building it (and those of the types it contains) once.
func planOf(t reflect.Type) *sizePlan {
	plansMu.Lock()
	defer plansMu.Unlock()
	return buildPlan(t)
}

func buildPlan(t reflect.Type) *sizePlan {
	if p, ok := plans[t]; ok {
		return p // also a plan still being built: a type that refers to itself through a pointer
	}
	p := &sizePlan{kind: t.Kind(), size: int64(t.Size()), rt: t}
	plans[t] = p
	switch t.Kind() {
	case reflect.Pointer:
		p.pointers, p.elem = true, buildPlan(t.Elem())
	case reflect.String, reflect.Interface:
		p.pointers = true
	case reflect.Slice:
		p.pointers, p.elem = true, buildPlan(t.Elem())
	case reflect.Map:
		p.pointers, p.key, p.elem = true, buildPlan(t.Key()), buildPlan(t.Elem())
	case reflect.Array:
		p.elem = buildPlan(t.Elem())
		p.pointers = t.Len() > 0 && p.elem.pointers
	case reflect.Struct:
		// by value a struct cannot contain itself, so its fields' plans are complete here
		for i := range t.NumField() {
			if fp := buildPlan(t.Field(i).Type); fp.pointers {
				p.fields = append(p.fields, sizeField{i, fp})
			}
		}
		p.pointers = len(p.fields) > 0
	}
	return p
}

// mapSize estimates a Go map's tables (swiss tables since Go 1.24): groups
// of 8 slots of key and value plus a control word, filled to at most 7/8.
func mapSize(n int, key, elem int64) int64 {
	const header = 48
	if n == 0 {
		return allocSize(header)
	}
	slots := int64(8)
	for slots*7/8 < int64(n) {
		slots *= 2
	}
	return allocSize(header) + allocSize(slots*(key+elem)+slots)
}

// sizeClasses are the Go runtime's small-object size classes (runtime/sizeclasses.go).
var sizeClasses = []int64{8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320,
	352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792, 2048, 2304, 2688, 3072,
	3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728, 10240, 10880, 12288, 13568, 14336, 16384,
	18432, 19072, 20480, 21760, 24576, 27264, 28672, 32768}

// allocSize is what the runtime allocates for an object of n bytes.
func allocSize(n int64) int64 {
	switch {
	case n <= 0:
		return 0
	case n <= 8:
		return 8
	case n <= 128: // classes of 16 from 16 to 128 (plus 24 and 48)
		if n <= 16 {
			return 16
		}
		if n <= 24 {
			return 24
		}
		if n <= 32 {
			return 32
		}
		if n <= 48 {
			return 48
		}
		return (n + 15) &^ 15
	case n <= sizeClasses[len(sizeClasses)-1]:
		return sizeClasses[sort.Search(len(sizeClasses), func(i int) bool { return sizeClasses[i] >= n })]
	}
	const page = 8192
	return (n + page - 1) / page * page
}
