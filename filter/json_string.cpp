#include "filter/json_string.h"

#include <cstring>

namespace scrub {

namespace {

int hex4(std::string_view s, size_t i) {
  if (i + 4 > s.size()) return -1;
  int v = 0;
  for (size_t k = i; k < i + 4; ++k) {
    char c = s[k];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
    else return -1;
  }
  return v;
}

void put_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace

bool json_unescape(std::string_view raw, std::string& decoded, std::vector<uint32_t>* offs) {
  decoded.clear();
  decoded.reserve(raw.size());
  if (offs) {
    offs->clear();
    offs->reserve(raw.size() + 1);
  }
  size_t i = 0;
  auto fail = [&] {
    if (offs) offs->push_back(static_cast<uint32_t>(raw.size()));
    return false;
  };
  while (i < raw.size()) {
    // Copy the run up to the next backslash in one go.
    const void* bs = std::memchr(raw.data() + i, '\\', raw.size() - i);
    size_t run_end = bs ? static_cast<size_t>(static_cast<const char*>(bs) - raw.data()) : raw.size();
    if (run_end > i) {
      decoded.append(raw.data() + i, run_end - i);
      if (offs)
        for (size_t k = i; k < run_end; ++k) offs->push_back(static_cast<uint32_t>(k));
      i = run_end;
      if (i >= raw.size()) break;
    }
    size_t before = decoded.size();
    if (i + 1 >= raw.size()) return fail();
    const size_t from = i;
    switch (raw[i + 1]) {
      case '"': decoded += '"'; i += 2; break;
      case '\\': decoded += '\\'; i += 2; break;
      case '/': decoded += '/'; i += 2; break;
      case 'b': decoded += '\b'; i += 2; break;
      case 'f': decoded += '\f'; i += 2; break;
      case 'n': decoded += '\n'; i += 2; break;
      case 'r': decoded += '\r'; i += 2; break;
      case 't': decoded += '\t'; i += 2; break;
      case 'u': {
        int v = hex4(raw, i + 2);
        if (v < 0) return fail();
        uint32_t cp = static_cast<uint32_t>(v);
        i += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          int lo = (i + 1 < raw.size() && raw[i] == '\\' && raw[i + 1] == 'u') ? hex4(raw, i + 2) : -1;
          if (lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (static_cast<uint32_t>(lo) - 0xDC00);
            i += 6;
          } else {
            cp = 0xFFFD;
          }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          cp = 0xFFFD;
        }
        put_utf8(cp, decoded);
        break;
      }
      default:
        return fail();
    }
    if (offs)
      for (size_t k = before; k < decoded.size(); ++k) offs->push_back(static_cast<uint32_t>(from));
  }
  if (offs) offs->push_back(static_cast<uint32_t>(raw.size()));
  return true;
}

void json_escape_append(std::string_view s, std::string& out) {
  static const char kHex[] = "0123456789abcdef";
  out.reserve(out.size() + s.size() + 16);
  size_t run = 0;  // start of the pending run of bytes that need no escape
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
  }
  out.append(s.data() + run, s.size() - run);
}

}  // namespace scrub
