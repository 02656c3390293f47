// json.h: JSON string literals for byte strings.
//
// Paths and argv are bytes. The provenance spec writes them as JSON strings
// using Python's "surrogateescape": valid UTF-8 passes through, and each byte
// that is not part of a valid UTF-8 sequence becomes the lone surrogate
// U+DC00+byte (so 0xFF is written \udcff). Python readers recover the exact
// bytes with os.fsencode(). Validity follows the Unicode standard's
// well-formed table (no overlongs, no encoded surrogates, nothing above
// U+10FFFF), which is also what Python's decoder accepts.
#pragma once

#include <string>
#include <string_view>

namespace bsandbox::json {

// Appends bytes to out as a quoted JSON string.
void append_string(std::string& out, std::string_view bytes);

// Length of the well-formed UTF-8 sequence at the start of s, or 0 if it does
// not start with one.
size_t utf8_sequence_length(std::string_view s);

}  // namespace bsandbox::json
