// event_decoder.h: turns one ring-buffer record of the kernel programs into
// an Event, checking every length on the way.
#pragma once

#include <cstddef>

#include "sandbox/core/event.h"
#include "sandbox/base/result.h"

namespace bsandbox {

// The event in data[0, size). Its strings are views into data.
Result<Event> decode_record(const void* data, size_t size);

}  // namespace bsandbox
