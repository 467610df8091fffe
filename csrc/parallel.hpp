// A minimal fork-join loop over independent items, for kernels whose outputs per item do
// not depend on each other (so results are identical for any thread count).
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

namespace angio {

// CPUs this process may run on: its affinity mask on Linux (what taskset, cgroup cpusets
// and container runtimes restrict), else hardware_concurrency. Used only when a caller
// passes threads <= 0; angio_deploy.kernels always passes its own count.
inline std::int64_t available_cpus() {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  return std::max<std::int64_t>(1, std::thread::hardware_concurrency());
}

// The thread count a kernel may use: ``threads`` when positive, else available_cpus().
inline std::int64_t thread_limit(std::int64_t threads) {
  return threads > 0 ? threads : available_cpus();
}

// Calls body(begin, end) on contiguous chunks of [0, n), on up to ``threads`` threads
// (<= 0: available_cpus(); at most 8), each chunk at least min_chunk items. Runs inline
// when one chunk.
template <typename Body>
void parallel_for(std::int64_t n, std::int64_t min_chunk, std::int64_t threads, Body body) {
  const std::int64_t limit = thread_limit(threads);
  const std::int64_t chunks =
      std::min<std::int64_t>({limit, std::int64_t(8), std::max<std::int64_t>(1, n / min_chunk)});
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
