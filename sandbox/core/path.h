// path.h: lexical path arithmetic on byte strings.
//
// Paths on Linux are bytes, not text, so everything here works on
// std::string as bytes and never decodes. Normalisation is lexical, as the
// provenance spec asks: "." and empty components vanish, ".." removes the
// component before it (and stays at "/"), and the result has no trailing
// slash. Symlinks are not consulted; where the kernel told us the real target
// (successful opens and execs) the caller uses that instead.
#pragma once

#include <string>
#include <string_view>

namespace bsandbox::path {

// The normal form of an absolute path. A relative input is taken as
// relative to "/".
std::string normalize(std::string_view path);

// name resolved against base (an absolute directory) and normalised; an
// absolute name is normalised on its own.
std::string resolve(std::string_view base, std::string_view name);

// Whether path lies under prefix (equal, or prefix + "/" + more). Both must be
// normalised.
bool is_within(std::string_view path, std::string_view prefix);

// Whether a normalised path names kernel pseudo files that the spec allows
// us to leave out: /proc, /sys and /dev, except /dev/shm (a real tmpfs).
bool is_pseudo(std::string_view path);

}  // namespace bsandbox::path
