// result.cpp: the errno flavour of fail().
#include "sandbox/base/result.h"

#include <cstring>

namespace bsandbox {

tl::unexpected<Error> fail_errno(std::string_view what, int errno_value) {
  std::string message(what);
  message += ": ";
  message += std::strerror(errno_value);
  return fail(std::move(message));
}

}  // namespace bsandbox
