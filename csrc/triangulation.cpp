// Two-view triangulation: linear least squares then Gauss-Newton on the reprojection
// error; twin: _numpy/triangulation.py. Each point is independent, so the twin's
// vectorised (K, ...) stacks become one scalar pass per point with the same order.
#include <cmath>

#include "kernels.hpp"
#include "linalg.hpp"

namespace angio {
namespace {

// J^T J and J^T r accumulated row by row, starting from zero (twin: _normal_equations).
struct Normal {
  double N[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
  double r[3] = {0, 0, 0};
  void add(const double* row, double b) {
    for (int p = 0; p < 3; ++p) {
      for (int q = 0; q < 3; ++q) N[3 * p + q] = N[3 * p + q] + row[p] * row[q];
      r[p] = r[p] + row[p] * b;
    }
  }
};

Vec3 triangulate_one(const double* P1, const double* P2, const double* uv1, const double* uv2,
                     index_t iterations, double* err) {
  const double* Ps[2] = {P1, P2};
  const double* uvs[2] = {uv1, uv2};
  Normal lin;
  for (int view = 0; view < 2; ++view) {
    const double* P = Ps[view];
    for (int k = 0; k < 2; ++k) {
      const double c = uvs[view][k];
      const double row[3] = {c * P[8] - P[4 * k], c * P[9] - P[4 * k + 1],
                             c * P[10] - P[4 * k + 2]};
      lin.add(row, -(c * P[11] - P[4 * k + 3]));
    }
  }
  Vec3 X = solve3(lin.N, lin.r);

  for (index_t it = 0; it < iterations; ++it) {
    Normal gn;
    for (int view = 0; view < 2; ++view) {
      const double* P = Ps[view];
      const Projected p = project_one(P, X.x, X.y, X.z);
      for (int k = 0; k < 2; ++k) {
        const double pk = k == 0 ? p.u : p.v;
        const double row[3] = {(P[4 * k] - pk * P[8]) / p.w, (P[4 * k + 1] - pk * P[9]) / p.w,
                               (P[4 * k + 2] - pk * P[10]) / p.w};
        gn.add(row, -(pk - uvs[view][k]));
      }
    }
    const Vec3 dX = solve3(gn.N, gn.r);
    X = {X.x + dX.x, X.y + dX.y, X.z + dX.z};
  }

  double sq = 0.0;
  for (int view = 0; view < 2; ++view) {
    const Projected p = project_one(Ps[view], X.x, X.y, X.z);
    const double du = p.u - uvs[view][0];
    const double dv = p.v - uvs[view][1];
    sq = sq + du * du + dv * dv;
  }
  *err = std::sqrt(sq / 4.0);
  return X;
}

}  // namespace

void triangulate(const double* P1, const double* P2, const double* uv1, const double* uv2,
                 index_t n, index_t iterations, double* X, double* err) {
  for (index_t i = 0; i < n; ++i) {
    const Vec3 x = triangulate_one(P1, P2, uv1 + 2 * i, uv2 + 2 * i, iterations, err + i);
    X[3 * i] = x.x;
    X[3 * i + 1] = x.y;
    X[3 * i + 2] = x.z;
  }
}

}  // namespace angio
