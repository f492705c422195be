package erpclient

import (
	"reflect"
	"sort"
	"sync"
	"unsafe"
)

// The memory cache bounds what its entries really hold, so it measures the
// decoded answers it keeps rather than guessing from the body's length: a
// decoded page is several small heap objects per row (structs, slices,
// multi-language maps, strings), and the decoder's copy of the body, which
// its strings point into, stays alive as long as the page does.

// heapSize returns the bytes of the heap objects reachable from v that v
// does not share with anything seen before in this walk: what keeping v
// alive costs, in Go's allocation size classes. It reads v only (v is
// shared read-only by the cache's readers).
func heapSize(v any) int64 {
	if v == nil {
		return 0
	}
	s := sizer{seen: map[uintptr]struct{}{}}
	rv := reflect.ValueOf(v)
	// the interface's boxed copy of a non-pointer value is an allocation of its own
	n := s.reach(rv)
	if k := rv.Kind(); k != reflect.Pointer && k != reflect.Map && k != reflect.Chan && k != reflect.Func && k != reflect.UnsafePointer {
		n += allocSize(int64(rv.Type().Size()))
	}
	return n
}

type sizer struct {
	seen map[uintptr]struct{}
}

// once reports whether p is seen for the first time (shared objects count once).
func (s *sizer) once(p uintptr) bool {
	if _, ok := s.seen[p]; ok {
		return false
	}
	s.seen[p] = struct{}{}
	return true
}

// reach is the size of what v points to (not of v's own inline bytes).
func (s *sizer) reach(v reflect.Value) int64 {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() || !s.once(v.Pointer()) {
			return 0
		}
		e := v.Elem()
		return allocSize(int64(e.Type().Size())) + s.reach(e)
	case reflect.String:
		str := v.String()
		if len(str) == 0 || !s.once(uintptr(unsafe.Pointer(unsafe.StringData(str)))) {
			return 0
		}
		return allocSize(int64(len(str)))
	case reflect.Slice:
		if v.IsNil() || v.Cap() == 0 || !s.once(v.Pointer()) {
			return 0
		}
		t := v.Type().Elem()
		n := allocSize(int64(v.Cap()) * int64(t.Size()))
		if hasPointers(t) {
			for i := range v.Len() {
				n += s.reach(v.Index(i))
			}
		}
		return n
	case reflect.Array:
		var n int64
		if hasPointers(v.Type().Elem()) {
			for i := range v.Len() {
				n += s.reach(v.Index(i))
			}
		}
		return n
	case reflect.Struct:
		var n int64
		t := v.Type()
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				n += s.reach(v.Field(i))
			}
		}
		return n
	case reflect.Map:
		if v.IsNil() || !s.once(v.Pointer()) {
			return 0
		}
		t := v.Type()
		n := mapSize(v.Len(), int64(t.Key().Size()), int64(t.Elem().Size()))
		kp, ep := hasPointers(t.Key()), hasPointers(t.Elem())
		if kp || ep {
			it := v.MapRange()
			for it.Next() {
				if kp {
					n += s.reach(it.Key())
				}
				if ep {
					n += s.reach(it.Value())
				}
			}
		}
		return n
	case reflect.Interface:
		if v.IsNil() {
			return 0
		}
		e := v.Elem()
		switch e.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Chan, reflect.Func, reflect.UnsafePointer:
			return s.reach(e)
		}
		return allocSize(int64(e.Type().Size())) + s.reach(e)
	}
	return 0 // numbers, bools; channels and functions are not data an answer holds
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

var pointerTypes sync.Map // reflect.Type → bool

// hasPointers reports whether values of t can refer to other heap objects.
func hasPointers(t reflect.Type) bool {
	if b, ok := pointerTypes.Load(t); ok {
		return b.(bool)
	}
	var b bool
	switch t.Kind() {
	case reflect.Pointer, reflect.String, reflect.Slice, reflect.Map, reflect.Interface:
		b = true
	case reflect.Array:
		b = t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		// a struct reaches its own type only through a pointer, which answers above: no recursion loop
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				b = true
				break
			}
		}
	}
	pointerTypes.Store(t, b)
	return b
}

// sizeClasses are the Go runtime's small-object size classes (runtime/sizeclasses.go).
var sizeClasses = []int64{8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320,
	352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792, 2048, 2304, 2688, 3072,
	3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728, 10240, 10880, 12288, 13568, 14336, 16384,
	18432, 19072, 20480, 21760, 24576, 27264, 28672, 32768}

// allocSize is what the runtime allocates for an object of n bytes.
func allocSize(n int64) int64 {
	if n <= 0 {
		return 0
	}
	if n <= sizeClasses[len(sizeClasses)-1] {
		return sizeClasses[sort.Search(len(sizeClasses), func(i int) bool { return sizeClasses[i] >= n })]
	}
	const page = 8192
	return (n + page - 1) / page * page
}
