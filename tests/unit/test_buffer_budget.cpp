// BufferBudget (transports/buffer_budget.h): who may hold large buffers, who waits, who is woken.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "transports/buffer_budget.h"

using scrub::BufferBudget;

TEST_CASE("buffer budget: within the limit granted, past it waits until room comes back", "[budget]") {
  BufferBudget b(10);
  BufferBudget::Holder x, y, z;
  int woke_y = 0, woke_z = 0;
  REQUIRE(b.request(x, 6, {}));
  CHECK(b.used() == 6);
  // y would pass the limit while x holds: it waits.
  CHECK_FALSE(b.request(y, 6, [&] { ++woke_y; }));
  CHECK(b.used() == 6);
  CHECK(y.charged == 0);
  CHECK(b.waiting() == 1);
  // x, the oldest holder, may grow past the limit (a message larger than the budget passes).
  CHECK(b.request(x, 25, {}));
  CHECK(b.used() == 25);
  CHECK(woke_y == 0);
  // Asking for nothing (a small buffer) is always granted.
  CHECK(b.request(z, 0, {}));
  // x shrinks: room came back, every waiter is woken once and asks again.
  CHECK(b.request(x, 4, {}));
  CHECK(woke_y == 1);
  CHECK(b.waiting() == 0);
  CHECK(b.request(y, 6, {}));
  CHECK(b.used() == 10);
  // z would pass it now: it waits; y is not the oldest (x is) so it may not grow past it either.
  CHECK_FALSE(b.request(z, 1, [&] { ++woke_z; }));
  CHECK_FALSE(b.request(y, 7, [&] { ++woke_y; }));
  CHECK(b.waiting() == 2);
  // x gives back everything: y is the oldest now and grows past the limit.
  b.release(x);
  CHECK(x.charged == 0);
  CHECK(woke_z == 1);
  CHECK(woke_y == 2);
  CHECK(b.request(y, 30, {}));
  CHECK(b.used() == 30);
  CHECK_FALSE(b.request(z, 1, [&] { ++woke_z; }));
  b.release(y);
  CHECK(woke_z == 2);
  CHECK(b.used() == 0);
  // Nobody holds anything: any size is granted, alone.
  CHECK(b.request(z, 1000, {}));
  CHECK(b.used() == 1000);
}

TEST_CASE("buffer budget: no limit grants everything, and wake_all wakes each waiter once", "[budget]") {
  BufferBudget none(0);
  BufferBudget::Holder h[3];
  for (auto& x : h) CHECK(none.request(x, 1u << 30, {}));
  CHECK(none.used() == 3 * (size_t{1} << 30));

  BufferBudget b(4);
  BufferBudget::Holder a, c, d;
  int woke = 0;
  REQUIRE(b.request(a, 4, {}));
  CHECK_FALSE(b.request(c, 4, [&] { ++woke; }));
  CHECK_FALSE(b.request(d, 4, [&] { ++woke; }));
  b.wake_all();
  CHECK(woke == 2);
  b.wake_all();
  CHECK(woke == 2);
  // Releasing a holder that holds nothing changes nothing.
  b.release(c);
  CHECK(b.used() == 4);
}

// Threads that take turns through a budget of one holder's worth: each gets its turn, and no
// two hold at once (a second would pass the limit without being the oldest). Assertions after the
// join: Catch's are not thread-safe.
TEST_CASE("buffer budget: threads waiting their turn all get through", "[budget]") {
  BufferBudget b(100);
  constexpr int kThreads = 8, kRounds = 200;
  std::vector<std::thread> ts;
  std::atomic<int> done{0};
  std::atomic<size_t> most{0};
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&] {
      BufferBudget::Holder h;
      for (int r = 0; r < kRounds; ++r) {
        std::atomic<bool> woken{false};
        while (!b.request(h, 80, [&] { woken = true; })) {
          while (!woken) std::this_thread::yield();
          woken = false;
        }
        const size_t now = b.used();
        for (size_t m = most; now > m && !most.compare_exchange_weak(m, now);) {
        }
        b.release(h);
      }
      ++done;
    });
  for (auto& t : ts) t.join();
  CHECK(done == kThreads);
  CHECK(most == 80);
  CHECK(b.used() == 0);
  CHECK(b.waiting() == 0);
}
