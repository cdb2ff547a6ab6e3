// BufferBudget: how many bytes of large message buffers the connections of a server may hold at
// once, so that fifty connections reading a megabyte each do not hold fifty megabytes.
//
// A holder (one direction of one connection) asks for its buffer's size before it grows it; a
// small buffer asks for 0. Promises:
//  - Bounded: holders other than the oldest grow only within the limit. The oldest holder (the
//    first still holding bytes) always may, so a message larger than the limit still passes,
//    alone, and peak use is about the limit plus the largest message.
//  - No deadlock from the budget itself: the oldest holder never waits on it, and when it gives
//    its bytes back (asks for 0, or release()) the next oldest is oldest.
//  - A holder told to wait has its `wake` called exactly once, after some holder gave bytes back
//    (or at once by wake_all()); it then asks again. `wake` runs on the thread that gave back,
//    outside the budget's lock: it should only post the retry to the holder's own executor.
// Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <vector>

namespace scrub {

class BufferBudget {
 public:
  struct Holder {
    size_t charged = 0;  // bytes held
    uint64_t ticket = 0;  // its place in line while it holds bytes (smaller: older)
  };

  explicit BufferBudget(size_t limit) : limit_(limit) {}  // 0: no limit

  // Asks that `h` hold `bytes` from now on. True: granted (a decrease always is). False: not now;
  // `wake` will run once when it is worth asking again.
  bool request(Holder& h, size_t bytes, std::function<void()> wake);
  // Gives back everything `h` holds (a connection that closes) and wakes the waiters.
  void release(Holder& h) { (void)request(h, 0, {}); }
  // Wakes every waiter now (each asks again): for a holder that closed while it waited.
  void wake_all();

  size_t used() const;
  size_t waiting() const;

 private:
  void wake(std::vector<std::function<void()>>& out);  // takes the waiters (mu_ held)

  const size_t limit_;
  mutable std::mutex mu_;
  size_t used_ = 0;
  uint64_t next_ticket_ = 1;
  std::set<uint64_t> holders_;  // tickets of the holders with bytes
  std::vector<std::function<void()>> waiters_;
};

}  // namespace scrub
