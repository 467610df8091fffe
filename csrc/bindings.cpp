// Python bindings of the native core (angio_deploy._native). The public API and all
// argument validation live in angio_deploy.kernels; these functions receive already
// validated, C-contiguous arrays, allocate the outputs, and run the kernels with the GIL
// released (the argument arrays stay referenced by this frame throughout).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kernels.hpp"

namespace py = pybind11;

namespace {

using angio::index_t;
using f64array = py::array_t<double, py::array::c_style | py::array::forcecast>;
using i64array = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

void require_shape(const py::array& a, const char* name, std::initializer_list<py::ssize_t> dims) {
  // -1 in dims means "any size".
  bool good = a.ndim() == static_cast<py::ssize_t>(dims.size());
  py::ssize_t k = 0;
  for (auto d : dims) {
    if (!good) break;
    good = d < 0 || a.shape(k) == d;
    ++k;
  }
  if (!good) throw py::value_error(std::string(name) + " has the wrong shape");
}

py::array_t<double> project(const f64array& P, const f64array& X) {
  require_shape(P, "P", {-1, 3, 4});
  require_shape(X, "X", {-1, 3});
  const index_t nv = P.shape(0), n = X.shape(0);
  py::array_t<double> out({nv, n, index_t(2)});
  const double *p = P.data(), *x = X.data();
  double* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    angio::project(p, nv, x, n, o);
  }
  return out;
}

py::tuple backproject(const f64array& P, const f64array& uv) {
  require_shape(P, "P", {3, 4});
  require_shape(uv, "uv", {-1, 2});
  const index_t n = uv.shape(0);
  py::array_t<double> origins({n, index_t(3)}), dirs({n, index_t(3)});
  const double *p = P.data(), *u = uv.data();
  double *o = origins.mutable_data(), *d = dirs.mutable_data();
  {
    py::gil_scoped_release release;
    angio::backproject(p, u, n, o, d);
  }
  return py::make_tuple(origins, dirs);
}

py::tuple triangulate(const f64array& P1, const f64array& P2, const f64array& uv1,
                      const f64array& uv2, index_t iterations) {
  require_shape(P1, "P1", {3, 4});
  require_shape(P2, "P2", {3, 4});
  require_shape(uv1, "uv1", {-1, 2});
  require_shape(uv2, "uv2", {uv1.shape(0), 2});
  if (iterations < 0) throw py::value_error("iterations must be >= 0");
  const index_t n = uv1.shape(0);
  py::array_t<double> X({n, index_t(3)}), err(n);
  const double *p1 = P1.data(), *p2 = P2.data(), *a = uv1.data(), *b = uv2.data();
  double *x = X.mutable_data(), *e = err.mutable_data();
  {
    py::gil_scoped_release release;
    angio::triangulate(p1, p2, a, b, n, iterations, x, e);
  }
  return py::make_tuple(X, err);
}

py::tuple correspond_centrelines(const f64array& P1, const f64array& P2, const f64array& line1,
                                 const f64array& line2, index_t n_out, index_t iterations) {
  require_shape(P1, "P1", {3, 4});
  require_shape(P2, "P2", {3, 4});
  require_shape(line1, "line1", {-1, 2});
  require_shape(line2, "line2", {-1, 2});
  const index_t m1 = line1.shape(0), m2 = line2.shape(0);
  if (m1 < 2 || m2 < 2) throw py::value_error("each centreline needs at least 2 points");
  if (n_out < 2) throw py::value_error("n_out must be >= 2");
  if (iterations < 0) throw py::value_error("iterations must be >= 0");
  py::array_t<double> out({n_out, index_t(3)}), partners({m1, index_t(2)});
  const double *p1 = P1.data(), *p2 = P2.data(), *l1 = line1.data(), *l2 = line2.data();
  double *o = out.mutable_data(), *pp = partners.mutable_data();
  {
    py::gil_scoped_release release;
    angio::correspond_centrelines(p1, p2, l1, m1, l2, m2, n_out, iterations, o, pp);
  }
  return py::make_tuple(out, partners);
}

