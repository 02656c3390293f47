// event_decoder_test.cpp: kernel records in, events out; corrupt records are
// errors, never partial events.
#include "sandbox/backend/ebpf/event_decoder.h"

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

using namespace bsandbox;

namespace {

// Builds a record the way the kernel programs do.
class RecordBuilder {
 public:
  template <class Fixed>
  explicit RecordBuilder(const Fixed& fixed) {
    bytes_.resize(sizeof(Fixed));
    std::memcpy(bytes_.data(), &fixed, sizeof(Fixed));
  }
  RecordBuilder& str(uint8_t kind, std::string_view s, uint8_t flags = 0) {
    bs_str h{kind, flags, 0, static_cast<uint32_t>(s.size())};
    size_t off = bytes_.size();
    bytes_.resize(off + sizeof h + ((s.size() + 7) & ~size_t{7}));
    std::memcpy(bytes_.data() + off, &h, sizeof h);
    std::memcpy(bytes_.data() + off + sizeof h, s.data(), s.size());
    hdr().nstr++;
    return *this;
  }
  std::vector<uint8_t> done() {
    hdr().size = static_cast<uint32_t>(bytes_.size());
    return bytes_;
  }
  bs_hdr& hdr() { return *reinterpret_cast<bs_hdr*>(bytes_.data()); }

 private:
  std::vector<uint8_t> bytes_;
};

bs_hdr header(uint8_t type) {
  bs_hdr h{};
  h.abi = BS_ABI_VERSION;
  h.type = type;
  h.tgid = 42;
  h.tid = 43;
  h.start = 1000;
  h.time = 2000;
  return h;
}

}  // namespace

TEST_CASE("a file record decodes with its strings") {
  bs_file f{};
  f.hdr = header(BS_EV_FILE);
  f.ret = 3;
  f.flags = 0101;
  f.dirfd1 = 7;
  f.dirfd2 = -100;
  f.sys = BS_SYS_OPENAT;
  f.result_flags = BS_RF_CREATED | BS_RF_RESOLVED;
  f.result_magic = 0xef53;
  auto rec = RecordBuilder(f)
                 .str(BS_STR_PATH1, "out.o")
                 .str(BS_STR_DIR1, "/work/build")
                 .str(BS_STR_RESULT, "/work/build/out.o")
                 .str(BS_STR_CWD, "/work", BS_SF_TRUNCATED)
                 .done();
  auto ev = decode_record(rec.data(), rec.size());
  REQUIRE(ev);
  auto* e = std::get_if<FileEvent>(&*ev);
  REQUIRE(e);
  CHECK(e->proc == ProcessKey{42, 1000});
  CHECK(e->tid == 43);
  CHECK(e->time == 2000);
  CHECK(e->sys == BS_SYS_OPENAT);
  CHECK(e->ret == 3);
  CHECK(e->flags == 0101);
  CHECK(e->dirfd1 == 7);
  CHECK(e->path1->path == "out.o");
  CHECK(e->dir1->path == "/work/build");
  CHECK(e->result->path == "/work/build/out.o");
  CHECK(e->cwd->path == "/work");
  CHECK(e->cwd->truncated());
  CHECK_FALSE(e->path2);
  CHECK(e->result_flags == (BS_RF_CREATED | BS_RF_RESOLVED));
  CHECK(e->result_magic == 0xef53);
}

