// output_capture.h: the command's stdout and stderr, passed through to
// bsandbox's own as they come and kept in memory files, so that a cached
// run can replay them.
//
// Each stream is a pipe drained by a thread that writes what it reads to
// the original fd (if that fails, e.g. a closed pipe, it keeps capturing)
// and to a memfd. finish() closes bsandbox's write ends and waits for the
// threads: once the whole command tree has exited (the supervisor waits for
// it), every writer is gone and the pipes reach EOF.
#pragma once

#include <memory>

#include "sandbox/base/result.h"

namespace bsandbox {

class OutputCapture {
 public:
  static Result<OutputCapture> start();
  OutputCapture(OutputCapture&&) noexcept;
  OutputCapture& operator=(OutputCapture&&) noexcept;
  ~OutputCapture();

  // Give these to the command as its fds 1 and 2.
  int child_out() const;
  int child_err() const;
  void finish();
  // The captured bytes (valid after finish()).
  int out_file() const;
  int err_file() const;

 private:
  struct Impl;
  explicit OutputCapture(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace bsandbox