py::tuple tube_mesh(const f64array& centres, const f64array& axes, index_t n_around, bool caps,
                    const f64array& reference) {
  require_shape(centres, "centres", {-1, 3});
  require_shape(reference, "reference", {3});
  require_shape(axes, "axes", {centres.shape(0), 3});
  const index_t n = centres.shape(0);
  if (n < 2) throw py::value_error("a tube needs at least 2 centre points");
  if (n_around < 3) throw py::value_error("n_around must be >= 3");
  const index_t nf = angio::tube_face_count(n, n_around, caps);
  py::array_t<double> V({n * n_around, index_t(3)});
  py::array_t<std::int64_t> F({nf, index_t(3)});
  const double *c = centres.data(), *a = axes.data(), *r = reference.data();
  double* v = V.mutable_data();
  index_t* f = F.mutable_data();
  {
    py::gil_scoped_release release;
    angio::tube_vertices(c, a, n, n_around, r, v);
    angio::tube_faces(n, n_around, caps, f);
  }
  return py::make_tuple(V, F);
}

template <typename T>
py::array sample_typed(const std::vector<py::array>& maps, const f64array& uv, index_t width,
                       index_t height, index_t threads) {
  std::vector<angio::MapView<T>> views;
  index_t total = 0;
  for (size_t k = 0; k < maps.size(); ++k) {
    const py::array& m = maps[k];
    if (m.ndim() != 3 || !(m.flags() & py::array::c_style))
      throw py::value_error("map " + std::to_string(k) + " must be a C-contiguous (H, W, C) array");
    if (m.shape(0) < 1 || m.shape(1) < 1)
      throw py::value_error("map " + std::to_string(k) + " has no pixels");
    views.push_back({static_cast<const T*>(m.data()), m.shape(0), m.shape(1), m.shape(2)});
    total += m.shape(2);
  }
  const index_t n = uv.shape(0);
  py::array_t<T> out({n, total});
  const double* u = uv.data();
  T* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    angio::sample_bilinear<T>(views, u, n, width, height, o, threads);
  }
  return std::move(out);
}

py::array sample_bilinear(const std::vector<py::array>& maps, const f64array& uv, index_t width,
                          index_t height, index_t threads) {
  require_shape(uv, "uv", {-1, 2});
  if (maps.empty()) throw py::value_error("maps must not be empty");
  if (width < 1 || height < 1) throw py::value_error("width and height must be positive");
  const py::dtype dt = maps[0].dtype();
  for (const auto& m : maps)
    if (!m.dtype().is(dt) && !m.dtype().equal(dt))
      throw py::value_error("all maps must have the same dtype");
  if (dt.equal(py::dtype::of<float>())) return sample_typed<float>(maps, uv, width, height, threads);
  if (dt.equal(py::dtype::of<double>())) return sample_typed<double>(maps, uv, width, height, threads);
  throw py::value_error("maps must be float32 or float64");
}

py::array_t<std::uint8_t> rasterise_silhouette(const f64array& P, const f64array& vertices,
                                               const i64array& faces, index_t width,
                                               index_t height) {
  require_shape(P, "P", {3, 4});
  require_shape(vertices, "vertices", {-1, 3});
  require_shape(faces, "faces", {-1, 3});
  if (width < 1 || height < 1) throw py::value_error("width and height must be positive");
  const index_t nv = vertices.shape(0), nf = faces.shape(0);
  const index_t* f = faces.data();
  for (index_t k = 0; k < 3 * nf; ++k)
    if (f[k] < 0 || f[k] >= nv) throw py::index_error("faces index vertices out of range");
  py::array_t<std::uint8_t> mask({height, width});
  const double *p = P.data(), *v = vertices.data();
  std::uint8_t* m = mask.mutable_data();
  {
    py::gil_scoped_release release;
    angio::rasterise_silhouette(p, v, nv, f, nf, width, height, m);
  }
  return mask;
}

