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

// bsandbox's own failure, as opposed to the command's exit code.
inline constexpr int kExitOwnError = 125;

// The descriptor messages go to: $BSANDBOX_DIAG_FD if it names an open one
// above 2, else stderr.
int diag_fd();
// "bsandbox: LINE".
void say(const std::string& line);
// "bsandbox: error: LINE"; returns kExitOwnError.
int error_exit(const std::string& line);
// Before starting a command whose output is captured: its tree (and a
// bsandbox-wrap inside it) gets the real stderr as $BSANDBOX_DIAG_FD.
void hand_down_diagnostics();

}  // namespace bsandbox
