#include "filter/huge_pages.h"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14; older kernels answer EINVAL and fault as usual
#endif

namespace scrub {

namespace {
// The 2 MiB boundary at or below / at or above `a`.
constexpr uintptr_t huge_page_down(uintptr_t a) {
  return a & ~(uintptr_t{HugeBuffer::kHugePage} - 1);
}
constexpr uintptr_t huge_page_up(uintptr_t a) {
  return huge_page_down(a + HugeBuffer::kHugePage - 1);
}
}  // namespace

HugeBuffer::HugeBuffer(size_t bytes) {
  if (bytes == 0) return;
  const size_t page = 4096;
  if (bytes < kSmall) {  // not worth a 2 MiB page: 4 KiB pages, populated
    const size_t mapped = (bytes + page - 1) / page * page;
    void* p = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) return;
    data_ = static_cast<char*>(p);
    size_ = bytes;
    mapped_ = mapped;
    return;
  }
  const size_t mapped = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  // Map one huge page more, then cut the unaligned head and tail away.
  void* raw = ::mmap(nullptr, mapped + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return;
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = huge_page_up(start);
  if (aligned > start) ::munmap(raw, aligned - start);
  const uintptr_t end = start + mapped + kHugePage;
  if (end > aligned + mapped) ::munmap(reinterpret_cast<void*>(aligned + mapped), end - (aligned + mapped));
  data_ = reinterpret_cast<char*>(aligned);
  size_ = bytes;
  mapped_ = mapped;
  (void)::madvise(data_, mapped_, MADV_HUGEPAGE);
  (void)::madvise(data_, (bytes + page - 1) / page * page, MADV_POPULATE_WRITE);
}

namespace {
// Below this a head gap is left to malloc: a few pages' faults are not worth a block kept forever.
constexpr uintptr_t kMinHeadGap = 64 * 1024;
// The block that covers the heap's unaligned head (grow_heap_in_huge_pages): never freed, held
// here so it stays reachable.
void* head_spacer = nullptr;
// M_TOP_PAD as this file last set it: grow_heap_in_huge_pages's `bytes`, or the free top a growth
// left (grow_past), whichever is larger.
size_t top_pad = 0;
constexpr int kGlibcMmapMax = 65536;  // glibc's DEFAULT_MMAP_MAX

// Whether malloc is glibc's, by setting what glibc has anyway: a sanitizer's allocator answers
// mallopt with 0, and neither its heap nor its arenas are glibc's.
bool glibc_malloc() { return mallopt(M_MMAP_MAX, kGlibcMmapMax) == 1; }

// The main heap's end (the brk); (uintptr_t)-1 when sbrk fails.
uintptr_t heap_end() { return reinterpret_cast<uintptr_t>(::sbrk(0)); }

// Grows the heap until its brk passes `target`: a block just larger than the heap's free top and
// the way to `target` makes glibc extend the brk (M_TOP_PAD 0 meanwhile, so by not much more) and
// write the new top's header at the block's end, just past `target`, not in what is advised. A
// block at or over the mmap threshold would be mapped instead, so mapping is off meanwhile
// (M_MMAP_MAX 0, then glibc's default again). Before the block is freed, M_TOP_PAD becomes at
// least the whole free top: the free would trim a top over M_TRIM_THRESHOLD down to M_TOP_PAD,
// giving back what just grew, and later trims keep the advised part too. Kept in a volatile so
// the compiler does not elide the malloc/free pair.
void grow_past(uintptr_t target) {
  const uintptr_t end = heap_end();
  if (target <= end || mallopt(M_TOP_PAD, 0) != 1) return;
  (void)mallopt(M_MMAP_MAX, 0);
  void* volatile block = std::malloc(mallinfo2().keepcost + (target - end));
  if (block != nullptr) {
    const size_t top = heap_end() - reinterpret_cast<uintptr_t>(block);
    top_pad = std::max(top_pad, top);
  }
  (void)mallopt(M_TOP_PAD, static_cast<int>(top_pad));
  std::free(block);
  (void)mallopt(M_MMAP_MAX, kGlibcMmapMax);
}

// Advises [lo, hi) (2 MiB-aligned) for huge pages, then drops what 4 KiB pages the free top holds
// there past the 2 MiB page it begins in: one page in memory in a 2 MiB page before the advice
// (a header glibc wrote where the heap grew, as it did when the growing block ended 4 KiB into
// the new part) keeps it from ever being a huge one, the rest faulted in by 4 KiB (~300 faults
// under `filter --threads 2`). The free top's contents are nobody's.
bool advise(uintptr_t lo, uintptr_t hi, uintptr_t top_start) {
  if (hi <= lo || ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE) != 0) return false;
  const uintptr_t free_from = std::max(lo, huge_page_up(top_start + 64));  // past its header
  if (free_from < hi) (void)::madvise(reinterpret_cast<void*>(free_from), hi - free_from, MADV_DONTNEED);
  return true;
}
}  // namespace

