// libFuzzer target: the JSON-line redaction path (Redactor::redact_json, what the wrap and
// `filter --format json` run on every line). Arbitrary bytes in, one line out.
//
// Invariants (each failure aborts with its name):
//  - the engine never errors on a small input (an error would drop the line: fail closed, but
//    never expected here);
//  - clean: no finding, and the caller forwards the input byte-identical;
//  - masked: at least one finding; every finding lies inside the input;
//  - input that was valid JSON comes out valid JSON with the same shape (a scalar may only have
//    become a string);
//  - no known literal survives in the output in any registered encoding, raw or inside any
//    decoded string (JSON nested in strings included), also as a lenient client decodes the line
//    (Node: invalid UTF-8 as U+FFFD, lone surrogates accepted, no depth limit);
//  - the output re-scanned finds nothing (but re-matches across this tool's own masks, see
//    below), and redacting it again leaves it unchanged.
#include <cstddef>
#include <cstdint>

#include "fuzz_common.h"

using namespace scrub;
using namespace scrub::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Redactor redactor(fuzz_set());
  static simdjson::dom::parser parser;
  std::string_view in(reinterpret_cast<const char*>(data), size);

  std::string out;
  Findings findings;
  JsonInfo info;
  RedactStatus st = redactor.redact_json(in, out, findings, &info);
  FUZZ_CHECK(st != RedactStatus::kError, "redact_json returned kError");
  if (st == RedactStatus::kClean) FUZZ_CHECK(findings.empty(), "clean but with findings");
  if (st == RedactStatus::kMasked) FUZZ_CHECK(!findings.empty(), "masked without a finding");
  for (const Finding& f : findings)
    FUZZ_CHECK(f.offset <= size && f.length <= size - f.offset, "finding outside the input");
  const std::string_view result = st == RedactStatus::kMasked ? std::string_view(out) : in;

  // Valid JSON stays valid JSON, same shape.
  simdjson::padded_string in_copy(in);
  simdjson::dom::element in_doc;
  bool in_valid = parser.parse(in_copy).get(in_doc) == simdjson::SUCCESS;
  FUZZ_CHECK(in_valid == info.valid, "JsonInfo.valid disagrees with simdjson");
  if (in_valid && st == RedactStatus::kMasked) {
    // Keep the input document alive: a second parser for the output.
    static simdjson::dom::parser out_parser;
    simdjson::padded_string out_copy(result);
    simdjson::dom::element out_doc;
    FUZZ_CHECK(out_parser.parse(out_copy).get(out_doc) == simdjson::SUCCESS,
               "valid JSON in, invalid JSON out");
    FUZZ_CHECK(same_shape(in_doc, out_doc), "masked JSON changed shape");
    check_strings(out_doc, 0, nullptr);
  } else if (in_valid) {
    check_strings(in_doc, 0, nullptr);
  }

  // No known literal in any encoding, in the raw bytes.
  check_no_forbidden(result, "forbidden form in the output bytes");

  // Re-scanned: nothing but re-matches of this tool's own masks (a rule of bounded width over a
  // longer run of secret-like bytes matches again across its own mask and the rest of the run:
  // every pass masks up to the width, by design); redacting it again finds no known value.
  std::vector<SecretSpan> spans;
  FUZZ_CHECK(redactor.scanner().find(result, spans) == ScanStatus::kOk, "rescan error");
  for (const SecretSpan& sp : spans)
    if (result.substr(sp.begin, sp.end - sp.begin).find("[REDACTED") == std::string_view::npos)
      fail("masked output re-scanned finds a secret", sp.begin);
  // What a lenient client decodes from the output (invalid UTF-8 and lone surrogates replaced,
  // no depth limit) holds no known value either, in any string.
  {
    static simdjson::dom::parser lenient;
    static bool deep = lenient.allocate(1 << 16, 1 << 16) == simdjson::SUCCESS;
    FUZZ_CHECK(deep, "parser allocation");
    simdjson::padded_string view(client_view(result));
    simdjson::dom::element doc;
    if (lenient.parse(view).get(doc) == simdjson::SUCCESS) check_strings(doc, 0, nullptr);
  }
  // Valid JSON out, redacted again: only rules re-matching across a mask, never a known value.
  static simdjson::dom::parser again_parser;
  simdjson::padded_string result_copy(result);
  simdjson::dom::element again_doc;
  if (again_parser.parse(result_copy).get(again_doc) == simdjson::SUCCESS) {
    std::string again;
    Findings again_findings;
    RedactStatus st2 = redactor.redact_json(result, again, again_findings, nullptr);
    if (st2 != RedactStatus::kClean) {
      FUZZ_CHECK(result.find("[REDACTED") != std::string_view::npos, "output redacted again is not clean");
      for (const Finding& f : again_findings)
        FUZZ_CHECK(!f.known_literal, "a known value found again in the output");
    }
  }
  return 0;
}
