// Centreline correspondence: epipolar dynamic programming, sub-pixel partners,
// triangulation and arc-length resampling; twin: _numpy/correspondence.py (the
// algorithm is described in its module docstring).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels.hpp"
#include "linalg.hpp"

namespace angio {
namespace {

constexpr double kMinCrossingSine = 0.2;

// F = [e2]x P2 P1^+ with P1^+ = P1^T (P1 P1^T)^-1 and e2 = P2 C1 (twin: fundamental).
Mat3 fundamental(const double* P1, const double* P2) {
  Mat3 G;
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) {
      double s = 0.0;
      for (int k = 0; k < 4; ++k) s = s + P1[4 * a + k] * P1[4 * b + k];
      G.m[3 * a + b] = s;
    }
  const Mat3 Gi = inverse3(G);
  double Pp[4][3];
  for (int a = 0; a < 4; ++a)
    for (int b = 0; b < 3; ++b) {
      double s = 0.0;
      for (int k = 0; k < 3; ++k) s = s + P1[4 * k + a] * Gi(k, b);
      Pp[a][b] = s;
    }
  const Vec3 C1 = camera_centre(P1);
  double e[3];
  for (int r = 0; r < 3; ++r)
    e[r] = P2[4 * r] * C1.x + P2[4 * r + 1] * C1.y + P2[4 * r + 2] * C1.z + P2[4 * r + 3];
  double Q[3][3];
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) {
      double s = 0.0;
      for (int k = 0; k < 4; ++k) s = s + P2[4 * a + k] * Pp[k][b];
      Q[a][b] = s;
    }
  Mat3 F;
  for (int b = 0; b < 3; ++b) {
    F.m[b] = e[1] * Q[2][b] - e[2] * Q[1][b];
    F.m[3 + b] = e[2] * Q[0][b] - e[0] * Q[2][b];
    F.m[6 + b] = e[0] * Q[1][b] - e[1] * Q[0][b];
  }
  return F;
}

// An epipolar line (l0, l1, l2) with its normal's length, precomputed once per point
// with exactly the twin's expressions (the twin recomputes them per pair, identically).
struct Line {
  double l0, l1, l2, norm;
};

// Epipolar line in view 2 of a view-1 pixel: F x.
Line line_in_2(const Mat3& F, double u, double v) {
  const double l0 = F(0, 0) * u + F(0, 1) * v + F(0, 2);
  const double l1 = F(1, 0) * u + F(1, 1) * v + F(1, 2);
  const double l2 = F(2, 0) * u + F(2, 1) * v + F(2, 2);
  return {l0, l1, l2, std::sqrt(l0 * l0 + l1 * l1)};
}

// Epipolar line in view 1 of a view-2 pixel: F^T x.
Line line_in_1(const Mat3& F, double u, double v) {
  const double m0 = F(0, 0) * u + F(1, 0) * v + F(2, 0);
  const double m1 = F(0, 1) * u + F(1, 1) * v + F(2, 1);
  const double m2 = F(0, 2) * u + F(1, 2) * v + F(2, 2);
  return {m0, m1, m2, std::sqrt(m0 * m0 + m1 * m1)};
}

// Minimum-cost monotone path over the symmetric epipolar cost, filled into the
// per-row matched range [j_lo[i], j_hi[i]] (twin: epipolar_cost + monotone_path).
// Steps: 0 diagonal, 1 up (i-1), 2 left (j-1); ties prefer diagonal, then up.
void match_ranges(const Mat3& F, const double* line1, index_t m1, const double* line2,
                  index_t m2, std::vector<index_t>& j_lo, std::vector<index_t>& j_hi) {
  std::vector<Line> in1(static_cast<size_t>(m2));
  for (index_t j = 0; j < m2; ++j) in1[j] = line_in_1(F, line2[2 * j], line2[2 * j + 1]);
  std::vector<double> cost(static_cast<size_t>(m2));
  std::vector<double> prev(static_cast<size_t>(m2)), cur(static_cast<size_t>(m2));
  std::vector<std::uint8_t> step(static_cast<size_t>(m1 * m2));

  for (index_t i = 0; i < m1; ++i) {
    const double u1 = line1[2 * i], v1 = line1[2 * i + 1];
    const Line l = line_in_2(F, u1, v1);
    for (index_t j = 0; j < m2; ++j) {
      const double u2 = line2[2 * j], v2 = line2[2 * j + 1];
      const Line& m = in1[j];
      const double d2 = std::fabs(l.l0 * u2 + l.l1 * v2 + l.l2) / l.norm;
      const double d1 = std::fabs(m.l0 * u1 + m.l1 * v1 + m.l2) / m.norm;
      cost[j] = 0.5 * (d2 + d1);
    }
    std::uint8_t* si = step.data() + i * m2;
    if (i == 0) {
      cur[0] = cost[0];
      si[0] = 0;
      for (index_t j = 1; j < m2; ++j) {
        cur[j] = cost[j] + cur[j - 1];
        si[j] = 2;
      }
    } else {
      cur[0] = cost[0] + prev[0];
      si[0] = 1;
      for (index_t j = 1; j < m2; ++j) {
        double best = prev[j - 1];
        std::uint8_t s = 0;
        if (prev[j] < best) {
          best = prev[j];
          s = 1;
        }
        if (cur[j - 1] < best) {
          best = cur[j - 1];
          s = 2;
        }
        cur[j] = cost[j] + best;
        si[j] = s;
      }
    }
    std::swap(prev, cur);
  }

  j_lo.assign(static_cast<size_t>(m1), m2);
  j_hi.assign(static_cast<size_t>(m1), -1);
  index_t i = m1 - 1, j = m2 - 1;
  while (true) {
    j_lo[i] = std::min(j_lo[i], j);
    j_hi[i] = std::max(j_hi[i], j);
    if (i == 0 && j == 0) break;
    const std::uint8_t s = step[i * m2 + j];
    if (s == 0) {
      --i;
      --j;
    } else if (s == 1) {
      --i;
    } else {
      --j;
    }
  }
}