size_t grow_heap_in_huge_pages(size_t bytes) {
  if (bytes < HugeBuffer::kHugePage || mallopt(M_TOP_PAD, static_cast<int>(bytes)) != 1) return 0;
  top_pad = bytes;
  const size_t top = mallinfo2().keepcost;
  if (top < bytes) grow_past(heap_end() + (bytes - top));
  const uintptr_t end = heap_end();
  if (end == static_cast<uintptr_t>(-1)) return 0;
  // The whole heap (contiguous from its start to the brk, `arena` bytes), aligned inward.
  const uintptr_t start = end - mallinfo2().arena;
  const uintptr_t lo = huge_page_up(start);
  const uintptr_t hi = huge_page_down(end);
  const uintptr_t top_start = end - mallinfo2().keepcost;
  if (!advise(lo, hi, top_start)) return 0;
  // The heap's free top begins before `lo`, in the unaligned head, which is 4 KiB pages: malloc
  // would carve from it first (up to 2 MiB, a fault per page). One block that ends at `lo` is
  // taken and kept, never touched but for its header, so what follows comes from the huge pages.
  // Untouched pages cost no memory: only address space. (Were a free block found for it instead
  // of the top, the top has not moved and it goes back.)
  if (top_start < lo && lo - top_start >= kMinHeadGap) {
    void* spacer = std::malloc(lo - top_start);
    if (spacer != nullptr && end - mallinfo2().keepcost >= lo) {
      head_spacer = spacer;
    } else {
      std::free(spacer);
    }
  }
  return hi - lo;
}

size_t reserve_heap_in_huge_pages(size_t bytes) {
  if (bytes < HugeBuffer::kHugePage || !glibc_malloc()) return 0;
  uintptr_t end = heap_end();
  if (end == static_cast<uintptr_t>(-1)) return 0;
  // `bytes` of whole 2 MiB pages in the free top, before the last boundary below the brk (past
  // it, 4 KiB pages).
  const uintptr_t top_start = end - mallinfo2().keepcost;
  const uintptr_t want = huge_page_up(top_start) + huge_page_up(bytes);
  if (huge_page_down(end) < want) {
    grow_past(want);
    end = heap_end();
  }
  // From the 2 MiB page the top begins in (the rest of it is malloc's next blocks), not before
  // the heap's first boundary.
  const uintptr_t lo = std::max(huge_page_down(top_start), huge_page_up(end - mallinfo2().arena));
  const uintptr_t hi = huge_page_down(end);
  return advise(lo, hi, top_start) ? hi - lo : 0;
}

namespace {
// glibc's HEAP_MAX_SIZE on 64-bit (2 * DEFAULT_MMAP_THRESHOLD_MAX): the size and alignment of a
// thread arena's reservation.
constexpr uintptr_t kArenaReservation = uintptr_t{64} << 20;
// The blocks that cover thread arenas' first 2 MiB pages: never freed, held here so they stay
// reachable. A few threads at most take one; past the slots, none is taken.
constexpr size_t kArenaSpacers = 64;
std::atomic<void*> arena_spacers[kArenaSpacers];
std::atomic<size_t> arena_spacer_count{0};
}  // namespace

size_t advise_thread_arena_in_huge_pages() {
  thread_local bool done = false;
  if (done) return 0;
  done = true;
  if (!glibc_malloc()) return 0;
  void* probe = std::malloc(64);
  if (probe == nullptr) return 0;
  const uintptr_t at = reinterpret_cast<uintptr_t>(probe);
  const uintptr_t base = at & ~(kArenaReservation - 1);
  size_t advised = 0;
  // A fresh arena's first block lies just past its header at the reservation's start; anywhere
  // else (the main heap, an arena another thread used) nothing is done.
  if (at - base < 64 * 1024 &&
      ::madvise(reinterpret_cast<void*>(base), kArenaReservation, MADV_HUGEPAGE) == 0) {
    advised = kArenaReservation;
    const uintptr_t first = base + HugeBuffer::kHugePage;
    const size_t slot = arena_spacer_count.fetch_add(1);
    // The probe, its header, the spacer's header: the spacer ends about where `first` begins.
    void* spacer = slot < kArenaSpacers ? std::malloc(first - at - 64 - 32) : nullptr;
    const uintptr_t s = reinterpret_cast<uintptr_t>(spacer);
    if (spacer != nullptr && s > at && s < first) {
      arena_spacers[slot].store(spacer);
    } else {
      std::free(spacer);  // not where it was meant to be: the arena's blocks are left as they are
    }
  }
  std::free(probe);
  return advised;
}

void HugeBuffer::free_mapping(void* data, size_t mapped) {
  if (data != nullptr && mapped != 0) ::munmap(data, mapped);
}

}  // namespace scrub
