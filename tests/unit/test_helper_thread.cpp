// HelperThread: tasks run on one other thread, kept between tasks; a Job waits as the future of
// std::async does; a task's exception comes back from get().
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "filter/helper_thread.h"

using namespace scrub;

TEST_CASE("HelperThread runs each task on the same other thread", "[helper_thread]") {
  HelperThread t;
  std::thread::id first, second;
  t.run([&] { first = std::this_thread::get_id(); }).get();
  t.run([&] { second = std::this_thread::get_id(); }).get();
  CHECK(first != std::this_thread::get_id());
  CHECK(first == second);  // kept, not started anew
}

TEST_CASE("HelperThread's Job waits for its task when it goes, as std::async's future does",
          "[helper_thread]") {
  HelperThread t;
  std::atomic<int> done{0};
  {
    HelperThread::Job j = t.run([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      done = 1;
    });
    CHECK(j.valid());
  }
  CHECK(done == 1);
  // A Job assigned over waits for the task it held.
  std::atomic<int> order{0}, first_saw{-1};
  HelperThread::Job j = t.run([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    first_saw = order.fetch_add(1);
  });
  j = HelperThread::Job();
  CHECK(first_saw == 0);
  CHECK_FALSE(j.valid());
}

TEST_CASE("HelperThread gives a task's exception back from get() and keeps working",
          "[helper_thread]") {
  HelperThread t;
  HelperThread::Job j = t.run([] { throw std::runtime_error("task failed"); });
  CHECK_THROWS_WITH(j.get(), "task failed");
  int v = 0;
  t.run([&] { v = 7; }).get();
  CHECK(v == 7);
}
