// SPDX-License-Identifier: MIT
// shiftnorm._core: the pybind11 bindings behind the `shiftnorm` Python package (corruptions, rectification).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "shiftnorm/corrupt.hpp"
#include "shiftnorm/corrupt/selection.hpp"
#include "shiftnorm/corrupt/writer.hpp"
#include "shiftnorm/stats/external.hpp"
#include "shiftnorm/version.hpp"

namespace py = pybind11;
namespace sc = shiftnorm::corrupt;

namespace {

//! Frost textures are loaded once per directory and shared by every later call.
const sc::frost_textures* frost_for(const std::string& dir) {
    if (dir.empty()) return nullptr;
    static std::mutex mu;
    static std::map<std::string, std::unique_ptr<sc::frost_textures>> cache;
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(dir);
    if (it == cache.end())
        it = cache.emplace(dir, std::make_unique<sc::frost_textures>(sc::frost_textures::load_directory(dir))).first;
    return it->second.get();
}

//! Checks a uint8 NHWC array (C-contiguous, 1 or 3 channels) and returns a batch view of it.
template <class View>
View batch_of(const py::array& a, const char* arg, bool writable) {
    if (!py::isinstance<py::array_t<std::uint8_t>>(a) || a.dtype().kind() != 'u' || a.itemsize() != 1)
        throw py::type_error(std::string(arg) + ": expected a uint8 array, got dtype " +
                             py::str(a.dtype()).cast<std::string>());
    if (a.ndim() != 4)
        throw py::value_error(std::string(arg) + ": expected a 4-D (N, H, W, C) array, got " +
                              std::to_string(a.ndim()) + " dimension(s)");
    if (!(a.flags() & py::array::c_style))
        throw py::value_error(std::string(arg) + ": expected a C-contiguous array (use numpy.ascontiguousarray)");
    if (writable && !a.writeable()) throw py::value_error(std::string(arg) + ": the array is read-only");
    const auto c = a.shape(3);
    if (c != 1 && c != 3)
        throw py::value_error(std::string(arg) + ": expected 1 or 3 channels (last axis), got " + std::to_string(c));
    if (a.shape(1) < 1 || a.shape(2) < 1)
        throw py::value_error(std::string(arg) + ": images must be at least 1x1, got " + std::to_string(a.shape(1)) +
                              "x" + std::to_string(a.shape(2)));
    using P = decltype(View{}.data);
    return View{static_cast<P>(const_cast<void*>(a.data())), static_cast<std::size_t>(a.shape(0)),
                static_cast<int>(a.shape(1)), static_cast<int>(a.shape(2)), static_cast<int>(c)};
}

sc::corrupt_options options_for(const std::string& table, int height, int channels, const std::string& frost_dir,
                                const std::string& noise_stream) {
    sc::corrupt_options o;
    o.table = table == "auto" ? sc::default_table(height, channels) : sc::parse_table(table);
    if (noise_stream == "v1") o.noise = sc::noise_stream::v1;
    else if (noise_stream != "counter")
        throw py::value_error("noise_stream must be 'counter' or 'v1', got '" + noise_stream + "'");
    // "procedural:v1" (from shiftnorm._frost): the pre-calibration procedural frost
    if (frost_dir == "procedural:v1") {
        o.frost_procedural = sc::procedural_frost_params::v1();
        return o;
    }
    o.frost = frost_for(frost_dir);
    return o;
}

std::vector<sc::corruption> parse_names(const std::vector<std::string>& names) {
    std::vector<sc::corruption> v;
    for (const auto& n : names) v.push_back(sc::parse_corruption(n));
    return v;
}

void corrupt_batch(const py::array& src, py::array& dst, const std::string& name, int severity, std::uint64_t seed,
                   const std::string& table, int threads, std::uint64_t first_index, const std::string& frost_dir,
                   const std::string& noise_stream, const std::string& filters) {
    const auto s = batch_of<sc::const_batch_view>(src, "images", false);
    const auto d = batch_of<sc::batch_view>(dst, "out", true);
    const auto c = sc::parse_corruption(name);
    auto opt = options_for(table, s.height, s.channels, frost_dir, noise_stream);
    if (filters == "reference") opt.filters = sc::filter_arithmetic::reference;
    else if (filters != "fast") throw py::value_error("filters must be 'fast' or 'reference', got '" + filters + "'");
    py::gil_scoped_release release;
    sc::corrupt_batch(c, severity, s, d, seed, opt, threads, first_index);
}

std::string table_for(const std::string& table, int height, int channels) {
    return sc::table_name(table == "auto" ? sc::default_table(height, channels) : sc::parse_table(table));
}

void write_cifar_c(const std::string& dir, const py::array& images, const std::vector<std::uint8_t>& labels,
                   const std::vector<std::string>& names, std::uint64_t seed, const std::string& table, int threads,
                   const std::string& frost_dir, const std::string& noise_stream) {
    const auto s = batch_of<sc::const_batch_view>(images, "images", false);
    const auto which = parse_names(names);
    const auto opt = options_for(table, s.height, s.channels, frost_dir, noise_stream);
    py::gil_scoped_release release;
    sc::write_cifar_c(dir, s, labels, which, seed, opt, threads);
}

void write_imagenet_c(const std::string& root, const py::array& images, const std::vector<std::string>& wnids,
                      const std::vector<std::string>& files, const std::vector<std::string>& names, std::uint64_t seed,
                      const std::string& table, int threads, std::uint64_t first_index, int quality,
                      const std::string& frost_dir, const std::string& noise_stream) {
    const auto s = batch_of<sc::const_batch_view>(images, "images", false);
    if (wnids.size() != files.size())
        throw py::value_error("items: every item needs a (wnid, file) pair");
    std::vector<sc::imagenet_item> items;
    for (std::size_t i = 0; i < wnids.size(); ++i) items.push_back({wnids[i], files[i]});
    const auto which = parse_names(names);
    const auto opt = options_for(table, s.height, s.channels, frost_dir, noise_stream);
    if (quality < 1 || quality > 100) throw py::value_error("jpeg_quality: expected 1..100, got " + std::to_string(quality));
    py::gil_scoped_release release;
    sc::write_imagenet_c(root, s, items, which, seed, opt, threads, first_index, quality);
}

//! A float32 buffer of `channels` values that rectification may write in place.
float* stats_buffer(const py::array& a, const char* arg, shiftnorm::index_t channels) {
    if (a.dtype().kind() != 'f' || a.itemsize() != 4)
        throw py::type_error(std::string(arg) + ": expected float32, got dtype " + py::str(a.dtype()).cast<std::string>());
    if (a.ndim() != 1 || a.shape(0) != channels)
        throw py::value_error(std::string(arg) + ": expected shape (" + std::to_string(channels) + ",)");
    if (!(a.flags() & py::array::c_style)) throw py::value_error(std::string(arg) + ": expected a contiguous buffer");
    if (!a.writeable()) throw py::value_error(std::string(arg) + ": the buffer is read-only");
    return static_cast<float*>(const_cast<void*>(a.data()));
}

//! The activation view of a float32 array of shape (N, C), (N, C, L), (N, C, H, W) or
//! (N, C, D, H, W), C-contiguous, or a 4-D channels_last array: never copied.
shiftnorm::activation_view activation_of(const py::array& x) {
    using shiftnorm::index_t;
    if (x.dtype().kind() != 'f' || x.itemsize() != 4)
        throw py::type_error("x: expected float32 activations, got dtype " + py::str(x.dtype()).cast<std::string>());
    const auto nd = x.ndim();
    if (nd < 2 || nd > 5)
        throw py::value_error("x: expected (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W), got " +
                              std::to_string(nd) + " dimension(s)");
    shiftnorm::shape4 s{index_t(x.shape(0)), index_t(x.shape(1)), 1, 1};
    if (nd == 3) s.h = index_t(x.shape(2));
    if (nd == 4) s.h = index_t(x.shape(2)), s.w = index_t(x.shape(3));
    if (nd == 5) s.h = index_t(x.shape(2)), s.w = index_t(x.shape(3) * x.shape(4));
    const auto* p = static_cast<const float*>(x.data());
    if (x.flags() & py::array::c_style) return {p, s, shiftnorm::memory_layout::nchw};
    if (nd == 4) {  // channels_last: strides (H*W*C, 1, W*C, C) elements
        const auto N = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3);
        const auto e = x.itemsize();
        const bool nhwc = (C == 1 || x.strides(1) == e) && (W == 1 || x.strides(3) == C * e) &&
                          (H == 1 || x.strides(2) == W * C * e) && (N == 1 || x.strides(0) == H * W * C * e);
        if (nhwc) return {p, s, shiftnorm::memory_layout::nhwc};
    }
    throw py::value_error("x: expected a contiguous or channels_last tensor (call .contiguous() first)");
}

