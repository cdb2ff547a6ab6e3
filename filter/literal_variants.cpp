#include "filter/literal_variants.h"

#include <algorithm>
#include <set>

namespace scrub {

namespace {

const char kHexUpper[] = "0123456789ABCDEF";
const char kHexLower[] = "0123456789abcdef";

enum JsonStyle { kStandard, kSlash, kDotNet, kGo };

// ASCII-only JSON: every character past 0x7e as \uXXXX (UTF-16, surrogate pairs beyond the BMP),
// as Python's json.dumps (ensure_ascii, lower-case hex) and .NET's System.Text.Json (upper-case
// hex, also + < > & ' `) write it. "" when `s` is not valid UTF-8.
std::string json_escape_ascii(std::string_view s, bool dotnet) {
  const char* hex = dotnet ? kHexUpper : kHexLower;
  std::string out;
  out.reserve(s.size() + 16);
  auto u = [&](uint32_t v) {
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) out += hex[(v >> shift) & 15];
  };
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return "";
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (size_t k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return "";
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Not UTF-8 either: overlong forms, UTF-16 surrogates (CESU-8), past U+10FFFF. (Found by
    // fuzz_decoders: ED A0 80 became \ud800, which decodes to something else.)
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
      return "";
    i += len;
    switch (cp) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    bool special = dotnet && (cp == '+' || cp == '<' || cp == '>' || cp == '&' || cp == '\'' || cp == '`');
    if (cp < 0x20 || cp >= 0x7f || special) {
      if (cp >= 0x10000) {
        u(0xD800 + ((cp - 0x10000) >> 10));
        u(0xDC00 + ((cp - 0x10000) & 0x3FF));
      } else {
        u(cp);
      }
    } else {
      out += static_cast<char>(cp);
    }
  }
  return out;
}

std::string json_escape_style(std::string_view s, JsonStyle style) {
  std::string out;
  out.reserve(s.size() + 8);
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    bool u = c < 0x20 || c == 0x7f;
    if (style == kSlash && c == '/') {
      out += "\\/";
      continue;
    }
    if (style == kDotNet && (c == '+' || c == '<' || c == '>' || c == '&' || c == '\'' || c == '`'))
      u = true;
    if (style == kGo && (c == '<' || c == '>' || c == '&')) u = true;
    if (u) {
      const char* hex = style == kGo ? kHexLower : kHexUpper;
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string url_encode(std::string_view s, bool lower_hex, bool form) {
  std::string out;
  out.reserve(s.size() + 16);
  const char* hex = lower_hex ? kHexLower : kHexUpper;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (!form && (c == '!' || c == '*' || c == '\'' || c == '(' || c == ')'))) {
      out += static_cast<char>(c);
    } else if (form && c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 16);
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string url_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::string json_escape(std::string_view s) { return json_escape_style(s, kStandard); }

std::string base64_encode(std::string_view bytes, bool url_safe, bool pad) {
  static const char kStd[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static const char kUrl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const char* a = url_safe ? kUrl : kStd;
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    out += a[v >> 18];
    out += a[(v >> 12) & 63];
    out += a[(v >> 6) & 63];
    out += a[v & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest) {
    uint32_t v = uint8_t(bytes[i]) << 16;
    if (rest == 2) v |= uint8_t(bytes[i + 1]) << 8;
    out += a[v >> 18];
    out += a[(v >> 12) & 63];
    if (rest == 2) out += a[(v >> 6) & 63];
    if (pad) out.append(rest == 1 ? "==" : "=");
  }
  return out;
}

bool base64_decode(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  size_t pad = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+' || c == '-') v = 62;
    else if (c == '/' || c == '_') v = 63;
    else if (c == '=') { ++pad; continue; }
    else if (c == '\n' || c == '\r' || c == ' ' || c == '\t') continue;
    else return false;
    if (pad) return false;  // data after padding
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return pad <= 2;
}

std::vector<LiteralVariant> literal_variants(std::string_view value, size_t min_length) {
  // About 20 candidates a value, most of them equal to the raw value: a linear search of the
  // few kept so far is cheaper than a set (start-up computes these for every known value).
  std::vector<LiteralVariant> out;
  out.reserve(20);
  auto add = [&](std::string bytes, const char* kind) {
    if (bytes.size() < min_length) return;
    for (const LiteralVariant& v : out)
      if (v.bytes == bytes) return;
    out.push_back({std::move(bytes), kind});
  };
  add(std::string(value), "raw");
  for (JsonStyle s : {kStandard, kSlash, kDotNet, kGo}) add(json_escape_style(value, s), "json");
  // JSON inside a JSON string: escaped twice.
  add(json_escape(json_escape(value)), "json");
  // ASCII-only encoders (Python, .NET) write non-ASCII characters as \u escapes; such JSON is
  // often printed into a log line or a message, where no JSON decoding reaches it. Once and twice.
  for (bool dotnet : {false, true}) {
    std::string a = json_escape_ascii(value, dotnet);
    if (a.empty()) continue;
    add(a, "json");
    add(json_escape(a), "json");
  }
  add(url_encode(value, false, false), "url");
  add(url_encode(value, true, false), "url");
  add(url_encode(value, false, true), "url");
  add(xml_escape(value), "xml");
  // Base64 at each alignment: prefix k zero bytes, encode, keep only the characters whose six
  // bits come entirely from the value (so the form is the same whatever surrounds it).
  for (size_t k = 0; k < 3; ++k) {
    std::string buf(k, '\0');
    buf.append(value);
    size_t first = (8 * k + 5) / 6;           // ceil(8k / 6)
    size_t last = (8 * (k + value.size())) / 6;  // exclusive: floor(8(k+n) / 6)
    if (last <= first) continue;
    for (bool url : {false, true}) {
      std::string enc = base64_encode(buf, url, false);
      add(enc.substr(first, last - first), url ? "base64url" : "base64");
    }
  }
  return out;
}

std::vector<LiteralVariant> literal_forms(std::string_view value, bool with_base64) {
  std::vector<LiteralVariant> forms =
      literal_variants(value, std::max<size_t>(std::min<size_t>(value.size(), 8), 6));
  if (!with_base64)
    forms.erase(std::remove_if(forms.begin(), forms.end(),
                               [](const LiteralVariant& v) { return v.kind[0] == 'b'; }),
                forms.end());
  return forms;
}

std::vector<KnownSecret> expand_known_secrets(const std::vector<KnownSecret>& secrets,
                                              size_t min_length) {
  std::vector<KnownSecret> out = secrets;
  std::set<std::string> seen;
  for (const auto& s : secrets) seen.insert(s.value);
  auto add = [&](const std::string& name, std::string value) {
    if (value.size() < min_length || !seen.insert(value).second) return;
    out.push_back({name, std::move(value)});
  };
  for (const auto& s : secrets) {
    if (s.value.find('\n') != std::string::npos) {
      size_t pos = 0, line = 0;
      while (pos <= s.value.size()) {
        size_t eol = s.value.find('\n', pos);
        if (eol == std::string::npos) eol = s.value.size();
        ++line;
        std::string l = s.value.substr(pos, eol - pos);
        while (!l.empty() && (l.back() == '\r' || l.back() == ' ')) l.pop_back();
        add(s.name + "#line" + std::to_string(line), std::move(l));
        pos = eol + 1;
      }
    }
    // scheme://user:password@host: the password leaks alone in error messages and logs.
    size_t scheme = s.value.find("://");
    if (scheme != std::string::npos && scheme > 0) {
      size_t auth_start = scheme + 3;
      size_t at = s.value.find('@', auth_start);
      size_t slash = s.value.find('/', auth_start);
      if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
        size_t colon = s.value.find(':', auth_start);
        if (colon != std::string::npos && colon < at) {
          std::string pass = s.value.substr(colon + 1, at - colon - 1);
          std::string decoded = url_decode(pass);
          add(s.name + "#password", pass);
          add(s.name + "#password", decoded);
        }
      }
    }
  }
  return out;
}

std::string KnownValueMasker::operator()(std::string_view text) const {
  if (secrets_.empty() || text.empty()) return std::string(text);
  if (!made_) {
    for (const KnownSecret& s : expand_known_secrets(secrets_, 1))
      for (LiteralVariant& v : literal_forms(s.value, /*with_base64=*/true))
        forms_.push_back(std::move(v.bytes));
    made_ = true;
  }
  std::vector<bool> covered(text.size(), false);
  bool any = false;
  for (const std::string& form : forms_) {
    for (size_t at = text.find(form); at != std::string_view::npos; at = text.find(form, at + 1)) {
      std::fill(covered.begin() + static_cast<std::ptrdiff_t>(at),
                covered.begin() + static_cast<std::ptrdiff_t>(at + form.size()), true);
      any = true;
    }
  }
  if (!any) return std::string(text);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (!covered[i]) {
      out += text[i];
    } else if (i == 0 || !covered[i - 1]) {
      out += "[REDACTED:known-secret]";
    }
  }
  return out;
}

std::string mask_known_values(std::string_view text, const std::vector<KnownSecret>& secrets) {
  return KnownValueMasker(secrets)(text);
}

}  // namespace scrub
