#include "filter/huge_pages.h"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

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
}  // namespace

size_t grow_heap_in_huge_pages(size_t bytes) {
  if (bytes < HugeBuffer::kHugePage || mallopt(M_TOP_PAD, static_cast<int>(bytes)) != 1) return 0;
  // A block just larger than the heap's free top: glibc extends the brk by it and M_TOP_PAD. (A
  // block at or over the mmap threshold is mapped instead and nothing grows: what the heap holds
  // is advised.) Kept in a volatile so the compiler does not elide the malloc/free pair.
  const size_t top = mallinfo2().keepcost;
  if (top < bytes) {
    void* volatile block = std::malloc(top + 4096);
    std::free(block);
  }
  char* const brk = static_cast<char*>(::sbrk(0));
  if (brk == reinterpret_cast<char*>(-1)) return 0;
  // The whole heap (contiguous from its start to the brk, `arena` bytes), aligned inward.
  const uintptr_t end = reinterpret_cast<uintptr_t>(brk);
  const uintptr_t start = end - mallinfo2().arena;
  const uintptr_t lo = huge_page_up(start);
  const uintptr_t hi = huge_page_down(end);
  if (hi <= lo || ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE) != 0) return 0;
  // The heap's free top begins before `lo`, in the unaligned head, which is 4 KiB pages: malloc
  // would carve from it first (up to 2 MiB, a fault per page). One block that ends at `lo` is
  // taken and kept, never touched but for its header, so what follows comes from the huge pages.
  // Untouched pages cost no memory: only address space. (Were a free block found for it instead
  // of the top, the top has not moved and it goes back.)
  const uintptr_t top_start = end - mallinfo2().keepcost;
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

void HugeBuffer::free_mapping(void* data, size_t mapped) {
  if (data != nullptr && mapped != 0) ::munmap(data, mapped);
}

}  // namespace scrub
