// Tube meshing with rotation-minimising frames (double reflection, Wang et al. 2008);
// twin: _numpy/tube.py. Vertex i * n_around + j is ring i at angle 2 pi j / n_around.
#include <cmath>
#include <vector>

#include "kernels.hpp"
#include "linalg.hpp"

namespace angio {
namespace {

constexpr double kPi = 3.141592653589793;  // == math.pi
constexpr double kMinReferenceNorm = 1e-3;  // twin: MIN_REFERENCE_NORM

inline Vec3 centre(const double* c, index_t i) { return {c[3 * i], c[3 * i + 1], c[3 * i + 2]}; }

// Central-difference unit tangents (one-sided at the ends). Repeated centre points give
// no direction; such a tangent takes the previous one (the first valid one at the start,
// +z when the whole centreline is one point) (twin: _tangents).
std::vector<Vec3> tangents(const double* c, index_t n) {
  std::vector<Vec3> out(static_cast<size_t>(n));
  std::vector<bool> valid(static_cast<size_t>(n));
  Vec3 first{0.0, 0.0, 1.0};
  bool have_first = false;
  for (index_t i = 0; i < n; ++i) {
    const Vec3 a = centre(c, i > 0 ? i - 1 : i);
    const Vec3 b = centre(c, i < n - 1 ? i + 1 : i);
    const double x = b.x - a.x, y = b.y - a.y, z = b.z - a.z;
    const double nrm = std::sqrt(x * x + y * y + z * z);
    valid[i] = nrm > 0.0;
    if (valid[i]) {
      out[i] = {x / nrm, y / nrm, z / nrm};
      if (!have_first) {
        first = out[i];
        have_first = true;
      }
    }
  }
  Vec3 prev = first;
  for (index_t i = 0; i < n; ++i) {
    if (!valid[i]) out[i] = prev;
    prev = out[i];
  }
  return out;
}

// The first frame normal: the reference direction made orthogonal to the tangent, or the
// least-aligned world axis rule when there is no usable reference (twin: _start_normal).
Vec3 start_normal(const Vec3& t, const double* ref) {
  const double rx = ref[0], ry = ref[1], rz = ref[2];
  const double d = rx * t.x + ry * t.y + rz * t.z;
  const double x = rx - d * t.x, y = ry - d * t.y, z = rz - d * t.z;
  const double n = std::sqrt(x * x + y * y + z * z);
  if (n > kMinReferenceNorm) return {x / n, y / n, z / n};
  return initial_normal(t);
}

// Reflect x in the plane normal to v with |v|^2 = c: x - (2 / c * (v . x)) v.
inline Vec3 reflect(const Vec3& v, double c, const Vec3& x) {
  const double k = 2.0 / c * dot(v, x);
  return {x.x - k * v.x, x.y - k * v.y, x.z - k * v.z};
}

// Normals r_i of the rotation-minimising frames (twin: frames).
std::vector<Vec3> normals(const double* c, index_t n, const std::vector<Vec3>& T,
                          const double* ref) {
  std::vector<Vec3> R(static_cast<size_t>(n));
  R[0] = start_normal(T[0], ref);
  for (index_t i = 0; i + 1 < n; ++i) {
    const Vec3& r = R[i];
    const Vec3& t = T[i];
    const Vec3 ci = centre(c, i), cn = centre(c, i + 1);
    const Vec3 v1{cn.x - ci.x, cn.y - ci.y, cn.z - ci.z};
    const double c1 = dot(v1, v1);
    Vec3 rL = r, tL = t;
    if (c1 > 0.0) {
      rL = reflect(v1, c1, r);
      tL = reflect(v1, c1, t);
    }
    const Vec3& tn = T[i + 1];
    const Vec3 v2{tn.x - tL.x, tn.y - tL.y, tn.z - tL.z};
    const double c2 = dot(v2, v2);
    const Vec3 rn = c2 > 0.0 ? reflect(v2, c2, rL) : rL;
    // Re-orthonormalise against the tangent so rounding cannot drift.
    const double d = dot(rn, tn);
    R[i + 1] = normalise(rn.x - d * tn.x, rn.y - d * tn.y, rn.z - d * tn.z);
  }
  return R;
}

}  // namespace

void tube_vertices(const double* centres, const double* axes, index_t n, index_t n_around,
                   const double* reference, double* vertices) {
  const std::vector<Vec3> T = tangents(centres, n);
  const std::vector<Vec3> R = normals(centres, n, T, reference);
  std::vector<double> cph(static_cast<size_t>(n_around)), sph(static_cast<size_t>(n_around));
  for (index_t j = 0; j < n_around; ++j) {
    const double phi = 2.0 * kPi * static_cast<double>(j) / static_cast<double>(n_around);
    cph[j] = std::cos(phi);
    sph[j] = std::sin(phi);
  }
  for (index_t i = 0; i < n; ++i) {
    const Vec3& t = T[i];
    const Vec3& r = R[i];
    const Vec3 s{t.y * r.z - t.z * r.y, t.z * r.x - t.x * r.z, t.x * r.y - t.y * r.x};
    const double a = axes[3 * i], b = axes[3 * i + 1], th = axes[3 * i + 2];
    const double ct = std::cos(th), st = std::sin(th);
    const double cx = centres[3 * i], cy = centres[3 * i + 1], cz = centres[3 * i + 2];
    double* V = vertices + 3 * n_around * i;
    for (index_t j = 0; j < n_around; ++j) {
      // Vertex j lies on the ray at angle phi_j; its distance is the ellipse's polar radius.
      const double cd = cph[j] * ct + sph[j] * st;
      const double sd = sph[j] * ct - cph[j] * st;
      const double bc = b * cd;
      const double as = a * sd;
      const double rho = a * b / std::sqrt(bc * bc + as * as);
      const double x = rho * cph[j];
      const double y = rho * sph[j];
      V[3 * j] = cx + x * r.x + y * s.x;
      V[3 * j + 1] = cy + x * r.y + y * s.y;
      V[3 * j + 2] = cz + x * r.z + y * s.z;
    }
  }
}

index_t tube_face_count(index_t n_rings, index_t n_around, bool caps) {
  return 2 * (n_rings - 1) * n_around + (caps ? 2 * (n_around - 2) : 0);
}

void tube_faces(index_t n_rings, index_t n_around, bool caps, index_t* faces) {
  index_t* f = faces;
  auto put = [&f](index_t p, index_t q, index_t r) {
    f[0] = p;
    f[1] = q;
    f[2] = r;
    f += 3;
  };
  for (index_t i = 0; i + 1 < n_rings; ++i) {
    for (index_t j = 0; j < n_around; ++j) {
      const index_t jn = (j + 1) % n_around;
      const index_t a = i * n_around + j, b = i * n_around + jn;
      const index_t c = (i + 1) * n_around + j, d = (i + 1) * n_around + jn;
      put(a, b, c);
      put(b, d, c);
    }
  }
  if (caps) {
    // Fans from vertex 0 of each end ring, wound outward (no extra vertices).
    for (index_t j = 1; j < n_around - 1; ++j) put(0, j + 1, j);
    const index_t e = (n_rings - 1) * n_around;
    for (index_t j = 1; j < n_around - 1; ++j) put(e, e + j, e + j + 1);
  }
}

}  // namespace angio
