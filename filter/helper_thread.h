// A thread kept for one owner's helper work: the second thread of a large message's scan
// (Redactor's two-thread path and Scanner::find_split), one task at a time.
//
// Promises: run() hands a task to the thread and returns a Job that, like the future of
// std::async, waits for the task in its destructor, so a task never outlives what it uses. A
// task's exception comes back from Job::get(). The destructor waits for a task in progress and
// ends the thread. Not thread-safe: one owner calls run() and waits for its jobs.
//
// Why not std::async: a thread started per large message cost 50-110 µs on the project's 2-CPU
// VM (a waiting thread takes a task in 15-25), twice per 1 MB message that is masked.
#pragma once

#include <functional>
#include <future>
#include <memory>

namespace scrub {

class HelperThread {
 public:
  // Starts the thread. Throws std::system_error when none can be had (the caller then does the
  // work itself).
  HelperThread();
  ~HelperThread();
  HelperThread(const HelperThread&) = delete;
  HelperThread& operator=(const HelperThread&) = delete;

  class Job {
   public:
    Job() = default;
    explicit Job(std::future<void> f) : f_(std::move(f)) {}
    Job(Job&&) = default;
    Job& operator=(Job&& o) noexcept {
      wait();
      f_ = std::move(o.f_);
      return *this;
    }
    ~Job() { wait(); }
    bool valid() const { return f_.valid(); }
    void wait() const {
      if (f_.valid()) f_.wait();
    }
    void get() { f_.get(); }  // waits; rethrows the task's exception

   private:
    std::future<void> f_;
  };

  Job run(std::function<void()> task);

 private:
  struct Pool;
  std::unique_ptr<Pool> pool_;
};

}  // namespace scrub
