// Argument checks at the Python boundary. Every check raises a Python exception that names the
// argument and says what was expected and what was seen; nothing reaches a kernel unchecked.
//   TypeError   not an ndarray, or the wrong dtype (never silently cast: a cast copy of an array
//               we write would leave the caller's array unchanged)
//   ValueError  shape, memory layout, read-only output, empty, NaN/inf, overlapping output
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../common.hpp"

namespace dp::bind {

namespace py = pybind11;

template <typename T>
const char* dtype_name() {
    return sizeof(T) == 4 ? "float32" : "float64";
}

inline std::string shape_str(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t d = 0; d < a.ndim(); ++d) s += (d ? ", " : "") + std::to_string(a.shape(d));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

inline std::string shape_str(const std::vector<idx>& shape) {
    std::string s = "(";
    for (size_t d = 0; d < shape.size(); ++d) s += (d ? ", " : "") + std::to_string(shape[d]);
    return s + (shape.size() == 1 ? ",)" : ")");
}

// The object as an ndarray, or TypeError. No conversion: lists and scalars are the Python
// layer's job, where a copy is visible.
inline py::array as_array(py::handle h, const std::string& name) {
    if (!py::isinstance<py::array>(h))
        throw py::type_error(name + " must be a numpy.ndarray, got " +
                             std::string(py::str(py::type::of(h).attr("__name__"))));
    return py::reinterpret_borrow<py::array>(h);
}

template <typename T>
void require_dtype(const py::array& a, const std::string& name) {
    if (!a.dtype().equal(py::dtype::of<T>()))
        throw py::type_error(name + " must have dtype " + dtype_name<T>() + ", got " +
                             std::string(py::str(a.dtype())));
}

// shape entries of -1 match any size.
inline void require_shape(const py::array& a, const std::string& name, const std::vector<idx>& shape) {
    bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
    for (size_t d = 0; ok && d < shape.size(); ++d) ok = shape[d] < 0 || a.shape(d) == shape[d];
    if (ok) return;
    std::string want = "(";
    for (size_t d = 0; d < shape.size(); ++d)
        want += (d ? ", " : "") + (shape[d] < 0 ? std::string("any") : std::to_string(shape[d]));
    want += shape.size() == 1 ? ",)" : ")";
    throw py::value_error(name + " must have shape " + want + ", got " + shape_str(a));
}

inline void require_c_contiguous(const py::array& a, const std::string& name) {
    if (!(a.flags() & py::array::c_style))
        throw py::value_error(name + " must be C-contiguous (pass numpy.ascontiguousarray(" + name +
                              "))");
}

inline void require_writeable(const py::array& a, const std::string& name) {
    if (!a.writeable()) throw py::value_error(name + " is read-only, but it is written in place");
}

inline void require_nonempty(const py::array& a, const std::string& name) {
    if (a.size() == 0) throw py::value_error(name + " is empty (shape " + shape_str(a) + ")");
}

template <typename T>
void require_finite(const T* p, idx count, const std::string& name) {
    for (idx e = 0; e < count; ++e)
        if (!std::isfinite(p[e]))
            throw py::value_error(name + " contains NaN or inf (first at flat index " +
                                  std::to_string(e) + ")");
}

// A C-contiguous T array of `shape`, checked, for reading.
template <typename T>
const T* input(const py::array& a, const std::string& name, const std::vector<idx>& shape,
               bool check_finite) {
    require_dtype<T>(a, name);
    require_shape(a, name, shape);
    require_c_contiguous(a, name);
    const T* p = static_cast<const T*>(a.data());
    if (check_finite) require_finite(p, a.size(), name);
    return p;
}

// A C-contiguous, writeable T array of `shape`, checked, for writing in place.
template <typename T>
T* output(const py::array& a, const std::string& name, const std::vector<idx>& shape) {
    require_dtype<T>(a, name);
    require_shape(a, name, shape);
    require_c_contiguous(a, name);
    require_writeable(a, name);
    return static_cast<T*>(const_cast<py::array&>(a).mutable_data());  // the handle is const, not the data
}

// The bytes an array's elements span, [first, last).
inline std::pair<std::uintptr_t, std::uintptr_t> byte_span(const py::array& a) {
    auto lo = reinterpret_cast<std::uintptr_t>(a.data()), hi = lo;
    if (a.size() == 0) return {lo, lo};
    for (py::ssize_t d = 0; d < a.ndim(); ++d) {
        const py::ssize_t step = a.strides(d) * (a.shape(d) - 1);
        if (step < 0) lo += step; else hi += step;
    }
    return {lo, hi + a.itemsize()};
}

inline void require_no_overlap(const py::array& out, const std::string& out_name, const py::array& in,
                               const std::string& in_name) {
    const auto a = byte_span(out), b = byte_span(in);
    if (a.first < b.second && b.first < a.second)
        throw py::value_error(out_name + " must not share memory with " + in_name);
}

// Calls f(T{}) with T the dtype of `a` (float32 or float64), else TypeError.
template <typename F>
decltype(auto) dispatch_dtype(const py::array& a, const std::string& name, F&& f) {
    if (a.dtype().equal(py::dtype::of<float>())) return f(float{});
    if (a.dtype().equal(py::dtype::of<double>())) return f(double{});
    throw py::type_error(name + " must have dtype float32 or float64, got " +
                         std::string(py::str(a.dtype())));
}

}  // namespace dp::bind
