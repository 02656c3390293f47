// record_printer.h: a provenance record for a person to read.
//
// print_tree() lists processes indented by parentage, each followed by its
// files and ops; summary_line() is the one-line digest that `bsandbox exec`
// prints when it writes no record, and that `bsandbox show` ends with.
// Bytes a terminal would misrender (control characters, invalid UTF-8) are
// shown as \n, \t or \xNN.
#pragma once

#include <string>

#include "sandbox/core/provenance.h"
#include "sandbox/base/text.h"

namespace bsandbox {

std::string summary_line(const Record& record);
std::string print_tree(const Record& record);

}  // namespace bsandbox
