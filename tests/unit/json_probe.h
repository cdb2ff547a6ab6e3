// Reading what the filter wrote, for the property tests: the JSON is parsed in a file of its own
// (json_probe.cpp), which the sanitizer builds compile optimized and uninstrumented. These parses
// check the engine; instrumented at -O0 they were a third of the sanitizer build's run of the
// MCP property test.
#pragma once

#include <string>

namespace scrub::test {

struct MessageProbe {
  bool valid = false;      // one JSON value
  bool jsonrpc_2 = false;  // an object with "jsonrpc": "2.0"
  bool has_id = false, has_method = false, has_result = false, has_error = false;
  std::string id;          // the id as JSON ("" without one)
  bool leaks = false;      // the secret in a decoded string (keys too, and JSON held in strings)
};

// `text` read as a JSON-RPC message, and whether `secret` is in any string it decodes to.
MessageProbe probe_message(const std::string& text, const std::string& secret);

// `secret` in `text` as it stands or as JSON escapes it inside a string, or, when `text` is
// JSON, in any decoded string (keys too, and JSON documents held in strings, six levels deep).
bool leaks(const std::string& text, const std::string& secret);

}  // namespace scrub::test
