// X-ray path lengths through a tube of clipped elliptic-cylinder segments, per pixel;
// twin: _numpy/pathlength.py (the module text there is the full specification). Per
// segment: a local frame (major m, minor n, axis w), two end planes whose normals bisect
// the adjacent segment directions, and a conservative pixel bound (convex hull of the
// projected end-cap parallelograms); per ray inside it: a closed-form chord (cylinder
// quadratic near the midpoint, intersected with the end half-spaces and the half-line in
// front of the source). Pixels accumulate segments in ascending order and, within a
// segment, sub-rays j-major; threads take interleaved image rows, so the result is the
// same for any thread count.
#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "kernels.hpp"
#include "linalg.hpp"
#include "parallel.hpp"

namespace angio {
namespace {

constexpr double kJointMinNorm = 1e-3;  // twin: JOINT_MIN_NORM
constexpr double kMajorMinNorm = 1e-9;  // twin: MAJOR_MIN_NORM

// A ray is X(tau) = C + tau D(u, v), D = M^-1 (u, v, 1) (unnormalised: tau is the
// projective depth). In the segment frame (m, n, w) with origin at the midpoint, D and the
// ray point at the midpoint's depth tau_ref are affine in u along a sub-ray row:
// D = K1 u + (K2 v + K3), o = (C - c_mid) + tau_ref D. Everything per ray is then affine
// in u except the quadratic's square root and three quotients.
struct Segment {
  Vec3 K1, K2, K3;          // columns of M^-1 in the local frame
  Vec3 e;                   // source - midpoint, local
  double tref;              // projective depth of the midpoint
  double ia, ib;            // 1 / a, 1 / b
  Vec3 n0, n1;              // end-plane normals in the local frame
  double h;                 // half length
  // u-slopes: (px, py, qx, qy) = scaled o and D; (f0, g0, f1, g1) end-plane terms.
  double Px1, Py1, Qx1, Qy1, F01, G01, F11, G11;
  bool whole;               // evaluate every pixel (segment straddles the source plane)
  int nh;                   // convex hull (counter-clockwise) of the projected bound
  double hu[16], hv[16];
  index_t y0, y1;           // rows to visit, inclusive
  double box_w;             // width of the projected bound (px), for the thread split
};

struct ValidSegment {
  index_t k;
  double L;
  Vec3 w;
};

struct Pt {
  double u, v;
};

inline double cross(const Pt& o, const Pt& a, const Pt& b) {
  return (a.u - o.u) * (b.v - o.v) - (a.v - o.v) * (b.u - o.u);
}

// Convex hull by Andrew's monotone chain, collinear points dropped (twin: _hull).
int convex_hull(Pt* pts, int n, Pt* hull) {
  std::sort(pts, pts + n,
            [](const Pt& a, const Pt& b) { return a.u < b.u || (a.u == b.u && a.v < b.v); });
  Pt lower[8], upper[8];
  int nl = 0, nu = 0;
  for (int i = 0; i < n; ++i) {
    while (nl >= 2 && cross(lower[nl - 2], lower[nl - 1], pts[i]) <= 0.0) --nl;
    lower[nl++] = pts[i];
  }
  for (int i = n - 1; i >= 0; --i) {
    while (nu >= 2 && cross(upper[nu - 2], upper[nu - 1], pts[i]) <= 0.0) --nu;
    upper[nu++] = pts[i];
  }
  int nh = 0;
  for (int i = 0; i + 1 < nl; ++i) hull[nh++] = lower[i];
  for (int i = 0; i + 1 < nu; ++i) hull[nh++] = upper[i];
  return nh;
}

inline void widen(double x, bool& any, double& lo, double& hi) {
  if (!any) {
    lo = hi = x;
    any = true;
  } else {
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
}

// u-extent of the hull within the band va <= v <= vb: its vertices inside the band and
// its edges' crossings of the two band lines (twin: _band_extent).
bool band_extent(const Segment& s, double va, double vb, double& lo, double& hi) {
  bool any = false;
  for (int k = 0; k < s.nh; ++k) {
    const int q = k + 1 < s.nh ? k + 1 : 0;
    const double pu = s.hu[k], pv = s.hv[k], qu = s.hu[q], qv = s.hv[q];
    if (pv >= va && pv <= vb) widen(pu, any, lo, hi);
    if (pv == qv) continue;
    const double lines[2] = {va, vb};
    for (int e = 0; e < (va == vb ? 1 : 2); ++e) {
      const double c = lines[e];
      if ((pv <= c && c <= qv) || (qv <= c && c <= pv))
        widen(pu + (c - pv) * (qu - pu) / (qv - pv), any, lo, hi);
    }
  }
  return any;
}

// Per-segment constants, only for segments that can reach the image (twin: _segments).
// The clipped segment is the convex hull of its two end caps (plane sections of the
// cylinder); each cap lies in the parallelogram c +- U +- V of its conjugate semi-axes
// U = a (m - (N.m / N.w) w), V = b (n - (N.n / N.w) w), so the projected hull of those 8
// corners bounds the pixels the segment can touch.
std::vector<Segment> build_segments(const double* P, const double* c, const double* ax,
                                    const double* md, index_t m_pts, index_t width,
                                    index_t height, double off_first, double off_last) {
  const Vec3 C = camera_centre(P);
  const Mat3 Minv = inverse3(left3(P));
  const Vec3 col0{Minv(0, 0), Minv(1, 0), Minv(2, 0)};
  const Vec3 col1{Minv(0, 1), Minv(1, 1), Minv(2, 1)};
  const Vec3 col2{Minv(0, 2), Minv(1, 2), Minv(2, 2)};
  std::vector<ValidSegment> valid;
  for (index_t k = 0; k + 1 < m_pts; ++k) {
    const double ex = c[3 * k + 3] - c[3 * k];
    const double ey = c[3 * k + 4] - c[3 * k + 1];
    const double ez = c[3 * k + 5] - c[3 * k + 2];
    const double L = std::sqrt(ex * ex + ey * ey + ez * ez);
    if (L > 0.0) valid.push_back({k, L, {ex / L, ey / L, ez / L}});
  }
  const size_t nv = valid.size();
  // joints[j] is the plane between valid segments j - 1 and j; has[j] false: own w.
  std::vector<Vec3> joints(nv + 1);
  std::vector<char> has(nv + 1, 0);
  for (size_t j = 1; j < nv; ++j) {
    const Vec3 &wa = valid[j - 1].w, &wb = valid[j].w;
    const double sx = wa.x + wb.x, sy = wa.y + wb.y, sz = wa.z + wb.z;
    const double sn = std::sqrt(sx * sx + sy * sy + sz * sz);
    if (sn > kJointMinNorm) {
      joints[j] = {sx / sn, sy / sn, sz / sn};
      has[j] = 1;
    }
  }

  const double wmax = static_cast<double>(width - 1), hmax = static_cast<double>(height - 1);
  std::vector<Segment> out;
  out.reserve(nv);
  for (size_t j = 0; j < nv; ++j) {
    const index_t k = valid[j].k;
    const Vec3 w = valid[j].w;
    const Vec3 N0 = has[j] ? joints[j] : w;
    const Vec3 N1 = has[j + 1] ? joints[j + 1] : w;
    const double a = (ax[2 * k] + ax[2 * k + 2]) * 0.5;
    const double b = (ax[2 * k + 1] + ax[2 * k + 3]) * 0.5;
    const Vec3 m0{md[3 * k], md[3 * k + 1], md[3 * k + 2]};
    const Vec3 m1{md[3 * k + 3], md[3 * k + 4], md[3 * k + 5]};
    const double sg = dot(m0, m1) < 0.0 ? -1.0 : 1.0;
    const double sx = m0.x + sg * m1.x, sy = m0.y + sg * m1.y, sz = m0.z + sg * m1.z;
    const double dp = sx * w.x + sy * w.y + sz * w.z;
    const double px = sx - dp * w.x, py = sy - dp * w.y, pz = sz - dp * w.z;
    const double pn = std::sqrt(px * px + py * py + pz * pz);
    const Vec3 m = pn > kMajorMinNorm ? Vec3{px / pn, py / pn, pz / pn} : initial_normal(w);
    const Vec3 n{w.y * m.z - w.z * m.y, w.z * m.x - w.x * m.z, w.x * m.y - w.y * m.x};
    const Vec3 c0{c[3 * k], c[3 * k + 1], c[3 * k + 2]};
    const Vec3 c1{c[3 * k + 3], c[3 * k + 4], c[3 * k + 5]};
    const Vec3 cm{(c0.x + c1.x) * 0.5, (c0.y + c1.y) * 0.5, (c0.z + c1.z) * 0.5};
    const Vec3 e{C.x - cm.x, C.y - cm.y, C.z - cm.z};
    Segment s;
    s.K1 = {dot(col0, m), dot(col0, n), dot(col0, w)};
    s.K2 = {dot(col1, m), dot(col1, n), dot(col1, w)};
    s.K3 = {dot(col2, m), dot(col2, n), dot(col2, w)};
    s.e = {dot(e, m), dot(e, n), dot(e, w)};
    s.tref = P[8] * cm.x + P[9] * cm.y + P[10] * cm.z + P[11];
    s.ia = 1.0 / a;
    s.ib = 1.0 / b;
    s.n0 = {dot(N0, m), dot(N0, n), dot(N0, w)};
    s.n1 = {dot(N1, m), dot(N1, n), dot(N1, w)};
    s.h = 0.5 * valid[j].L;
    const Vec3 O1{s.tref * s.K1.x, s.tref * s.K1.y, s.tref * s.K1.z};
    s.Px1 = O1.x * s.ia;
    s.Py1 = O1.y * s.ib;
    s.Qx1 = s.K1.x * s.ia;
    s.Qy1 = s.K1.y * s.ib;
    s.F01 = dot(O1, s.n0);
    s.G01 = dot(s.K1, s.n0);
    s.F11 = dot(O1, s.n1);
    s.G11 = dot(s.K1, s.n1);

    Pt pts[8];
    int n_front = 0;
    bool finite = true;
    for (int e = 0; e < 2; ++e) {
      const Vec3& ce = e ? c1 : c0;
      const Vec3& ne = e ? s.n1 : s.n0;
      const double ku = ne.x / ne.z, kv = ne.y / ne.z;
      const Vec3 U{a * (m.x - ku * w.x), a * (m.y - ku * w.y), a * (m.z - ku * w.z)};
      const Vec3 V{b * (n.x - kv * w.x), b * (n.y - kv * w.y), b * (n.z - kv * w.z)};
      for (int i = 0; i < 4; ++i) {
        const double su = i < 2 ? -1.0 : 1.0, sv = (i & 1) ? 1.0 : -1.0;
        const Projected q = project_one(P, ce.x + su * U.x + sv * V.x,
                                        ce.y + su * U.y + sv * V.y, ce.z + su * U.z + sv * V.z);
        n_front += q.w > 0.0;
        finite = finite && std::isfinite(q.u) && std::isfinite(q.v);
        pts[4 * e + i] = {q.u, q.v};
      }
    }
    if (n_front == 0) continue;
    s.whole = !(n_front == 8 && finite);
    double y0 = 0.0, y1 = hmax;
    s.box_w = wmax;
    if (!s.whole) {
      Pt hull[16] = {};
      s.nh = convex_hull(pts, 8, hull);
      double umin = hull[0].u, umax = hull[0].u, vmin = hull[0].v, vmax = hull[0].v;
      for (int i = 0; i < s.nh; ++i) {
        s.hu[i] = hull[i].u;
        s.hv[i] = hull[i].v;
        umin = std::min(umin, hull[i].u);
        umax = std::max(umax, hull[i].u);
        vmin = std::min(vmin, hull[i].v);
        vmax = std::max(vmax, hull[i].v);
      }
      // Bounds stay in double until clamped: projected coordinates may be huge.
      if (std::ceil(umin - off_last) > wmax || std::floor(umax - off_first) < 0.0) continue;
      s.box_w = std::min(wmax, umax - umin);
      y0 = std::max(0.0, std::ceil(vmin - off_last));
      y1 = std::min(hmax, std::floor(vmax - off_first));
      if (y0 > y1) continue;
    }
    s.y0 = static_cast<index_t>(y0);
    s.y1 = static_cast<index_t>(y1);
    out.push_back(s);
  }
  return out;
}

// Branch-free selects (twin: np.where, _max, _min), so the row loop vectorises.
inline double sel(bool c, double a, double b) { return c ? a : b; }
inline double maxd(double a, double b) { return a < b ? b : a; }  // std::max
inline double mind(double a, double b) { return b < a ? b : a; }  // std::min

// Adds to row[x0 + k], k < count, the length (mm) inside segment s of the sub-ray through
// (x0 + k + off_u, v) (twin: _add_chords, written branch-free like it, so that the loop
// vectorises; built for AVX2 too, chosen at load time: every lane rounds exactly as the
// scalar code, no FMA). sigma = tau - tau_ref; the chord is (sigma_hi - sigma_lo) |D|.
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__)
#define ANGIO_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define ANGIO_SIMD_CLONES
#endif
ANGIO_SIMD_CLONES void add_chords(const Segment& s, double v, double off_u, index_t x0,
                                  int count, double* row) {
  // Row constants: the values at u = 0 (twin: the same expressions on row arrays).
  const double E0x = s.K2.x * v + s.K3.x, E0y = s.K2.y * v + s.K3.y;
  const double E0z = s.K2.z * v + s.K3.z;
  const double O0x = s.e.x + s.tref * E0x, O0y = s.e.y + s.tref * E0y;
  const double O0z = s.e.z + s.tref * E0z;
  const double Px0 = O0x * s.ia, Py0 = O0y * s.ib, Qx0 = E0x * s.ia, Qy0 = E0y * s.ib;
  const double F00 = O0x * s.n0.x + O0y * s.n0.y + (O0z + s.h) * s.n0.z;
  const double G00 = E0x * s.n0.x + E0y * s.n0.y + E0z * s.n0.z;
  const double F10 = O0x * s.n1.x + O0y * s.n1.y + (O0z - s.h) * s.n1.z;
  const double G10 = E0x * s.n1.x + E0y * s.n1.y + E0z * s.n1.z;
  // Local copies: the compiler need not reload them after each store to row.
  const double K1x = s.K1.x, K1y = s.K1.y, K1z = s.K1.z;
  const double Px1 = s.Px1, Py1 = s.Py1, Qx1 = s.Qx1, Qy1 = s.Qy1;
  const double F01 = s.F01, G01 = s.G01, F11 = s.F11, G11 = s.G11;
  const double lo_src = -s.tref;  // tau >= 0: in front of the source
  const double inf = std::numeric_limits<double>::infinity();
  const double fx0 = static_cast<double>(x0);
  double* r = row + x0;
  // Whole blocks of kLanes pixels (the last one padded, its extra lanes discarded): rows
  // are short, and a scalar remainder loop would run for much of the work.
  constexpr int kLanes = 8;
  for (int k0 = 0; k0 < count; k0 += kLanes) {
    double chords[kLanes];
    for (int l = 0; l < kLanes; ++l) {
      const double u = (fx0 + static_cast<double>(k0 + l)) + off_u;
      const double dx = K1x * u + E0x, dy = K1y * u + E0y, dz = K1z * u + E0z;
      const double px = Px1 * u + Px0, py = Py1 * u + Py0;
      const double qx = Qx1 * u + Qx0, qy = Qy1 * u + Qy0;
      const double f0 = F01 * u + F00, g0 = G01 * u + G00;
      const double f1 = F11 * u + F10, g1 = G11 * u + G10;
      const double A = qx * qx + qy * qy;
      const double B = px * qx + py * qy;
      const double Cc = px * px + py * py - 1.0;
      const double disc = B * B - A * Cc;
      // Bitwise & and | (no short-circuit branches); every quotient is computed and then
      // selected (a conditional division would keep a branch).
      const bool pos = A > 0.0;
      bool ok = (pos & (disc > 0.0)) | (!pos & (Cc < 0.0));
      const double sq = std::sqrt(sel(pos & ok, disc, 0.0));
      const double iA = 1.0 / sel(pos, A, 1.0);
      double lo = sel(pos, maxd(lo_src, (-B - sq) * iA), lo_src);
      double hi = sel(pos, (-B + sq) * iA, inf);
      const double q0 = -f0 / sel(g0 == 0.0, 1.0, g0);
      lo = sel(g0 > 0.0, maxd(lo, q0), lo);
      hi = sel(g0 < 0.0, mind(hi, q0), hi);
      ok = ok & !((g0 == 0.0) & (f0 <= 0.0));  // in the start plane: the previous segment's
      const double q1 = -f1 / sel(g1 == 0.0, 1.0, g1);
      hi = sel(g1 > 0.0, mind(hi, q1), hi);
      lo = sel(g1 < 0.0, maxd(lo, q1), lo);
      ok = ok & !((g1 == 0.0) & (f1 > 0.0));
      const double nD = std::sqrt(dx * dx + dy * dy + dz * dz);
      chords[l] = sel(ok & (hi > lo), (hi - lo) * nD, 0.0);
    }
    const int n_valid = std::min(kLanes, count - k0);
    for (int l = 0; l < n_valid; ++l) r[k0 + l] += chords[l];
  }
}

}  // namespace

void tube_path_lengths(const double* P, const double* centres, const double* semi_axes,
                       const double* major_dir, index_t m, index_t width, index_t height,
                       index_t supersample, double* out, index_t threads) {
  std::fill(out, out + width * height, 0.0);
  const index_t ss = supersample;
  std::vector<double> offs(static_cast<size_t>(ss));
  for (index_t i = 0; i < ss; ++i) offs[i] = (static_cast<double>(i) + 0.5) / ss - 0.5;
  const double off_first = offs.front(), off_last = offs.back();
  const std::vector<Segment> segs =
      build_segments(P, centres, semi_axes, major_dir, m, width, height, off_first, off_last);
  const double wmax = static_cast<double>(width - 1);

  // Threads take interleaved rows. A thread start costs ~50 us here and a vectorised ray
  // ~15 ns, so split only above ~200k box pixels (bounding boxes, about twice the rays).
  double work = 0.0;
  for (const Segment& s : segs)
    work += static_cast<double>((s.y1 - s.y0 + 1) * ss * ss) * (s.box_w + 1.0);
  const index_t limit = thread_limit(threads);
  const index_t by_work = static_cast<index_t>(std::min(work / 2e5, 8.0));
  const index_t n_threads = std::max<index_t>(1, std::min<index_t>({limit, 8, by_work}));

  auto render = [&](index_t t) {
    for (const Segment& s : segs) {
      const index_t first = s.y0 + ((t - s.y0 % n_threads) + n_threads) % n_threads;
      for (index_t py = first; py <= s.y1; py += n_threads) {
        const double fy = static_cast<double>(py);
        double bx0 = 0.0, bx1 = wmax;
        if (!s.whole) {
          double lo = 0.0, hi = 0.0;
          if (!band_extent(s, fy + off_first, fy + off_last, lo, hi)) continue;
          bx0 = std::max(0.0, std::ceil(lo - off_last));
          bx1 = std::min(wmax, std::floor(hi - off_first));
          if (bx0 > bx1) continue;
        }
        double* row = out + py * width;
        const index_t x0 = static_cast<index_t>(bx0);
        const int count = static_cast<int>(static_cast<index_t>(bx1) - x0 + 1);
        // Per pixel: sub-rays j-major, i-minor, added one by one (twin: the same order).
        for (index_t j = 0; j < ss; ++j)
          for (index_t i = 0; i < ss; ++i)
            add_chords(s, fy + offs[j], offs[i], x0, count, row);
      }
    }
  };
  parallel_for(n_threads, 1, n_threads, [&](index_t begin, index_t end) {
    for (index_t t = begin; t < end; ++t) render(t);
  });
  if (ss > 1) {
    const double n_sub = static_cast<double>(ss * ss);
    for (index_t p = 0; p < width * height; ++p) out[p] /= n_sub;
  }
}

}  // namespace angio
