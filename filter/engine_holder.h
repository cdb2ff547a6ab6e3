// The compiled set in force, swappable at run time (secret rotation, rule reload).
//
// Promises: get() returns a complete set, old or new, never a mix; a swap is atomic. Scanners
// are bound to one set, so a stage that holds a Redactor calls refresh() between messages: a
// message being scanned finishes with the set it started with, the next one uses the new set,
// and no message is scanned by neither. Thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

#include "filter/redactor.h"

namespace scrub {

class EngineHolder {
 public:
  explicit EngineHolder(std::shared_ptr<const CompiledSet> set) : set_(std::move(set)) {}

  std::shared_ptr<const CompiledSet> get() const {
    std::lock_guard<std::mutex> l(mu_);
    return set_;
  }
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  void swap(std::shared_ptr<const CompiledSet> set) {
    {
      std::lock_guard<std::mutex> l(mu_);
      set_ = std::move(set);
    }
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const CompiledSet> set_;
  std::atomic<uint64_t> generation_{0};
};

// A Redactor that follows an EngineHolder: call current() before each unit. The Redactor (its
// scratch) is made on the first current(), so a stage that never scans costs nothing: the TCP
// proxy holds one per connection direction, most of them idle or only noting requests.
class FollowingRedactor {
 public:
  explicit FollowingRedactor(const EngineHolder& holder) : holder_(holder), gen_(holder.generation()) {}
  Redactor& current() {
    uint64_t g = holder_.generation();
    if (!redactor_ || g != gen_) {
      redactor_ = std::make_unique<Redactor>(holder_.get());
      gen_ = g;
    }
    return *redactor_;
  }
  const EngineHolder& holder() const { return holder_; }

 private:
  const EngineHolder& holder_;
  uint64_t gen_;
  std::unique_ptr<Redactor> redactor_;
};

}  // namespace scrub
