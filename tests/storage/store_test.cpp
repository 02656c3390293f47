// store_test.cpp: objects named by their SHA-256, stored once, verified on
// the way out.
#include "sandbox/storage/store.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include "tests/temp_dir.h"

using namespace bsandbox;
using bsandbox::testing::TempDir;
using bsandbox::testing::put_file;
using bsandbox::testing::get_file;

TEST_CASE("digests: the SHA-256 of the content, in hex and back") {
  CHECK(hash_bytes("abc").hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Digest d = hash_bytes("x");
  CHECK(Digest::from_hex(d.hex()) == d);
  CHECK(Digest::from_raw(d.raw()) == d);
  CHECK_FALSE(Digest::from_hex("zz"));
  CHECK_FALSE(Digest::from_hex(std::string(64, 'g')));
}

TEST_CASE("put stores once, restore copies out verified, a damaged object is refused") {
  TempDir t("store");
  auto store = Store::open(t.fd.get(), "objects", t / "objects");
  REQUIRE(store);
  put_file(t / "a", "content\n");
  UniqueFd a(::open((t / "a").c_str(), O_RDONLY));
  bool already = true;
  auto d = store->put(a.get(), "a", &already);
  REQUIRE(d);
  CHECK_FALSE(already);
  CHECK(*d == hash_bytes("content\n"));
  CHECK(store->contains(*d));
  auto again = store->put(a.get(), "a", &already);
  REQUIRE(again);
  CHECK(already);
  auto all = store->list();
  REQUIRE(all);
  CHECK(all->size() == 1);

  REQUIRE(store->restore(*d, t.fd.get(), "out", 0640));
  CHECK(get_file(t / "out") == "content\n");
  struct stat st;
  REQUIRE(::stat((t / "out").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);
  CHECK_FALSE(store->restore(*d, t.fd.get(), "out", 0640));  // never over an existing file

  std::string obj = t / ("objects/" + d->hex().substr(0, 2) + "/" + d->hex().substr(2));
  ::chmod(obj.c_str(), 0644);
  put_file(obj, "contenT\n");
  auto bad = store->restore(*d, t.fd.get(), "out2", 0644);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("corrupt") != std::string::npos);
  CHECK(::access((t / "out2").c_str(), F_OK) != 0);
  CHECK_FALSE(store->verify(*d));
  REQUIRE(store->remove(*d));
  CHECK_FALSE(store->contains(*d));
  auto missing = store->restore(*d, t.fd.get(), "out3", 0644);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message.find("missing") != std::string::npos);
}

TEST_CASE("a sparse file costs its data, in and out") {
  TempDir t("store");
  auto store = Store::open(t.fd.get(), "objects", t / "objects");
  REQUIRE(store);
  UniqueFd fd(::open((t / "sparse").c_str(), O_CREAT | O_RDWR, 0644));
  REQUIRE(::ftruncate(fd.get(), 512 << 20) == 0);
  REQUIRE(::pwrite(fd.get(), "z", 1, 300 << 20) == 1);
  auto d = store->put(fd.get(), "sparse");
  REQUIRE(d);
  CHECK(store->disk_bytes(*d) < (1 << 20));
  REQUIRE(store->restore(*d, t.fd.get(), "back", 0644));
  struct stat st;
  REQUIRE(::stat((t / "back").c_str(), &st) == 0);
  CHECK(st.st_size == (512 << 20));
  CHECK(st.st_blocks * 512 < (1 << 20));
  UniqueFd back(::open((t / "back").c_str(), O_RDONLY));
  auto h = hash_fd(back.get(), "back");
  REQUIRE(h);
  CHECK(*h == *d);
}

TEST_CASE("objects/ab is never followed as a symlink") {
  TempDir t("store"), elsewhere("elsewhere");
  auto store = Store::open(t.fd.get(), "objects", t / "objects");
  REQUIRE(store);
  put_file(t / "a", "attacker content\n");
  Digest d = hash_bytes("attacker content\n");
  std::string sub = t / ("objects/" + d.hex().substr(0, 2));
  REQUIRE(::symlink(elsewhere.path.c_str(), sub.c_str()) == 0);
  UniqueFd a(::open((t / "a").c_str(), O_RDONLY));
  auto put = store->put(a.get(), "a");
  REQUIRE_FALSE(put);
  CHECK(put.error().message.find("symlink") != std::string::npos);
  auto there = list_dir(elsewhere.fd.get(), elsewhere.path);
  REQUIRE(there);
  CHECK(there->empty());  // nothing was linked into the directory it names

  // An object planted there is not found through it either.
  put_file(elsewhere / d.hex().substr(2), "attacker content\n");
  CHECK_FALSE(store->contains(d));
  CHECK(store->disk_bytes(d) == 0);
  CHECK_FALSE(store->restore(d, t.fd.get(), "out", 0644));
  CHECK_FALSE(store->remove(d));
  CHECK(::access((elsewhere / d.hex().substr(2)).c_str(), F_OK) == 0);
}

TEST_CASE("a FIFO planted where an object belongs is refused at once, not waited on") {
  TempDir t("store");
  auto store = Store::open(t.fd.get(), "objects", t / "objects");
  REQUIRE(store);
  put_file(t / "a", "content\n");
  UniqueFd a(::open((t / "a").c_str(), O_RDONLY));
  auto d = store->put(a.get(), "a");
  REQUIRE(d);
  std::string object = t / ("objects/" + d->hex().substr(0, 2) + "/" + d->hex().substr(2));
  ::chmod(object.c_str(), 0644);
  REQUIRE(::unlink(object.c_str()) == 0);
  REQUIRE(::mkfifo(object.c_str(), 0644) == 0);  // nobody will ever write it
  auto read = store->read(*d);
  REQUIRE_FALSE(read);
  CHECK(read.error().message.find("not a regular file") != std::string::npos);
  CHECK_FALSE(store->verify(*d));
  CHECK_FALSE(store->restore(*d, t.fd.get(), "out", 0644));
}
