// save.h: what a finished run (a miss) is stored as: a CacheEntry.
//
// Its outputs: each path it produced under the root as the run left it (a
// file's content put in the store, a symlink's target, a directory's mode,
// a deletion), with the order of their modification times. Its inputs: each
// path classify() found it depended on, as the run saw it: a path it did not
// change as it is now (and refused if it changed while the run ran, since
// the key would hold a state the run never saw), one it changed as the look
// before the run found it (snapshot.h). Its stdout, stderr and record are
// put in the store too. An entry whose outputs name the root (gcc -g's
// DW_AT_comp_dir) hits only under that root; others hit in any checkout.
// The strong key is a digest of every input as it must look.
#pragma once

#include <cstdint>
#include <string>

#include "sandbox/base/result.h"
#include "sandbox/cache/request.h"
#include "sandbox/cache/classify.h"
#include "sandbox/cache/look.h"
#include "sandbox/core/provenance.h"
#include "sandbox/storage/store.h"

namespace bsandbox {

namespace pb {
class CacheEntry;
}  // namespace pb

// Builds the entry of run rec (a miss of req, split by classify into c;
// out and err hold what it printed; it took run_ns) into *e, putting its
// files in store and adding the bytes the store lacked to *added. Returns
// "" when built, with its strong key in *strong, else why the run cannot be
// stored.
Result<std::string> build_entry(const CacheRequest& req, const Record& rec, const Classified& c, int out, int err,
                                int64_t run_ns, Store& store, const HashMemo& memo, pb::CacheEntry* e,
                                Digest* strong, uint64_t* added);

// The strong key of an entry: every input as it must look, their times'
// order, and the root for an entry that names it (root_keyed).
Digest strong_key_of(const pb::CacheEntry& e);

// Stores fd's content, adding its size to *added if the store lacked it.
Result<Digest> put_counted(Store& store, int fd, const std::string& what, uint64_t* added);

}  // namespace bsandbox
