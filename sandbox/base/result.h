// result.h: how bsandbox returns errors without exceptions.
//
// Result<T> is tl::expected<T, Error> (Debian's libexpected-dev), the C++23
// std::expected before C++23; switching later is a change to this file only.
// An Error is one line of text meant for a person: it names the file or
// object and the cause ("/tmp/x.json: Permission denied"), because that line
// is what the CLI prints.
#pragma once

#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace bsandbox {

struct Error {
  std::string message;
};

template <class T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(std::string message) {
  return tl::unexpected<Error>(Error{std::move(message)});
}

// "what: strerror(errno_value)".
tl::unexpected<Error> fail_errno(std::string_view what, int errno_value);

}  // namespace bsandbox
