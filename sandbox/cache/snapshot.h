// snapshot.h: the look taken before a command runs, after a lookup missed.
//
// A run that looks at a path and then replaces it (`cc -o x.o` stat'ing
// x.o, sed -i, ranlib, `mv x.tmp x`) depended on the path as it was before
// it ran, and that state is gone once it has run. So before it runs, the
// paths it may replace are looked at: the outputs of its earlier runs (the
// entries under its weak key) and the paths its arguments name. save() keys
// what the run depended on of them from this look (InputFrom::kBefore), or
// refuses to store a run that depended on a path nobody looked at.
#pragma once

#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "sandbox/cache/look.h"

namespace bsandbox {

namespace pb {
class CacheEntry;
}  // namespace pb

// The paths argv's words name, resolved against cwd: arguments (`cp a b`),
// option values (`-o x.o`, `-ox.o`, `--output=x`, VAR=path) and the words
// of a shell command line (make's recipes arrive as `sh -c '...'`). argv[0]
// is not one. At most 4096 words are taken: a bound on odd command lines.
std::set<std::string> paths_named(const std::vector<std::string>& argv, const std::string& cwd);

// Looks at the paths a run of argv may replace under root (those named by
// its arguments, and the outputs of entries, its earlier runs) and adds
// their states to *before (not replacing one already there): metadata, and
// the content of a regular file up to 64 MiB.
void look_before(const std::vector<std::string>& argv, const std::string& cwd, const std::string& root,
                 const std::vector<pb::CacheEntry>& entries, const HashMemo& memo,
                 std::unordered_map<std::string, PathState>* before);

}  // namespace bsandbox