TEST_CASE("fork, exec and exit records decode") {
  bs_fork fk{};
  fk.hdr = header(BS_EV_FORK);
  fk.parent_tgid = 41;
  fk.parent_start = 900;
  auto rf = RecordBuilder(fk).str(BS_STR_CWD, "/home").done();
  auto ef = decode_record(rf.data(), rf.size());
  REQUIRE(ef);
  auto& fe = std::get<ForkEvent>(*ef);
  CHECK(fe.parent == ProcessKey{41, 900});
  CHECK(fe.cwd->path == "/home");

  bs_exec ex{};
  ex.hdr = header(BS_EV_EXEC);
  ex.old_tid = 44;
  ex.flags = BS_EXEC_ELF32;
  std::string argv("cc\0-c\0a.c", 9);
  auto rx = RecordBuilder(ex)
                .str(BS_STR_FILENAME, "./s.sh")
                .str(BS_STR_INTERP, "/bin/sh")
                .str(BS_STR_EXE, "/usr/bin/dash")
                .str(BS_STR_LDSO, "/usr/lib/ld.so")
                .str(BS_STR_ARGV, argv)
                .done();
  auto exv = decode_record(rx.data(), rx.size());
  REQUIRE(exv);
  auto& xe = std::get<ExecEvent>(*exv);
  CHECK(xe.old_tid == 44);
  CHECK(xe.elf32);
  CHECK(xe.filename == "./s.sh");
  CHECK(xe.interp == "/bin/sh");
  CHECK(xe.exe->path == "/usr/bin/dash");
  CHECK(xe.ldso->path == "/usr/lib/ld.so");
  CHECK(xe.argv == argv);

  bs_exit x{};
  x.hdr = header(BS_EV_EXIT);
  x.status = 0x300;
  auto rq = RecordBuilder(x).done();
  auto qv = decode_record(rq.data(), rq.size());
  REQUIRE(qv);
  CHECK(std::get<ExitEvent>(*qv).wait_status == 0x300);
}

TEST_CASE("the dropped-string flag reaches the event") {
  bs_file f{};
  f.hdr = header(BS_EV_FILE);
  f.hdr.flags = BS_HF_STRING_DROPPED;
  f.sys = BS_SYS_STAT;
  auto rec = RecordBuilder(f).done();
  auto ev = decode_record(rec.data(), rec.size());
  REQUIRE(ev);
  CHECK(base_of(*ev).strings_dropped);
}

TEST_CASE("corrupt records are rejected with a message") {
  bs_file f{};
  f.hdr = header(BS_EV_FILE);
  f.sys = BS_SYS_OPENAT;
  auto good = RecordBuilder(f).str(BS_STR_PATH1, "abc").done();
  REQUIRE(decode_record(good.data(), good.size()));

  SUBCASE("shorter than a header") { CHECK_FALSE(decode_record(good.data(), 10)); }
  SUBCASE("wrong ABI version") {
    auto bad = good;
    bad[0] = BS_ABI_VERSION + 1;
    auto ev = decode_record(bad.data(), bad.size());
    REQUIRE_FALSE(ev);
    CHECK(ev.error().message.find("ABI version") != std::string::npos);
  }
  SUBCASE("header claims more bytes than arrived") {
    CHECK_FALSE(decode_record(good.data(), good.size() - 8));
  }
  SUBCASE("unknown type") {
    auto bad = good;
    bad[1] = 99;
    CHECK_FALSE(decode_record(bad.data(), bad.size()));
  }
  SUBCASE("more strings than present") {
    auto bad = good;
    reinterpret_cast<bs_hdr*>(bad.data())->nstr = 3;
    CHECK_FALSE(decode_record(bad.data(), bad.size()));
  }
  SUBCASE("string longer than the record") {
    auto bad = good;
    reinterpret_cast<bs_str*>(bad.data() + sizeof(bs_file))->len = 4000;
    CHECK_FALSE(decode_record(bad.data(), bad.size()));
  }
  SUBCASE("string kind that does not belong to the type") {
    auto bad = RecordBuilder(f).str(BS_STR_ARGV, "x").done();
    CHECK_FALSE(decode_record(bad.data(), bad.size()));
  }
  SUBCASE("unknown syscall kind") {
    bs_file g = f;
    g.sys = BS_SYS_COUNT;
    auto bad = RecordBuilder(g).done();
    CHECK_FALSE(decode_record(bad.data(), bad.size()));
  }
  SUBCASE("record shorter than its fixed part") {
    bs_hdr h = header(BS_EV_FILE);
    h.size = sizeof h;
    CHECK_FALSE(decode_record(&h, sizeof h));
  }
}
