#include "transports/buffer_budget.h"

#include <utility>

namespace scrub {

bool BufferBudget::request(Holder& h, size_t bytes, std::function<void()> wake_me) {
  std::vector<std::function<void()>> woken;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (bytes <= h.charged) {
      if (bytes == h.charged) return true;
      used_ -= h.charged - bytes;
      h.charged = bytes;
      if (bytes == 0) {
        holders_.erase(h.ticket);
        h.ticket = 0;
      }
      wake(woken);
    } else {
      const size_t more = bytes - h.charged;
      const bool oldest = h.charged > 0 && *holders_.begin() == h.ticket;  // it holds: one is
      if (limit_ != 0 && !oldest && !holders_.empty() && used_ + more > limit_) {
        if (wake_me) waiters_.push_back(std::move(wake_me));
        return false;
      }
      if (h.charged == 0) {
        h.ticket = next_ticket_++;
        holders_.insert(h.ticket);
      }
      used_ += more;
      h.charged = bytes;
      return true;
    }
  }
  for (auto& w : woken) w();
  return true;
}

void BufferBudget::wake_all() {
  std::vector<std::function<void()>> woken;
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake(woken);
  }
  for (auto& w : woken) w();
}

void BufferBudget::wake(std::vector<std::function<void()>>& out) { out.swap(waiters_); }

size_t BufferBudget::used() const {
  std::lock_guard<std::mutex> lock(mu_);
  return used_;
}

size_t BufferBudget::waiting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return waiters_.size();
}

}  // namespace scrub
