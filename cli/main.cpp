// mcp-scrub: entry point. The command line is cli/app.cpp's (scrub::run_main).
#include <malloc.h>

#include "cli/commands.h"
#include "filter/huge_pages.h"

extern char** environ;

int main(int argc, char** argv) {
  // Messages of megabytes pass through buffers of their size on three threads. glibc raises its
  // mmap threshold after each large free (up to 32 MiB), after which such buffers come from the
  // threads' heap arenas and stay there: peak RSS for 4 MiB results with secrets was 158 MiB,
  // 86 MiB with the threshold fixed (bench/run_memory.sh). Fixed at 128 KiB, though, every buffer
  // of a 1 MB result was a fresh mapping: page faults to fill it, and a TLB shoot-down across
  // threads to unmap it, 0.7 ms of each such message's 3.7 ms scan. Buffers up to 2 MiB now come
  // from the heap and are reused warm; larger ones are still mapped and unmapped.
  mallopt(M_MMAP_THRESHOLD, 2 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
  // The heap's first 8 MiB in transparent huge pages (filter/huge_pages.h): a first touch costs
  // 7-14 µs per 4 KiB page on the VMs the benchmarks ran on, and start-up alone touched about
  // 500 of them in the heap. Paired runs (100 or 30, alternated): `filter` on empty input -3.9 ms
  // of 29 (page faults 915 -> 330-413), over the mixed log -13 ms with one thread and -19.7 ms
  // with two. Peak RSS (bench/run_memory.sh) 0.4-2.9 MiB more. 32 MiB did no better for these
  // and cost up to 14 MiB more (a 2 MiB page is resident whole).
  scrub::grow_heap_in_huge_pages(8 * 1024 * 1024);
  return scrub::run_main(argc, argv, environ);
}