py::tuple rectify_layer(const py::array& x, py::array& running_mean, py::array& running_var, const std::string& what,
                        double prior, const std::string& variance, const std::string& pass, bool write_pass) {
    const auto xv = activation_of(x);
    shiftnorm::external_stats st{stats_buffer(running_mean, "running_mean", xv.shape.c),
                                 stats_buffer(running_var, "running_var", xv.shape.c), xv.shape.c};
    shiftnorm::rectify_options o;
    o.what = shiftnorm::parse_adapt_what(what);
    if (!(prior >= 0.0)) throw py::value_error("prior: expected a number >= 0, got " + std::to_string(prior));
    o.prior = prior;
    if (variance == "unbiased") o.variance = shiftnorm::variance_kind::unbiased;
    else if (variance == "biased") o.variance = shiftnorm::variance_kind::biased;
    else throw py::value_error("variance: expected 'unbiased' or 'biased', got '" + variance + "'");
    if (pass == "batch") o.pass = shiftnorm::rectify_pass::batch;
    else if (pass == "adapted") o.pass = shiftnorm::rectify_pass::adapted;
    else throw py::value_error("pass_stats: expected 'batch' or 'adapted', got '" + pass + "'");
    shiftnorm::external_rectify_result r;
    {
        py::gil_scoped_release release;
        r = shiftnorm::rectify_external(xv, st, o, /*write=*/false);
        if (write_pass) st.write(r.pass);
    }
    auto arr = [](const std::vector<float>& v) {
        py::array_t<float> a(static_cast<py::ssize_t>(v.size()));
        std::copy(v.begin(), v.end(), a.mutable_data());
        return a;
    };
    return py::make_tuple(arr(r.stored.mean), arr(r.stored.var), arr(r.pass.mean), arr(r.pass.var));
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "shiftnorm's compiled core (use the `shiftnorm` package, not this module directly).";
    m.attr("__version__") = SHIFTNORM_VERSION_STRING;

    // the library's errors become the Python exceptions a caller expects
    static py::exception<shiftnorm::io_error> io_exc(m, "IOError", PyExc_OSError);
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const shiftnorm::io_error& e) {
            io_exc(e.what());
        } catch (const shiftnorm::value_error& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        } catch (const shiftnorm::shape_error& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        } catch (const shiftnorm::numeric_error& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        } catch (const std::filesystem::filesystem_error& e) {
            PyErr_SetString(PyExc_OSError, e.what());
        }
    });

    m.def("corruption_names", [] { return std::vector<std::string>(sc::corruption_names.begin(), sc::corruption_names.end()); },
          "The 19 corruption names in ImageNet-C order (15 common, then 4 held-out).");
    m.def("corrupt_batch", &corrupt_batch, py::arg("src"), py::arg("dst"), py::arg("name"), py::arg("severity"),
          py::arg("seed"), py::arg("table"), py::arg("threads"), py::arg("first_index"), py::arg("frost_dir"), py::arg("noise_stream"),
          py::arg("filters") = "fast", "Corrupts a uint8 (N, H, W, C) batch into dst; releases the GIL.");
    m.def("table_for", &table_for, py::arg("table"), py::arg("height"), py::arg("channels"),
          "The parameter table name used for images of this size ('auto' resolved).");
    m.def("write_cifar_c", &write_cifar_c, py::arg("dir"), py::arg("images"), py::arg("labels"), py::arg("names"),
          py::arg("seed"), py::arg("table"), py::arg("threads"), py::arg("frost_dir"), py::arg("noise_stream"));
    m.def("write_imagenet_c", &write_imagenet_c, py::arg("root"), py::arg("images"), py::arg("wnids"),
          py::arg("files"), py::arg("names"), py::arg("seed"), py::arg("table"), py::arg("threads"),
          py::arg("first_index"), py::arg("jpeg_quality"), py::arg("frost_dir"), py::arg("noise_stream"));
    m.def("rectify_third", &shiftnorm::rectify_third, py::arg("i"), py::arg("layers"),
          "The third (0 front, 1 middle, 2 end) of BN layer i of `layers` (seed 000, Table 7).");
    m.def("rectify_layer", &rectify_layer, py::arg("x"), py::arg("running_mean"), py::arg("running_var"),
          py::arg("what"), py::arg("prior"), py::arg("variance"), py::arg("pass_stats"), py::arg("write_pass"),
          "One BN layer's rectification step on the caller's buffers (zero-copy). Returns (stored_mean, "
          "stored_var, pass_mean, pass_var); with write_pass the pass statistics are written into the buffers.");
}
