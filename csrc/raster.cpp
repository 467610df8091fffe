// Binary silhouette rasterisation; twin: _numpy/raster.py. A pixel is inside when its
// centre satisfies all three edge functions >= 0 of the counter-clockwise triangle.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.hpp"
#include "linalg.hpp"

namespace angio {

void rasterise_silhouette(const double* P, const double* vertices, index_t nv,
                          const index_t* faces, index_t nf, index_t width, index_t height,
                          std::uint8_t* mask) {
  std::fill(mask, mask + width * height, std::uint8_t(0));
  std::vector<double> pu(static_cast<size_t>(nv)), pv(static_cast<size_t>(nv));
  std::vector<char> ok(static_cast<size_t>(nv));
  for (index_t i = 0; i < nv; ++i) {
    const Projected p = project_one(P, vertices[3 * i], vertices[3 * i + 1], vertices[3 * i + 2]);
    pu[i] = p.u;
    pv[i] = p.v;
    ok[i] = p.w > 0.0 && std::isfinite(p.u) && std::isfinite(p.v);
  }
  // Bounds stay in double until clamped: projected coordinates may be huge.
  const double wmax = static_cast<double>(width - 1), hmax = static_cast<double>(height - 1);
  for (index_t t = 0; t < nf; ++t) {
    const index_t f0 = faces[3 * t], f1 = faces[3 * t + 1], f2 = faces[3 * t + 2];
    if (!(ok[f0] && ok[f1] && ok[f2])) continue;
    const double x0 = pu[f0], y0 = pv[f0];
    double x1 = pu[f1], y1 = pv[f1];
    double x2 = pu[f2], y2 = pv[f2];
    const double area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0);
    if (area == 0.0) continue;
    if (area < 0.0) {
      std::swap(x1, x2);
      std::swap(y1, y2);
    }
    const double bx0 = std::max(0.0, std::ceil(std::min({x0, x1, x2})));
    const double bx1 = std::min(wmax, std::floor(std::max({x0, x1, x2})));
    const double by0 = std::max(0.0, std::ceil(std::min({y0, y1, y2})));
    const double by1 = std::min(hmax, std::floor(std::max({y0, y1, y2})));
    if (bx0 > bx1 || by0 > by1) continue;
    const index_t xmin = static_cast<index_t>(bx0), xmax = static_cast<index_t>(bx1);
    const index_t ymin = static_cast<index_t>(by0), ymax = static_cast<index_t>(by1);
    // Each edge function keeps the twin's expression, e.g.
    // e0 = (x1 - x0) * (py - y0) - (y1 - y0) * (px - x0); only the factors that depend on
    // one coordinate are hoisted, which leaves every rounding step unchanged.
    const double a0 = x1 - x0, b0 = y1 - y0;
    const double a1 = x2 - x1, b1 = y2 - y1;
    const double a2 = x0 - x2, b2 = y0 - y2;
    for (index_t py = ymin; py <= ymax; ++py) {
      const double fy = static_cast<double>(py);
      const double r0 = a0 * (fy - y0), r1 = a1 * (fy - y1), r2 = a2 * (fy - y2);
      std::uint8_t* row = mask + py * width;
      for (index_t px = xmin; px <= xmax; ++px) {
        const double fx = static_cast<double>(px);
        const double e0 = r0 - b0 * (fx - x0);
        const double e1 = r1 - b1 * (fx - x1);
        const double e2 = r2 - b2 * (fx - x2);
        row[px] |= static_cast<std::uint8_t>(e0 >= 0.0 && e1 >= 0.0 && e2 >= 0.0);
      }
    }
  }
}

}  // namespace angio
