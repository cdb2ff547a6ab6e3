# Turns a file into a C++ source defining scrub::detail::kBuiltinRulesToml (bytes as hex, so any
# content is safe to embed).
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR n "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
file(WRITE ${OUT} "// Generated from patterns/builtin.toml; do not edit.\n#include <cstddef>\nnamespace scrub::detail {\nextern const unsigned char kBuiltinRulesToml[] = {${body} 0x00};\nextern const std::size_t kBuiltinRulesTomlSize = ${n};\n}\n")
