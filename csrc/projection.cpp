// Pinhole projection and back-projection (GEOMETRY.md); twin: _numpy/projection.py.
#include <cmath>
#include <limits>

#include "kernels.hpp"
#include "linalg.hpp"

namespace angio {

void project(const double* P, index_t n_views, const double* X, index_t n, double* out) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (index_t k = 0; k < n_views; ++k) {
    const double* Pk = P + 12 * k;
    double* o = out + 2 * n * k;
    for (index_t i = 0; i < n; ++i) {
      const Projected p = project_one(Pk, X[3 * i], X[3 * i + 1], X[3 * i + 2]);
      // !(w > 0) rather than w <= 0 so that a NaN depth also gives NaN.
      const bool front = p.w > 0.0;
      o[2 * i] = front ? p.u : nan;
      o[2 * i + 1] = front ? p.v : nan;
    }
  }
}

void backproject(const double* P, const double* uv, index_t n, double* origins, double* dirs) {
  const Mat3 Minv = inverse3(left3(P));
  const Vec3 C = camera_centre(P);
  for (index_t i = 0; i < n; ++i) {
    const Vec3 d = matvec3(Minv, uv[2 * i], uv[2 * i + 1], 1.0);
    const double nrm = std::sqrt(d.x * d.x + d.y * d.y + d.z * d.z);
    dirs[3 * i] = d.x / nrm;
    dirs[3 * i + 1] = d.y / nrm;
    dirs[3 * i + 2] = d.z / nrm;
    origins[3 * i] = C.x;
    origins[3 * i + 1] = C.y;
    origins[3 * i + 2] = C.z;
  }
}

}  // namespace angio