// Sub-pixel partner on line 2 of view-1 pixel (u, v) (twin: _partner).
void partner(const Mat3& F, double u, double v, const double* line2, index_t m2, index_t j_lo,
             index_t j_hi, double* out) {
  double qu = 0.0, qv = 0.0;
  for (index_t j = j_lo; j <= j_hi; ++j) {
    qu = qu + line2[2 * j];
    qv = qv + line2[2 * j + 1];
  }
  const double cnt = static_cast<double>(j_hi - j_lo + 1);
  qu = qu / cnt;
  qv = qv / cnt;
  const Line l = line_in_2(F, u, v);
  double best_u = qu, best_v = qv;
  double best_d = std::numeric_limits<double>::infinity();
  // A pixel at the epipole has no epipolar line: keep the matched mean.
  if (l.norm > 0.0) {
    const index_t k_lo = std::max<index_t>(0, j_lo - 2);
    const index_t k_hi = std::min<index_t>(m2 - 2, j_hi + 1);
    for (index_t k = k_lo; k <= k_hi; ++k) {
      const double au = line2[2 * k], av = line2[2 * k + 1];
      const double bu = line2[2 * k + 2], bv = line2[2 * k + 3];
      const double sa = (l.l0 * au + l.l1 * av + l.l2) / l.norm;
      const double sb = (l.l0 * bu + l.l1 * bv + l.l2) / l.norm;
      if (sa * sb > 0.0 || sa == sb) continue;
      const double su = bu - au, sv = bv - av;
      const double seg = std::sqrt(su * su + sv * sv);
      // |sin| of the crossing angle = |signed distance change| / segment length.
      if (std::fabs(sa - sb) < kMinCrossingSine * seg) continue;
      const double t = sa / (sa - sb);
      const double pu = au + t * su;
      const double pv = av + t * sv;
      const double du = pu - qu, dv = pv - qv;
      const double d = du * du + dv * dv;
      if (d < best_d) {
        best_d = d;
        best_u = pu;
        best_v = pv;
      }
    }
  }
  out[0] = best_u;
  out[1] = best_v;
}

// n_out points (3D) evenly spaced in arc length along a k-point polyline
// (twin: resample_polyline).
void resample_polyline(const double* pts, index_t k, index_t n_out, double* out) {
  std::vector<double> s(static_cast<size_t>(k), 0.0);
  for (index_t a = 1; a < k; ++a) {
    double d = 0.0;
    for (int c = 0; c < 3; ++c) {
      const double diff = pts[3 * a + c] - pts[3 * (a - 1) + c];
      d = d + diff * diff;
    }
    s[a] = s[a - 1] + std::sqrt(d);
  }
  const double total = s[k - 1];
  index_t m = 0;
  for (index_t q = 0; q < n_out; ++q) {
    if (q == n_out - 1) {
      for (int c = 0; c < 3; ++c) out[3 * q + c] = pts[3 * (k - 1) + c];
      break;
    }
    const double t = total * static_cast<double>(q) / static_cast<double>(n_out - 1);
    while (m < k - 2 && s[m + 1] <= t) ++m;
    const double seg = s[m + 1] - s[m];
    const double f = seg > 0.0 ? (t - s[m]) / seg : 0.0;
    for (int c = 0; c < 3; ++c) {
      const double a = pts[3 * m + c];
      const double b = pts[3 * (m + 1) + c];
      out[3 * q + c] = a + f * (b - a);
    }
  }
}

}  // namespace

void correspond_centrelines(const double* P1, const double* P2, const double* line1,
                            index_t m1, const double* line2, index_t m2, index_t n_out,
                            index_t iterations, double* out, double* partners) {
  const Mat3 F = fundamental(P1, P2);
  std::vector<index_t> j_lo, j_hi;
  match_ranges(F, line1, m1, line2, m2, j_lo, j_hi);
  for (index_t i = 0; i < m1; ++i) {
    double* p = partners + 2 * i;
    if (i == 0) {
      p[0] = line2[0];
      p[1] = line2[1];
    } else if (i == m1 - 1) {
      p[0] = line2[2 * (m2 - 1)];
      p[1] = line2[2 * (m2 - 1) + 1];
    } else {
      partner(F, line1[2 * i], line1[2 * i + 1], line2, m2, j_lo[i], j_hi[i], p);
    }
  }
  std::vector<double> X(static_cast<size_t>(3 * m1)), err(static_cast<size_t>(m1));
  triangulate(P1, P2, line1, partners, m1, iterations, X.data(), err.data());
  resample_polyline(X.data(), m1, n_out, out);
}

}  // namespace angio
