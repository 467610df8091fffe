// Bilinear sampling of channel-last feature maps at image pixels; twin: _numpy/sampling.py.
// grid_sample convention (align_corners=False, border padding): x = (u + 0.5) Wk / W - 0.5.
#include <algorithm>
#include <cmath>

#include "kernels.hpp"
#include "parallel.hpp"

namespace angio {
namespace {

// Integer corners and float64 weights of one sample along one axis.
struct Axis {
  index_t i0, i1;
  double f, g;  // weight of i1 and of i0
};

inline Axis axis(double p, index_t map_size, index_t image_size) {
  double x = (p + 0.5) * static_cast<double>(map_size) / static_cast<double>(image_size) - 0.5;
  x = std::min(std::max(x, 0.0), static_cast<double>(map_size - 1));
  const index_t i0 = static_cast<index_t>(std::floor(x));
  const index_t i1 = std::min(i0 + 1, map_size - 1);
  const double f = x - static_cast<double>(i0);
  return {i0, i1, f, 1.0 - f};
}

// The per-channel blend; a plain loop over contiguous channels that the compiler
// vectorises (no FMA contraction, so each lane rounds exactly as numpy does).
template <typename T>
inline void blend(const T* __restrict a, const T* __restrict b, const T* __restrict c,
                  const T* __restrict d, T w00, T w01, T w10, T w11, index_t channels,
                  T* __restrict out) {
  for (index_t k = 0; k < channels; ++k)
    out[k] = w00 * a[k] + w01 * b[k] + w10 * c[k] + w11 * d[k];
}

template <typename T>
inline void sample_rows(const std::vector<MapView<T>>& maps, const double* uv, index_t begin,
                        index_t end, index_t image_w, index_t image_h, index_t total, T* out) {
  for (index_t p = begin; p < end; ++p) {
    T* row = out + p * total;
    const double u = uv[2 * p], v = uv[2 * p + 1];
    if (!(std::isfinite(u) && std::isfinite(v))) {
      std::fill(row, row + total, T(0));
      continue;
    }
    for (const auto& m : maps) {
      const Axis ax = axis(u, m.width, image_w);
      const Axis ay = axis(v, m.height, image_h);
      // Weights are formed in float64 and then cast, as the twin does.
      const T w00 = static_cast<T>(ay.g * ax.g);
      const T w01 = static_cast<T>(ay.g * ax.f);
      const T w10 = static_cast<T>(ay.f * ax.g);
      const T w11 = static_cast<T>(ay.f * ax.f);
      const index_t C = m.channels;
      const T* r0 = m.data + ay.i0 * m.width * C;
      const T* r1 = m.data + ay.i1 * m.width * C;
      blend(r0 + ax.i0 * C, r0 + ax.i1 * C, r1 + ax.i0 * C, r1 + ax.i1 * C, w00, w01, w10, w11,
            C, row);
      row += C;
    }
  }
}

// Portable wheels target baseline x86-64 (SSE2); on Linux the blend loops are also built
// for AVX2 and chosen at load time. Elementwise IEEE products and sums round the same in
// any vector width, and FMA stays off, so both clones give identical results.
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__)
#define ANGIO_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define ANGIO_SIMD_CLONES
#endif

ANGIO_SIMD_CLONES void sample_rows_dispatch(const std::vector<MapView<float>>& maps,
                                            const double* uv, index_t begin, index_t end,
                                            index_t image_w, index_t image_h, index_t total,
                                            float* out) {
  sample_rows(maps, uv, begin, end, image_w, image_h, total, out);
}

ANGIO_SIMD_CLONES void sample_rows_dispatch(const std::vector<MapView<double>>& maps,
                                            const double* uv, index_t begin, index_t end,
                                            index_t image_w, index_t image_h, index_t total,
                                            double* out) {
  sample_rows(maps, uv, begin, end, image_w, image_h, total, out);
}

}  // namespace

template <typename T>
void sample_bilinear(const std::vector<MapView<T>>& maps, const double* uv, index_t n,
                     index_t image_w, index_t image_h, T* out, index_t threads) {
  index_t total = 0;
  for (const auto& m : maps) total += m.channels;
  // Rows are independent; split only when each thread gets ~250k output values, the
  // point where a thread start (~20 us) is clearly repaid.
  const index_t min_rows = std::max<index_t>(64, 250000 / std::max<index_t>(total, 1));
  parallel_for(n, min_rows, threads, [&](index_t begin, index_t end) {
    sample_rows_dispatch(maps, uv, begin, end, image_w, image_h, total, out);
  });
}

template void sample_bilinear<float>(const std::vector<MapView<float>>&, const double*, index_t,
                                     index_t, index_t, float*, index_t);
template void sample_bilinear<double>(const std::vector<MapView<double>>&, const double*,
                                      index_t, index_t, index_t, double*, index_t);

}  // namespace angio