py::array_t<double> tube_path_lengths(const f64array& P, const f64array& centres,
                                      const f64array& semi_axes, const f64array& major_dir,
                                      index_t width, index_t height, index_t supersample,
                                      index_t threads) {
  require_shape(P, "P", {3, 4});
  require_shape(centres, "centres", {-1, 3});
  const index_t m = centres.shape(0);
  require_shape(semi_axes, "semi_axes", {m, 2});
  require_shape(major_dir, "major_dir", {m, 3});
  if (m < 2) throw py::value_error("a tube needs at least 2 centre points");
  if (width < 1 || height < 1) throw py::value_error("width and height must be positive");
  if (supersample < 1) throw py::value_error("supersample must be >= 1");
  py::array_t<double> out({height, width});
  const double *p = P.data(), *c = centres.data(), *a = semi_axes.data(), *d = major_dir.data();
  double* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    angio::tube_path_lengths(p, c, a, d, m, width, height, supersample, o, threads);
  }
  return out;
}

}  // namespace

#define ANGIO_STR2(x) #x
#define ANGIO_STR(x) ANGIO_STR2(x)

PYBIND11_MODULE(_native, m) {
  m.doc() = "angio-deploy native geometry core (private; use angio_deploy.kernels)";
  m.attr("__version__") = ANGIO_STR(ANGIO_VERSION_INFO);
  m.def("project", &project, py::arg("P"), py::arg("X"),
        "World points X (N, 3) mm, matrices P (V, 3, 4) -> pixels (V, N, 2); NaN behind the "
        "source.");
  m.def("backproject", &backproject, py::arg("P"), py::arg("uv"),
        "Pixels uv (N, 2) -> ray origins (N, 3) mm at the source and unit directions (N, 3).");
  m.def("triangulate", &triangulate, py::arg("P1"), py::arg("P2"), py::arg("uv1"),
        py::arg("uv2"), py::arg("iterations"),
        "Corresponding pixels (N, 2) -> points (N, 3) mm and RMS reprojection error (N,) px.");
  m.def("correspond_centrelines", &correspond_centrelines, py::arg("P1"), py::arg("P2"),
        py::arg("line1"), py::arg("line2"), py::arg("n_out"), py::arg("iterations"),
        "Two 2D centrelines (px) -> 3D centreline (n_out, 3) mm and partners (M1, 2) px.");
  m.def("tube_mesh", &tube_mesh, py::arg("centres"), py::arg("axes"), py::arg("n_around"),
        py::arg("caps"), py::arg("reference"),
        "Centres (N, 3) mm, ellipses (N, 3) (a mm, b mm, theta rad), reference direction (3,)\n"
        "(zeros: least-aligned axis) -> vertices, int64 faces.");
  m.def("sample_bilinear", &sample_bilinear, py::arg("maps"), py::arg("uv"), py::arg("width"),
        py::arg("height"), py::arg("threads") = 0,
        "Bilinear samples of (H, W, C) maps at image pixels uv (N, 2) -> (N, sum C); at most\n"
        "threads worker threads (<= 0: the process's CPU affinity count).");
  m.def("rasterise_silhouette", &rasterise_silhouette, py::arg("P"), py::arg("vertices"),
        py::arg("faces"), py::arg("width"), py::arg("height"),
        "Binary silhouette (height, width) uint8 of a triangle mesh projected with P.");
  m.def("tube_path_lengths", &tube_path_lengths, py::arg("P"), py::arg("centres"),
        py::arg("semi_axes"), py::arg("major_dir"), py::arg("width"), py::arg("height"),
        py::arg("supersample"), py::arg("threads") = 0,
        "Path length (mm) of each pixel's ray inside a tube of elliptic cylinder segments -> "
        "(height, width); at most threads worker threads (<= 0: the CPU affinity count).");
}
