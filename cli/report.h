// report.h: bsandbox's own voice on stderr, the one place that writes
// "bsandbox: error: ...".
//
// Every command's failure is one line naming the file or object and the
// cause (a Result's Error) and exit status 125, which `bsandbox exec` keeps
// apart from the command's own codes. Messages go to $BSANDBOX_DIAG_FD when
// a capturing bsandbox handed its real stderr down that way (exec_command:
// a cached command's captured stderr must not include them).
#pragma once

#include <string>

namespace bsandbox {

// The descriptor messages go to: $BSANDBOX_DIAG_FD if it names an open one
// above 2, else stderr.
int diag_fd();
// "bsandbox: LINE".
void say(const std::string& line);
// "bsandbox: error: LINE"; returns kExitOwnError (exec_command.h).
int error_exit(const std::string& line);

}  // namespace bsandbox
