// entry_test.cpp: entries on disk: sealed in a private cache, signed in a
// shared one; what is refused as foreign (left alone) and what as damaged;
// the HMAC itself; writing an entry where lookups find it and walking them
// all.
#include "sandbox/cache/entry.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

#include "tests/cache/cache_fixture.h"

using namespace bsandbox;
using namespace bsandbox::testing;

namespace {

std::string hex(std::string_view raw) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

pb::CacheEntry sample(int exit_code) {
  pb::CacheEntry e;
  e.set_exit_code(exit_code);
  e.add_argv("cc");
  return e;
}

}  // namespace

TEST_CASE("hmac is HMAC-SHA256 (RFC 4231, case 2); same_secret compares whole secrets") {
  CHECK(hex(hmac("Jefe", "what do ya want for nothing?")) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(same_secret("abc", "abc"));
  CHECK_FALSE(same_secret("abc", "abd"));
  CHECK_FALSE(same_secret("abc", "abcd"));
}

TEST_CASE("read_entry: sealed and signed entries read back; the other kind is foreign, a flipped byte damaged") {
  TempDir t("entry");
  std::string key = "0123456789abcdef";
  std::string payload = sample(3).SerializeAsString();
  put_file(t / "sealed", seal_entry("", payload));
  put_file(t / "signed", seal_entry(key, payload));
  CHECK(get_file(t / "sealed").substr(0, 4) == "BSC1");
  CHECK(get_file(t / "signed").substr(0, 4) == "BSM1");
  bool foreign = true;
  auto e = read_entry(t.fd.get(), "sealed", "sealed", "", &foreign);
  REQUIRE(e);
  CHECK_FALSE(foreign);
  CHECK(e->exit_code() == 3);
  e = read_entry(t.fd.get(), "signed", "signed", key, &foreign);
  REQUIRE(e);
  CHECK_FALSE(foreign);
  CHECK(e->argv(0) == "cc");

  auto refused = read_entry(t.fd.get(), "signed", "signed", "", &foreign);  // a private cache
  REQUIRE_FALSE(refused);
  CHECK(foreign);
  CHECK(refused.error().message == "signed: a signed cache entry (of a cache shared with a key)");
  for (const char* other : {"sealed", "signed"}) {
    refused = read_entry(t.fd.get(), other, other, "another key, 16+", &foreign);
    REQUIRE_FALSE(refused);
    CHECK(foreign);
    CHECK(refused.error().message == std::string(other) + ": a cache entry not signed with this cache's key; ignored");
  }
  put_file(t / "short", "BSM1" + std::string(10, 'x'));  // too short to hold a signature
  CHECK_FALSE(read_entry(t.fd.get(), "short", "short", key, &foreign));
  CHECK(foreign);

  std::string bytes = get_file(t / "sealed");
  bytes.back() ^= 1;
  put_file(t / "flipped", bytes);
  auto damaged = read_entry(t.fd.get(), "flipped", "flipped", "", &foreign);
  REQUIRE_FALSE(damaged);
  CHECK_FALSE(foreign);
  CHECK(damaged.error().message.find("checksum mismatch") != std::string::npos);
  put_file(t / "garbage", seal_entry("", "\xff\xff\xff"));  // whole, but not an entry
  damaged = read_entry(t.fd.get(), "garbage", "garbage", "", &foreign);
  REQUIRE_FALSE(damaged);
  CHECK_FALSE(foreign);
  CHECK(damaged.error().message == "garbage: cache entry is damaged (does not parse)");
  CHECK_FALSE(read_entry(t.fd.get(), "missing", "missing", "", &foreign));
}

TEST_CASE("write_entry and walk_entries: WW/WEAK/STRONG; temporaries and foreign entries are not visited") {
  TempDir t("entry");
  REQUIRE(::mkdir((t / "entries").c_str(), 0755) == 0);
  UniqueFd entries(::open((t / "entries").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  Digest weak = hash_bytes("weak"), strong = hash_bytes("strong"), other = hash_bytes("other");
  auto n = write_entry(entries.get(), weak, strong, sample(1), "", 0755);
  REQUIRE(n);
  std::string dir = t / ("entries/" + weak.hex().substr(0, 2) + "/" + weak.hex());
  CHECK(*n == get_file(dir + "/" + strong.hex()).size());
  REQUIRE(write_entry(entries.get(), weak, other, sample(2), "", 0755));
  put_file(dir + "/.bsandbox.123.0", "a temporary being written");
  put_file(dir + "/signed", seal_entry("0123456789abcdef", sample(4).SerializeAsString()));
  put_file(dir + "/broken", "BSC1 and nothing sound");
  std::map<std::string, std::string> seen;  // name -> exit code or error
  auto walked = walk_entries(entries.get(), "C", "", [&](const std::string& rel, const struct stat&,
                                                         const Result<StoredEntry>& e) {
    std::string name = rel.substr(rel.rfind('/') + 1);
    if (e) {
      CHECK(e->name == name);
      CHECK(e->rel == rel);
    }
    seen[name] = e ? std::to_string(e->entry.exit_code()) : e.error().message;
  });
  REQUIRE(walked);
  REQUIRE(seen.size() == 3);
  CHECK(seen[strong.hex()] == "1");
  CHECK(seen[other.hex()] == "2");
  CHECK(seen["broken"].find("C/entries/" + weak.hex().substr(0, 2) + "/" + weak.hex() + "/broken: ") == 0);
}
