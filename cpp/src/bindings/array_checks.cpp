#include "array_checks.hpp"

#include <cstdint>
#include <sstream>

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

template <class T> void push(std::vector<TensorRef<T>>& out, py::array& p, const py::array& g, std::vector<py::array>& s) {
    TensorRef<T> t;
    t.param = static_cast<T*>(p.mutable_data());
    t.grad = static_cast<const T*>(g.data());
    for (std::size_t k = 0; k < s.size(); ++k) t.state[k] = static_cast<T*>(s[k].mutable_data());
    t.size = static_cast<std::size_t>(p.size());
    out.push_back(t);
}

}  // namespace

Batch gather(const py::object& params_obj, const py::object& grads_obj, const std::vector<NamedArrays>& states) {
    const py::sequence params = as_list(params_obj, "params");
    const py::sequence grads = as_list(grads_obj, "grads");
    const std::size_t n = params.size();
    if (grads.size() != n)
        throw py::value_error("grads has " + std::to_string(grads.size()) + " arrays but params has " +
                              std::to_string(n) + "; pass one gradient per parameter, in order");
    std::vector<py::sequence> state_lists;
    for (const auto& [name, obj] : states) {
        state_lists.push_back(as_list(obj, name));
        if (state_lists.back().size() != n)
            throw py::value_error(std::string(name) + " has " + std::to_string(state_lists.back().size()) +
                                  " arrays but params has " + std::to_string(n));
    }
    Batch b;
    std::vector<py::array> s(states.size());
    for (std::size_t i = 0; i < n; ++i) {
        const std::string pw = label("params", i);
        py::array p = as_array(params[i], pw);
        const Kind pk = kind_of(p, pw);
        require_layout(p, pw, true);
        const std::string gw = label("grads", i);
        const py::array g = as_array(grads[i], gw);
        require_same(g, kind_of(g, gw), p, pk, gw, pw);
        require_layout(g, gw, false);
        for (std::size_t k = 0; k < states.size(); ++k) {
            const std::string sw = label(states[k].first, i);
            s[k] = as_array(state_lists[k][i], sw);
            require_same(s[k], kind_of(s[k], sw), p, pk, sw, pw);
            require_layout(s[k], sw, true);
        }
        b.keep.push_back(p);
        b.keep.push_back(g);
        for (const py::array& a : s) b.keep.push_back(a);
        if (pk == Kind::f32) push(b.f32, p, g, s);
        else push(b.f64, p, g, s);
    }
    return b;
}

ArrayList gather_arrays(const py::object& obj, const char* name, bool writeable) {
    const py::sequence arrays = as_list(obj, name);
    ArrayList out;
    for (std::size_t i = 0; i < arrays.size(); ++i) {
        const std::string w = label(name, i);
        py::array a = as_array(arrays[i], w);
        const Kind k = kind_of(a, w);
        require_layout(a, w, writeable);
        // mutable_data() would raise on a read-only array; reading never needs it.
        void* data = const_cast<void*>(a.data());
        out.keep.push_back(a);
        if (k == Kind::f32) {
            out.f32.push_back(static_cast<float*>(data));
            out.f32_sizes.push_back(static_cast<std::size_t>(a.size()));
        } else {
            out.f64.push_back(static_cast<double*>(data));
            out.f64_sizes.push_back(static_cast<std::size_t>(a.size()));
        }
    }
    return out;
}

}  // namespace fastgd::bindings
