#include "json_probe.h"

#include <nlohmann/json.hpp>

#include <string_view>
#include <vector>

namespace scrub::test {

namespace {

// Every decoded string of a JSON document (keys too), JSON held in strings decoded as well.
void decoded_strings(const nlohmann::json& j, std::vector<std::string>& out, int depth = 0) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      out.push_back(it.key());
      decoded_strings(it.value(), out, depth);
    }
  } else if (j.is_array()) {
    for (const auto& e : j) decoded_strings(e, out, depth);
  } else if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    out.push_back(s);
    // Only a string that starts like an object or an array can hold a structured document.
    const size_t first = s.find_first_not_of(" \t\r\n");
    if (depth < 6 && first != std::string::npos && (s[first] == '{' || s[first] == '[')) {
      auto inner = nlohmann::json::parse(s, nullptr, false);
      if (!inner.is_discarded() && inner.is_structured()) decoded_strings(inner, out, depth + 1);
    }
  }
}

bool leaks_decoded(const nlohmann::json& j, const std::string& secret) {
  std::vector<std::string> strs;
  decoded_strings(j, strs);
  for (const auto& s : strs)
    if (s.find(secret) != std::string::npos) return true;
  return false;
}

}  // namespace

MessageProbe probe_message(const std::string& text, const std::string& secret) {
  MessageProbe p;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return p;
  p.valid = true;
  p.leaks = leaks_decoded(j, secret);
  if (!j.is_object()) return p;
  p.jsonrpc_2 = j.value("jsonrpc", "") == "2.0";
  p.has_id = j.contains("id");
  if (p.has_id) p.id = j["id"].dump();
  p.has_method = j.contains("method");
  p.has_result = j.contains("result");
  p.has_error = j.contains("error");
  return p;
}

bool leaks(const std::string& text, const std::string& secret) {
  if (text.find(secret) != std::string::npos) return true;
  // As JSON writes it inside a string (quotes and backslashes escaped), in text that is not JSON.
  const std::string body =
      nlohmann::json(secret).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.find(std::string_view(body).substr(1, body.size() - 2)) != std::string::npos)
    return true;
  auto j = nlohmann::json::parse(text, nullptr, false);
  return !j.is_discarded() && leaks_decoded(j, secret);
}

}  // namespace scrub::test
