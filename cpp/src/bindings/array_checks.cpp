#include "array_checks.hpp"

#include <algorithm>
#include <cstdint>
#include <sstream>
#include <type_traits>

namespace fastgd::bindings {
namespace {

enum class Kind { f32, f64 };

std::string label(const char* name, std::size_t i) { return std::string(name) + "[" + std::to_string(i) + "]"; }

std::string shape_str(const py::array& a) {
    std::ostringstream s;
    s << "(";
    for (py::ssize_t d = 0; d < a.ndim(); ++d) s << (d ? ", " : "") << a.shape(d);
    s << (a.ndim() == 1 ? ",)" : ")");
    return s.str();
}

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// A list or tuple of arrays; a bare array is refused rather than iterated row by row.
py::sequence as_list(const py::object& obj, const char* name) {
    if (py::isinstance<py::array>(obj) || !(py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj)))
        throw py::type_error(std::string(name) + " must be a list of numpy arrays, got " +
                             py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
    return py::reinterpret_borrow<py::sequence>(obj);
}

py::array as_array(const py::handle& item, const std::string& where) {
    if (!py::isinstance<py::array>(item))
        throw py::type_error(where + ": expected a numpy.ndarray, got " +
                             py::str(py::type::of(item).attr("__name__")).cast<std::string>());
    return py::reinterpret_borrow<py::array>(item);
}

Kind kind_of(const py::array& a, const std::string& where) {
    const py::dtype dt = a.dtype();
    const char order = dt.byteorder();
    const std::uint16_t probe = 1;
    const char native_order = *reinterpret_cast<const unsigned char*>(&probe) == 1 ? '<' : '>';
    const bool native = order == '=' || order == '|' || order == native_order;
    if (dt.kind() == 'f' && native) {
        if (dt.itemsize() == 4) return Kind::f32;
        if (dt.itemsize() == 8) return Kind::f64;
    }
    throw py::type_error(where + ": dtype " + dtype_str(a) +
                         " is not supported; fastgd updates float32 and float64 arrays in place");
}

void require_layout(const py::array& a, const std::string& where, bool writeable) {
    if (!(a.flags() & py::array::c_style))
        throw py::value_error(where + ": array is not C-contiguous; pass np.ascontiguousarray(...) "
                                      "yourself (fastgd never copies silently)");
    if (writeable && !a.writeable()) throw py::value_error(where + ": array is read-only; it must be writeable");
}

void require_same(const py::array& a, Kind k, const py::array& param, Kind pk, const std::string& where,
                  const std::string& param_where) {
    if (k != pk)
        throw py::type_error(where + ": dtype " + dtype_str(a) + " does not match " + param_where + " dtype " +
                             dtype_str(param) + " (no silent casts)");
    bool same = a.ndim() == param.ndim();
    for (py::ssize_t d = 0; same && d < a.ndim(); ++d) same = a.shape(d) == param.shape(d);
    if (!same)
        throw py::value_error(where + ": shape " + shape_str(a) + " does not match " + param_where + " shape " +
                              shape_str(param));
}

// Fast checks straight on NumPy's structs: a step over 2,000 arrays must cost little more
// than over one. Any failure re-runs the checks above, which build the error message.
namespace npy = py::detail;

int native_float_size(PyObject* o) {
    if (!npy::npy_api::get().PyArray_Check_(o)) return 0;
    const auto* d = npy::array_descriptor_proxy(npy::array_proxy(o)->descr);
    const std::uint16_t probe = 1;
    const char non_native = *reinterpret_cast<const unsigned char*>(&probe) == 1 ? '>' : '<';
    if (d->byteorder == non_native) return 0;
    return d->type_num == 11 ? 4 : d->type_num == 12 ? 8 : 0;  // NPY_FLOAT, NPY_DOUBLE
}

bool fast_ok(PyObject* o, int size, PyObject* like, bool writeable) {
    if (native_float_size(o) != size) return false;
    const auto* a = npy::array_proxy(o);
    const int need = npy::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | (writeable ? npy::npy_api::NPY_ARRAY_WRITEABLE_ : 0);
    if ((a->flags & need) != need) return false;
    if (!like) return true;
    const auto* b = npy::array_proxy(like);
    if (a->nd != b->nd) return false;
    for (int d = 0; d < a->nd; ++d)
        if (a->dimensions[d] != b->dimensions[d]) return false;
    return true;
}

// A tuple holding the sequence's items: they stay alive while the GIL is released, even if
// another thread empties the caller's list meanwhile.
py::tuple items(const py::object& obj, const char* name) {
    as_list(obj, name);
    if (py::isinstance<py::tuple>(obj)) return py::reinterpret_borrow<py::tuple>(obj);
    return py::reinterpret_steal<py::tuple>(PySequence_Tuple(obj.ptr()));
}

}  // namespace

Batch gather(const py::object& params_obj, const py::object& grads_obj, const std::vector<NamedArrays>& states) {
    Batch b;
    const py::tuple params = items(params_obj, "params");
    const py::tuple grads = items(grads_obj, "grads");
    const std::size_t n = params.size();
    if (grads.size() != n)
        throw py::value_error("grads has " + std::to_string(grads.size()) + " arrays but params has " +
                              std::to_string(n) + "; pass one gradient per parameter, in order");
    std::vector<py::tuple> state_lists;
    for (const auto& [name, obj] : states) {
        state_lists.push_back(items(obj, name));
        if (state_lists.back().size() != n)
            throw py::value_error(std::string(name) + " has " + std::to_string(state_lists.back().size()) +
                                  " arrays but params has " + std::to_string(n));
    }
    b.keep.push_back(params);
    b.keep.push_back(grads);
    for (const py::tuple& t : state_lists) b.keep.push_back(t);

    for (std::size_t i = 0; i < n; ++i) {
        PyObject* p = PyTuple_GET_ITEM(params.ptr(), i);
        PyObject* g = PyTuple_GET_ITEM(grads.ptr(), i);
        const int size = native_float_size(p);
        bool ok = size != 0 && fast_ok(p, size, nullptr, true) && fast_ok(g, size, p, false);
        for (std::size_t k = 0; ok && k < states.size(); ++k)
            ok = fast_ok(PyTuple_GET_ITEM(state_lists[k].ptr(), i), size, p, true);
        if (!ok) {  // the slow checks say what is wrong
            const std::string pw = label("params", i), gw = label("grads", i);
            py::array pa = as_array(p, pw);
            const Kind pk = kind_of(pa, pw);
            require_layout(pa, pw, true);
            const py::array ga = as_array(g, gw);
            require_same(ga, kind_of(ga, gw), pa, pk, gw, pw);
            require_layout(ga, gw, false);
            for (std::size_t k = 0; k < states.size(); ++k) {
                const std::string sw = label(states[k].first, i);
                const py::array sa = as_array(PyTuple_GET_ITEM(state_lists[k].ptr(), i), sw);
                require_same(sa, kind_of(sa, sw), pa, pk, sw, pw);
                require_layout(sa, sw, true);
            }
        }
        const auto* pp = npy::array_proxy(p);
        std::size_t count = 1;
        for (int d = 0; d < pp->nd; ++d) count *= static_cast<std::size_t>(pp->dimensions[d]);
        auto fill = [&](auto& out, auto* tag) {
            using T = std::remove_pointer_t<decltype(tag)>;
            TensorRef<T> t;
            t.param = reinterpret_cast<T*>(pp->data);
            t.grad = reinterpret_cast<const T*>(npy::array_proxy(g)->data);
            for (std::size_t k = 0; k < states.size(); ++k)
                t.state[k] = reinterpret_cast<T*>(npy::array_proxy(PyTuple_GET_ITEM(state_lists[k].ptr(), i))->data);
            t.size = count;
            out.push_back(t);
        };
        if (size == 4) fill(b.f32, static_cast<float*>(nullptr));
        else fill(b.f64, static_cast<double*>(nullptr));
    }
    return b;
}

void add_written(std::vector<Written>& out, const py::handle& arrays, const char* list, std::size_t first,
                 const char* key) {
    const py::tuple t = items(py::reinterpret_borrow<py::object>(arrays), list);
    for (std::size_t i = 0; i < t.size(); ++i) {
        PyObject* o = PyTuple_GET_ITEM(t.ptr(), i);
        if (!npy::npy_api::get().PyArray_Check_(o)) continue;
        const auto a = py::reinterpret_borrow<py::array>(o);
        if (!(a.flags() & py::array::c_style)) continue;
        const auto bytes = static_cast<std::uintptr_t>(a.nbytes());
        const auto start = reinterpret_cast<std::uintptr_t>(a.data());
        out.push_back({start, start + bytes, o, list, first + i, key, out.size()});
    }
}

namespace {

std::string written_name(const Written& w) {
    std::string s = label(w.list, w.index);
    if (w.key) s += std::string("['") + w.key + "']";
    return s;
}

// The error for two arrays that share memory, named in the order they were given.
[[noreturn]] void overlap_error(const Written& x, const Written& y) {
    const Written& a = x.order < y.order ? x : y;
    const Written& b = x.order < y.order ? y : x;
    const std::string an = written_name(a), bn = written_name(b);
    if (a.array == b.array)
        throw py::value_error(an + " and " + bn + " are the same array (one array appears more than once); each "
                              "of its elements would be updated twice");
    std::string why;
    if (b.start >= a.start && b.end <= a.end) why = bn + " lies within " + an + "'s memory";
    else if (a.start >= b.start && a.end <= b.end) why = an + " lies within " + bn + "'s memory";
    else why = "they share " + std::to_string(std::min(a.end, b.end) - std::max(a.start, b.start)) + " bytes";
    throw py::value_error(an + " and " + bn + " overlap in memory (" + why +
                          "); each element they share would be updated twice");
}

}  // namespace

void require_disjoint(std::vector<Written>& arrays) {
    if (arrays.size() < 2) return;
    std::sort(arrays.begin(), arrays.end(), [](const Written& a, const Written& b) {
        return a.start != b.start ? a.start < b.start : a.order < b.order;
    });
    std::size_t furthest = 0;  // the array with the furthest end so far
    for (std::size_t i = 1; i < arrays.size(); ++i) {
        const Written& w = arrays[i];
        if (w.array == arrays[i - 1].array) overlap_error(arrays[i - 1], w);  // one array twice, even empty
        if (w.start == w.end) continue;                                       // no element to share
        if (w.start < arrays[furthest].end) overlap_error(arrays[furthest], w);
        if (w.end > arrays[furthest].end) furthest = i;
    }
}

int check_array(const py::handle& obj, const std::string& name, bool writeable, const py::array* like,
                const std::string& like_name) {
    const py::array a = as_array(obj, name);
    const Kind k = kind_of(a, name);
    if (like) require_same(a, k, *like, kind_of(*like, like_name), name, like_name);
    require_layout(a, name, writeable);
    return k == Kind::f32 ? 4 : 8;
}

ArrayList gather_arrays(const py::object& obj, const char* name, bool writeable) {
    const py::tuple arrays = items(obj, name);
    ArrayList out;
    out.keep.push_back(arrays);
    for (std::size_t i = 0; i < arrays.size(); ++i) {
        PyObject* o = PyTuple_GET_ITEM(arrays.ptr(), i);
        const int size = native_float_size(o);
        if (size == 0 || !fast_ok(o, size, nullptr, writeable)) {  // the slow checks say what is wrong
            const std::string w = label(name, i);
            const py::array a = as_array(o, w);
            kind_of(a, w);
            require_layout(a, w, writeable);
        }
        const auto* a = npy::array_proxy(o);
        std::size_t count = 1;
        for (int d = 0; d < a->nd; ++d) count *= static_cast<std::size_t>(a->dimensions[d]);
        if (size == 4) {
            out.f32.push_back(reinterpret_cast<float*>(a->data));
            out.f32_sizes.push_back(count);
        } else {
            out.f64.push_back(reinterpret_cast<double*>(a->data));
            out.f64_sizes.push_back(count);
        }
    }
    if (writeable) {  // each element is written once: no two arrays may share one
        std::vector<Written> written;
        add_written(written, arrays, name);
        require_disjoint(written);
    }
    return out;
}

}  // namespace fastgd::bindings
