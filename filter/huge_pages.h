// HugePages: anonymous memory for a large block that lives long or is touched whole (a compiled
// database, the cache file it is read from), asked for in transparent huge pages (HugeBuffer);
// and the process heap's first megabytes in them (grow_heap_in_huge_pages, below).
//
// Every 4 KiB page is zero-filled on its first touch, one page fault each. On the VMs these
// benchmarks run on a fault costs 7-14 µs: touching 1.5 MB took 5.2-5.8 ms in 4 KiB pages and
// 0.1-0.4 ms in one 2 MiB page (a probe), and loading the built-in pack's cached database touched
// two such blocks at every start.
//
// HugeBuffer promises: a block of kSmall or more is aligned to 2 MiB and rounded up to a multiple of it (so
// the kernel can back it with huge pages when THP is `always` or `madvise`), and the part asked
// for is populated in one call where the kernel can (MADV_POPULATE_WRITE, Linux 5.14), so the
// faults are not taken one by one even where huge pages are off. A smaller block is 4 KiB pages,
// populated when mapped. Contents start zeroed. Failure (no memory) leaves
// the buffer empty; callers fall back to their ordinary allocation.
#pragma once

#include <cstddef>
#include <utility>

namespace scrub {

class HugeBuffer {
 public:
  static constexpr size_t kHugePage = size_t{2} << 20;
  static constexpr size_t kSmall = size_t{256} << 10;

  HugeBuffer() = default;
  explicit HugeBuffer(size_t bytes);
  ~HugeBuffer() { free_mapping(data_, mapped_); }
  HugeBuffer(HugeBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)),
        mapped_(std::exchange(o.mapped_, 0)) {}
  HugeBuffer& operator=(HugeBuffer&& o) noexcept {
    if (this != &o) {
      free_mapping(data_, mapped_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      mapped_ = std::exchange(o.mapped_, 0);
    }
    return *this;
  }
  HugeBuffer(const HugeBuffer&) = delete;
  HugeBuffer& operator=(const HugeBuffer&) = delete;

  explicit operator bool() const { return data_ != nullptr; }
  char* data() const { return data_; }
  size_t size() const { return size_; }      // what was asked for
  size_t mapped() const { return mapped_; }  // what is mapped: a multiple of kHugePage

  // Gives the block up: the caller frees it with free_mapping(data, mapped).
  char* release() {
    size_ = mapped_ = 0;
    return std::exchange(data_, nullptr);
  }
  static void free_mapping(void* data, size_t mapped);

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;
};

// Grows the process's main heap (glibc's brk arena) until `bytes` are free at its top and asks
// for transparent huge pages over its 2 MiB-aligned part, so the buffers malloc carves from it
// later (a filter batch, a message's scan buffers) take one fault per 2 MiB instead of one per
// 4 KiB. Also sets glibc's M_TOP_PAD to `bytes` (or a little more): later growths come in steps
// that size, and a trim keeps that much, so the advised region is not given back and re-grown
// without the advice (a brk extension is a mapping of its own, without it). The heap's unaligned head (the up to 2 MiB before the first aligned
// address, 4 KiB pages) is then taken by one block that is kept and never touched, so malloc
// carves from the huge pages at once, not from the head first: `filter` on empty input took 180
// page faults fewer, 3 ms of 24 (150 alternated runs). What is never touched costs no memory;
// what is touched stays resident up to `bytes` after it is freed (the peak is what it was).
//
// Call once, on the main thread, before other threads allocate. Returns the bytes advised: 0 when
// the heap did not grow, the kernel refused, or malloc is not glibc's (a sanitizer's allocator
// answers mallopt with 0). THP `never` is silently 4 KiB pages.
size_t grow_heap_in_huge_pages(size_t bytes);

// For a job that knows it will hold more than the first megabytes (`filter --threads`): makes
// sure the heap's free top holds at least `bytes` of whole 2 MiB pages, advised and not yet in
// memory, growing the heap to the 2 MiB boundary past them when it does not (what malloc grows
// later is 4 KiB pages). M_TOP_PAD stays at least what grow_heap_in_huge_pages set. On the main
// thread. Returns the bytes advised (from the 2 MiB page the free top begins in); 0 as
// grow_heap_in_huge_pages.
size_t reserve_heap_in_huge_pages(size_t bytes);

// For a thread that will hold megabytes of its own (a `filter --threads` pool thread): glibc
// gives a thread a malloc arena of its own, a 64 MiB-aligned reservation it grows as needed
// (HEAP_MAX_SIZE on 64-bit), which grow_heap_in_huge_pages does not cover. The first
// call on a thread advises that reservation for huge pages and takes the rest of its first 2 MiB
// page (the arena's own header and first blocks, 4 KiB pages) with one block kept and never
// touched, so what the thread allocates next comes from huge pages. Later calls on the thread
// return at once. Returns the bytes advised: 0 on later calls, when the thread's blocks come
// from the main heap or from an arena already in use (its first block is not at the start of a
// reservation), when the range is not mapped as glibc maps it, or when malloc is not glibc's.
// What the thread touches of an advised 2 MiB page is resident whole: `filter --threads 2`'s
// peak RSS 21 -> 24 MiB. The wrap's one helper thread too (McpFilter::prepare_for_large_messages):
// its first masked 1 MB answer 2.6-4.7 ms sooner, peak RSS 1-3 MiB more. Not tcp's helpers, one
// per connection: 7-10 MiB more there.
size_t advise_thread_arena_in_huge_pages();

}  // namespace scrub
