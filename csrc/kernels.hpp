// The geometry kernels on raw, C-contiguous buffers (no Python objects), so that the
// bindings can run them with the GIL released. Units: world mm, pixels (u = column,
// v = row, centres at integers), radians. Each function mirrors a numpy twin in
// python/angio_deploy/kernels/_numpy/ operation for operation.
#pragma once

#include <cstdint>
#include <vector>

namespace angio {

using index_t = std::int64_t;

// -- projection.cpp ---------------------------------------------------------------------
// P (n_views, 3, 4), X (n, 3) mm -> out (n_views, n, 2) px; NaN where w <= 0.
void project(const double* P, index_t n_views, const double* X, index_t n, double* out);
// Rays through pixels uv (n, 2): origins (n, 3) mm at the source, unit directions (n, 3).
void backproject(const double* P, const double* uv, index_t n, double* origins, double* dirs);

// -- triangulation.cpp ------------------------------------------------------------------
// Corresponding pixels uv1, uv2 (n, 2) -> X (n, 3) mm and RMS reprojection error (n,) px.
void triangulate(const double* P1, const double* P2, const double* uv1, const double* uv2,
                 index_t n, index_t iterations, double* X, double* err);

// -- correspondence.cpp -----------------------------------------------------------------
// Two 2D centrelines (m1, 2), (m2, 2) px -> out (n_out, 3) mm, partners (m1, 2) px.
void correspond_centrelines(const double* P1, const double* P2, const double* line1,
                            index_t m1, const double* line2, index_t m2, index_t n_out,
                            index_t iterations, double* out, double* partners);

// -- tube.cpp ---------------------------------------------------------------------------
// Ring vertices (n * n_around, 3) mm around centres (n, 3) mm with ellipses (n, 3) =
// (a mm, b mm, theta rad) in rotation-minimising frames.
void tube_vertices(const double* centres, const double* axes, index_t n, index_t n_around,
                   const double* reference, double* vertices);
index_t tube_face_count(index_t n_rings, index_t n_around, bool caps);
void tube_faces(index_t n_rings, index_t n_around, bool caps, index_t* faces);

// -- sampling.cpp -----------------------------------------------------------------------
// One channel-last feature map (height, width, channels), C-contiguous.
template <typename T>
struct MapView {
  const T* data;
  index_t height, width, channels;
};
// Bilinear samples at image pixels uv (n, 2) of an image_w x image_h image ->
// out (n, sum channels), maps in order (align_corners=False, border clamp, NaN -> 0).
// threads: most worker threads (<= 0: the process's CPU affinity count); any count gives
// the same values.
template <typename T>
void sample_bilinear(const std::vector<MapView<T>>& maps, const double* uv, index_t n,
                     index_t image_w, index_t image_h, T* out, index_t threads);

// -- raster.cpp -------------------------------------------------------------------------
// Silhouette (height, width) of triangles faces (nf, 3) over vertices (nv, 3) mm.
void rasterise_silhouette(const double* P, const double* vertices, index_t nv,
                          const index_t* faces, index_t nf, index_t width, index_t height,
                          std::uint8_t* mask);

// -- pathlength.cpp ---------------------------------------------------------------------
// Length (mm) of each pixel's ray from the source inside a tube of m >= 2 cross-sections:
// centres (m, 3) mm, semi-axes (m, 2) mm, unit major directions (m, 3) -> out (height,
// width), averaged over supersample x supersample sub-rays per pixel. threads: as for
// sample_bilinear.
void tube_path_lengths(const double* P, const double* centres, const double* semi_axes,
                       const double* major_dir, index_t m, index_t width, index_t height,
                       index_t supersample, double* out, index_t threads);

}  // namespace angio
