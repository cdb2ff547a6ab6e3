#include "patterns/rule_codec.h"

#include <cstdint>
#include <cstring>

namespace scrub {

namespace {

// The version is part of the magic: a layout change bumps it.
constexpr std::string_view kCodecMagic = "SCRUBRS4";

class Writer {
 public:
  void u8(uint8_t v) { out_ += static_cast<char>(v); }
  void u32(uint32_t v) { out_.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void i32(int32_t v) { u32(static_cast<uint32_t>(v)); }
  void f64(double v) { out_.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void str(const std::string& s) {
    u32(static_cast<uint32_t>(s.size()));
    out_ += s;
  }
  void strs(const std::vector<std::string>& v) {
    u32(static_cast<uint32_t>(v.size()));
    for (const auto& s : v) str(s);
  }
  template <typename E>
  void opt(const std::optional<E>& v) {
    u8(v ? 1 : 0);
    if (v) u8(static_cast<uint8_t>(*v));
  }
  void allowlist(const Allowlist& a) {
    str(a.description);
    u8(a.condition_and);
    u8(static_cast<uint8_t>(a.regex_target));
    strs(a.regexes);
    strs(a.stopwords);
    strs(a.target_rules);
    u8(a.has_paths_or_commits);
  }
  void allowlists(const std::vector<Allowlist>& v) {
    u32(static_cast<uint32_t>(v.size()));
    for (const auto& a : v) allowlist(a);
  }
  void rule(const Rule& r) {
    str(r.id);
    str(r.description);
    str(r.regex);
    str(r.prefilter);
    u8(r.prefilter_whole_unit);
    str(r.required_run);
    i32(r.secret_group);
    f64(r.entropy);
    strs(r.keywords);
    allowlists(r.allowlists);
    opt(r.mask);
    opt(r.action);
    u8(static_cast<uint8_t>(r.severity));
    u8(r.generic);
    i32(r.keep_prefix);
    u32(static_cast<uint32_t>(r.examples.size()));
    for (const auto& e : r.examples) {
      str(e.text);
      str(e.secret);
    }
    strs(r.negatives);
    str(r.origin);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  Reader(std::string_view in, std::string_view origin) : in_(in), origin_(origin) {}

  [[noreturn]] void fail(const char* why) const {
    throw ConfigError(std::string(origin_) + ": not a valid packed rule set (" + why + ")");
  }
  void need(size_t n) const {
    if (in_.size() - pos_ < n) fail("truncated");
  }
  uint8_t u8() {
    need(1);
    return static_cast<uint8_t>(in_[pos_++]);
  }
  bool flag() {
    uint8_t v = u8();
    if (v > 1) fail("bad flag");
    return v == 1;
  }
  template <typename T>
  T fixed() {  // a fixed-size value, as Writer stored it
    need(sizeof(T));
    T v;
    std::memcpy(&v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  uint32_t u32() { return fixed<uint32_t>(); }
  int32_t i32() { return static_cast<int32_t>(u32()); }
  double f64() { return fixed<double>(); }
  // A count of items that take at least `min_bytes` each: bounded by what is left, so a corrupt
  // count cannot ask for a huge allocation.
  size_t count(size_t min_bytes) {
    uint32_t n = u32();
    if (n > (in_.size() - pos_) / min_bytes) fail("count past the end");
    return n;
  }
  std::string str() {
    uint32_t n = u32();
    need(n);
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  std::vector<std::string> strs() {
    std::vector<std::string> v(count(4));
    for (auto& s : v) s = str();
    return v;
  }
  template <typename E>
  E enumeration(uint8_t last) {
    uint8_t v = u8();
    if (v > last) fail("enum out of range");
    return static_cast<E>(v);
  }
  template <typename E>
  std::optional<E> opt(uint8_t last) {
    if (!flag()) return std::nullopt;
    return enumeration<E>(last);
  }
  Allowlist allowlist() {
    Allowlist a;
    a.description = str();
    a.condition_and = flag();
    a.regex_target = enumeration<RegexTarget>(static_cast<uint8_t>(RegexTarget::kLine));
    a.regexes = strs();
    a.stopwords = strs();
    a.target_rules = strs();
    a.has_paths_or_commits = flag();
    return a;
  }
  std::vector<Allowlist> allowlists() {
    std::vector<Allowlist> v(count(16));
    for (auto& a : v) a = allowlist();
    return v;
  }
  Rule rule() {
    Rule r;
    r.id = str();
    r.description = str();
    r.regex = str();
    r.prefilter = str();
    r.prefilter_whole_unit = flag();
    r.required_run = str();
    r.secret_group = i32();
    r.entropy = f64();
    r.keywords = strs();
    r.allowlists = allowlists();
    r.mask = opt<MaskStyle>(static_cast<uint8_t>(MaskStyle::kHash));
    r.action = opt<Action>(static_cast<uint8_t>(Action::kAlert));
    r.severity = enumeration<Severity>(static_cast<uint8_t>(Severity::kCritical));
    r.generic = flag();
    r.keep_prefix = i32();
    r.examples.resize(count(8));
    for (auto& e : r.examples) {
      e.text = str();
      e.secret = str();
    }
    r.negatives = strs();
    r.origin = str();
    return r;
  }
  RuleSet set() {
    need(kCodecMagic.size());
    if (in_.substr(0, kCodecMagic.size()) != kCodecMagic) fail("wrong magic or version");
    pos_ = kCodecMagic.size();
    RuleSet s;
    s.rules.resize(count(48));
    for (auto& r : s.rules) r = rule();
    s.global_allowlists = allowlists();
    s.warnings = strs();
    if (pos_ != in_.size()) fail("trailing bytes");
    return s;
  }

 private:
  std::string_view in_;
  std::string_view origin_;
  size_t pos_ = 0;
};

}  // namespace

std::string encode_rule_set(const RuleSet& set) {
  Writer w;
  for (char c : kCodecMagic) w.u8(static_cast<uint8_t>(c));
  w.u32(static_cast<uint32_t>(set.rules.size()));
  for (const auto& r : set.rules) w.rule(r);
  w.allowlists(set.global_allowlists);
  w.strs(set.warnings);
  return w.take();
}

RuleSet decode_rule_set(std::string_view bytes, std::string_view origin) {
  return Reader(bytes, origin).set();
}

}  // namespace scrub
