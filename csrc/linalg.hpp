// Small fixed-size linear algebra shared by the kernels.
//
// Every expression here is written in the same order as its numpy twin
// (python/angio_deploy/kernels/_numpy/) so that results agree bit for bit; the build
// disables FMA contraction for the same reason. Do not "simplify" the arithmetic.
#pragma once

#include <cmath>

namespace angio {

// Row-major 3x3 matrix.
struct Mat3 {
  double m[9];
  double operator()(int r, int c) const { return m[r * 3 + c]; }
};

struct Vec3 {
  double x, y, z;
};

// Inverse by the adjugate (twin: projection.inverse3).
inline Mat3 inverse3(const Mat3& M) {
  const double a = M(0, 0), b = M(0, 1), c = M(0, 2);
  const double d = M(1, 0), e = M(1, 1), f = M(1, 2);
  const double g = M(2, 0), h = M(2, 1), i = M(2, 2);
  const double A = e * i - f * h;
  const double B = f * g - d * i;
  const double C = d * h - e * g;
  const double det = a * A + b * B + c * C;
  Mat3 inv;
  inv.m[0] = A / det;
  inv.m[3] = B / det;
  inv.m[6] = C / det;
  inv.m[1] = (c * h - b * i) / det;
  inv.m[4] = (a * i - c * g) / det;
  inv.m[7] = (b * g - a * h) / det;
  inv.m[2] = (b * f - c * e) / det;
  inv.m[5] = (c * d - a * f) / det;
  inv.m[8] = (a * e - b * d) / det;
  return inv;
}

// Solve N x = r by the adjugate without forming the inverse (twin: triangulation._solve3).
inline Vec3 solve3(const double* N, const double* r) {
  const double a = N[0], b = N[1], c = N[2];
  const double d = N[3], e = N[4], f = N[5];
  const double g = N[6], h = N[7], i = N[8];
  const double A = e * i - f * h;
  const double B = f * g - d * i;
  const double C = d * h - e * g;
  const double det = a * A + b * B + c * C;
  const double r0 = r[0], r1 = r[1], r2 = r[2];
  return {(A * r0 + (c * h - b * i) * r1 + (b * f - c * e) * r2) / det,
          (B * r0 + (a * i - c * g) * r1 + (c * d - a * f) * r2) / det,
          (C * r0 + (b * g - a * h) * r1 + (a * e - b * d) * r2) / det};
}

inline double dot(const Vec3& a, const Vec3& b) { return a.x * b.x + a.y * b.y + a.z * b.z; }

inline Vec3 normalise(double x, double y, double z) {
  const double n = std::sqrt(x * x + y * y + z * z);
  return {x / n, y / n, z / n};
}

// The world axis least aligned with t (first on ties), made orthogonal to t and
// normalised: the start normal of tube frames (twin: tube._initial_normal).
inline Vec3 initial_normal(const Vec3& t) {
  const double ax[3] = {std::fabs(t.x), std::fabs(t.y), std::fabs(t.z)};
  int k = 0;
  if (ax[1] < ax[k]) k = 1;
  if (ax[2] < ax[k]) k = 2;
  double e[3] = {0.0, 0.0, 0.0};
  e[k] = 1.0;
  const double d = e[0] * t.x + e[1] * t.y + e[2] * t.z;
  return normalise(e[0] - d * t.x, e[1] - d * t.y, e[2] - d * t.z);
}

inline Vec3 matvec3(const Mat3& M, double x, double y, double z) {
  return {M(0, 0) * x + M(0, 1) * y + M(0, 2) * z, M(1, 0) * x + M(1, 1) * y + M(1, 2) * z,
          M(2, 0) * x + M(2, 1) * y + M(2, 2) * z};
}

// Left 3x3 block of a row-major 3x4 projection matrix.
inline Mat3 left3(const double* P) {
  return {{P[0], P[1], P[2], P[4], P[5], P[6], P[8], P[9], P[10]}};
}

// Source position C = -M^-1 p4 with M = P[:, :3] (twin: projection.camera_centre).
inline Vec3 camera_centre(const double* P) {
  const Mat3 Minv = inverse3(left3(P));
  const Vec3 c = matvec3(Minv, P[3], P[7], P[11]);
  return {-c.x, -c.y, -c.z};
}

struct Projected {
  double u, v, w;
};

// Pinhole projection of one point; u, v are not yet masked for w <= 0
// (twin: projection._project_one, explicit left-to-right sums).
inline Projected project_one(const double* P, double x, double y, double z) {
  const double a = P[0] * x + P[1] * y + P[2] * z + P[3];
  const double b = P[4] * x + P[5] * y + P[6] * z + P[7];
  const double w = P[8] * x + P[9] * y + P[10] * z + P[11];
  return {a / w, b / w, w};
}

}  // namespace angio
