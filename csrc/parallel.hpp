// A minimal fork-join loop over independent items, for kernels whose outputs per item do
// not depend on each other (so results are identical for any thread count).
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace angio {

// Calls body(begin, end) on contiguous chunks of [0, n), on up to hardware_concurrency
// threads (at most 8), each chunk at least min_chunk items. Runs inline when one chunk.
template <typename Body>
void parallel_for(std::int64_t n, std::int64_t min_chunk, Body body) {
  const std::int64_t hw = std::max<std::int64_t>(1, std::thread::hardware_concurrency());
  const std::int64_t chunks =
      std::min<std::int64_t>({hw, std::int64_t(8), std::max<std::int64_t>(1, n / min_chunk)});
  if (chunks <= 1) {
    body(std::int64_t(0), n);
    return;
  }
  std::vector<std::thread> workers;
  workers.reserve(static_cast<size_t>(chunks - 1));
  const std::int64_t step = (n + chunks - 1) / chunks;
  for (std::int64_t c = 1; c < chunks; ++c) {
    const std::int64_t b = c * step, e = std::min(n, b + step);
    if (b < e) workers.emplace_back([&body, b, e] { body(b, e); });
  }
  body(std::int64_t(0), std::min(n, step));
  for (auto& w : workers) w.join();
}

}  // namespace angio
