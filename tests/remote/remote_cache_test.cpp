// remote_cache_test.cpp: two machines (two local caches, two roots) sharing
// results through the in-memory server of http_server.h: a run stored on
// one hits on the other; and what the server can do wrong (a changed blob,
// a missing one, an unsigned entry where signed ones are expected, errors,
// slowness) is a miss, with a warning where the user should know.
#include "sandbox/remote/remote_cache.h"

#include <doctest/doctest.h>

#include <chrono>

#include "sandbox/cache/cache.pb.h"
#include "sandbox/cache/entry.h"
#include "tests/cache/cache_fixture.h"
#include "tests/remote/http_server.h"

using namespace bsandbox;
using namespace bsandbox::testing;

namespace {

// A machine: a local cache and a checkout of the same tree at its own path.
struct Machine {
  TempDir t{"remote"};
  std::string root = t / "checkout";
  Result<Cache> cache = fail("");
  Machine() {
    REQUIRE(::mkdir(root.c_str(), 0755) == 0);
    put_file(root + "/in.c", "int x;\n");
    cache = Cache::open(t / "cache");
    REQUIRE(cache);
  }
  CacheRequest request() { return cache->prepare({"/bin/sh", "-c", "cc in.c"}, root, root, kEnv, false); }
  RemoteCache remote(const std::string& url, const std::string& key = "", bool upload = true) {
    RemoteOptions o;
    o.url = url;
    o.key = key;
    o.upload = upload;
    o.http.timeout_ms = 1000;
    o.http.connect_timeout_ms = 500;
    auto r = RemoteCache::open(o, *cache);
    REQUIRE(r);
    return std::move(*r);
  }
  // `cc in.c` as if it ran: read in.c, wrote out.o; stored and uploaded.
  pb::CacheEntry build_and_upload(RemoteCache& remote, std::vector<std::string>* warnings) {
    CacheRequest req = request();
    std::string why;
    std::vector<std::string> w;
    REQUIRE(cache->fetch(req, &why, &w));
    put_file(root + "/out.o", "object of " + get_file(root + "/in.c"));
    Run r;
    r.file(root + "/in.c", kOpRead).file(root + "/out.o", kOpCreate | kOpWrite);
    UniqueFd out = memfile("compiled\n"), err = memfile("");
    pb::CacheEntry stored;
    auto saved = cache->save(req, r.rec, r.priors(), out.get(), err.get(), 1000, &stored);
    REQUIRE(saved);
    REQUIRE(*saved == "");
    remote.upload(stored, warnings);
    return stored;
  }
  // `sh -c NAME` as if it ran: read in.c, wrote NAME.o holding content;
  // stored locally only.
  pb::CacheEntry store(const std::string& name, const std::string& content, mode_t mode = 0644) {
    CacheRequest req = cache->prepare({"/bin/sh", "-c", name}, root, root, kEnv, false);
    std::string why;
    std::vector<std::string> w;
    REQUIRE(cache->fetch(req, &why, &w));
    put_file(root + "/" + name + ".o", content, mode);
    REQUIRE(::chmod((root + "/" + name + ".o").c_str(), mode) == 0);
    Run r;
    r.file(root + "/in.c", kOpRead).file(root + "/" + name + ".o", kOpCreate | kOpWrite);
    UniqueFd out = memfile(""), err = memfile("");
    pb::CacheEntry stored;
    auto saved = cache->save(req, r.rec, r.priors(), out.get(), err.get(), 1000, &stored);
    REQUIRE(saved);
    REQUIRE(*saved == "");
    return stored;
  }
  // A lookup here: local, then remote, then local again (as exec does).
  std::optional<Cache::Hit> look(RemoteCache& remote, std::string* why, std::vector<std::string>* warnings) {
    CacheRequest req = request();
    auto hit = cache->fetch(req, why, warnings);
    REQUIRE(hit);
    if (*hit) return std::move(**hit);
    if (!remote.fetch(req, why, warnings)) return std::nullopt;
    hit = cache->fetch(req, why, warnings);
    REQUIRE(hit);
    REQUIRE(*hit);
    return std::move(**hit);
  }
};

std::vector<std::string> paths_under(HttpServer& s, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& [p, _] : s.objects())
    if (p.starts_with(prefix)) out.push_back(p);
  return out;
}

}  // namespace

TEST_CASE("a run stored on one machine hits on another, through the server") {
  HttpServer server;
  Machine a, b;
  auto ra = a.remote(server.url());
  std::vector<std::string> warnings;
  a.build_and_upload(ra, &warnings);
  CHECK(warnings.empty());
  CHECK(paths_under(server, "/ac/").size() == 2);   // the index and the entry
  CHECK(paths_under(server, "/cas/").size() == 5);  // out.o, stdout, record, entry, shapes

  auto rb = b.remote(server.url());
  std::string why;
  auto hit = b.look(rb, &why, &warnings);
  REQUIRE(hit);
  CHECK(warnings.empty());
  CHECK(hit->out == "compiled\n");
  CHECK(get_file(b.root + "/out.o") == "object of int x;\n");
  CacheStats s = b.cache->counters();
  CHECK(s.remote_hits == 1);
  CHECK(s.remote_bytes_down > 0);
  // What B brought counts toward its next gc as what A stored does: the
  // objects (out.o, stdout, the record), not the entry alone.
  uint64_t stored_at_a = a.cache->counters().bytes_since_gc;
  MESSAGE("bytes since gc: A ", stored_at_a, ", B ", s.bytes_since_gc);
  CHECK(s.bytes_since_gc + 64 >= stored_at_a);

  SUBCASE("an edited input misses on the other machine") {
    ::unlink((b.root + "/out.o").c_str());
    Machine c;
    put_file(c.root + "/in.c", "int y;\n");
    auto rc = c.remote(server.url());
    CHECK_FALSE(c.look(rc, &why, &warnings));
    CHECK(why.find("remote: no entry for the inputs as they are") != std::string::npos);
    CHECK(warnings.empty());
    CHECK(c.cache->counters().remote_misses == 1);
  }
  SUBCASE("a second machine's different result for other inputs is kept beside the first") {
    Machine c;
    put_file(c.root + "/in.c", "int y;\n");
    auto rc = c.remote(server.url());
    c.build_and_upload(rc, &warnings);
    CHECK(paths_under(server, "/ac/").size() == 3);  // one index, two entries (same shape)
    Machine d;
    auto rd = d.remote(server.url());
    REQUIRE(d.look(rd, &why, &warnings));
    CHECK(get_file(d.root + "/out.o") == "object of int x;\n");
  }
}

TEST_CASE("what a server holds is checked: changed or missing blobs miss") {
  HttpServer server;
  Machine a, b;
  auto ra = a.remote(server.url());
  std::vector<std::string> warnings;
  pb::CacheEntry e = a.build_and_upload(ra, &warnings);
  std::string object = "/cas/" + Digest::from_raw(e.outputs(0).content())->hex();
  REQUIRE(server.objects().count(object));
  auto rb = b.remote(server.url());
  std::string why;

  SUBCASE("a blob whose content is not its name is refused, with a warning") {
    server.set(object, "object of int evil;\n");
    CHECK_FALSE(b.look(rb, &why, &warnings));
    REQUIRE(warnings.size() == 1);
    CHECK_MESSAGE(warnings[0].find("does not match its digest") != std::string::npos, warnings[0]);
    CHECK(::access((b.root + "/out.o").c_str(), F_OK) != 0);
    CHECK_FALSE(server.objects().count(object));  // removed: the next upload sends it again
  }
  SUBCASE("a blob the server lost is a miss, not an error") {
    server.erase(object);
    CHECK_FALSE(b.look(rb, &why, &warnings));
    CHECK(warnings.empty());
    CHECK(why.find("missing on the server") != std::string::npos);
    CHECK(b.cache->counters().remote_errors == 0);
  }
}

TEST_CASE("with a key, entries not signed with it are ignored") {
  HttpServer server;
  Machine a, b;
  const std::string key = "a secret of sixteen bytes or more";
  auto ra = a.remote(server.url(), key);
  std::vector<std::string> warnings;
  pb::CacheEntry stored = a.build_and_upload(ra, &warnings);
  std::string why;

  SUBCASE("the same key hits") {
    auto rb = b.remote(server.url(), key);
    CHECK(b.look(rb, &why, &warnings));
    CHECK(warnings.empty());
  }
  SUBCASE("no key, or another, finds nothing (another key's entries live elsewhere)") {
    auto rb = b.remote(server.url());
    CHECK_FALSE(b.look(rb, &why, &warnings));
    auto rc = b.remote(server.url(), "another secret of sixteen bytes");
    CHECK_FALSE(b.look(rc, &why, &warnings));
    CHECK(warnings.empty());
  }
  SUBCASE("an entry rewritten by a writer without the key is ignored with a warning") {
    for (const auto& path : paths_under(server, "/ac/")) {
      reapi::ActionResult ar;
      REQUIRE(ar.ParseFromString(server.objects()[path]));
      for (auto& f : *ar.mutable_output_files()) {
        if (f.path() != ".bsandbox/entry") continue;
        pb::CacheEntry entry = stored;
        entry.mutable_outputs(0)->set_size(99);  // anything: it is not signed
        std::string forged = seal_entry("", entry.SerializeAsString());
        f.set_contents(forged);
        f.mutable_digest()->set_hash(hash_bytes(forged).hex());
        f.mutable_digest()->set_size_bytes(static_cast<int64_t>(forged.size()));
      }
      server.set(path, ar.SerializeAsString());
    }
    auto rb = b.remote(server.url(), key);
    CHECK_FALSE(b.look(rb, &why, &warnings));
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("not signed with this cache's key") != std::string::npos);
  }
}

TEST_CASE("with a key, a signed shapes list is not believed as an entry") {
  HttpServer server;
  Machine a, b;
  const std::string key = "a secret of sixteen bytes or more";
  auto ra = a.remote(server.url(), key);
  std::vector<std::string> warnings;
  a.build_and_upload(ra, &warnings);
  put_file(b.root + "/in.c", "int y;\n");  // the genuine entry cannot hit here
  CacheRequest req = b.request();
  std::string index = "/" + remote_layout::ac_path(remote_layout::index_key(remote_layout::key_id(key), req.weak));
  reapi::ActionResult ar;
  REQUIRE(ar.ParseFromString(server.objects()[index]));
  ar.mutable_output_files(0)->set_path(".bsandbox/entry");  // the signed shapes list, offered as an entry
  pb::Shapes shapes;
  // The shape, as the client reads it (the blob's payload after its signature).
  const std::string& blob = ar.output_files(0).contents();
  REQUIRE(shapes.ParseFromString(blob.substr(4 + 32)));
  TempDir hashes("hashes");
  HashMemo memo(hashes.fd.get(), "");
  auto probe = remote_layout::probe_now(shapes.shapes(0), b.root, memo);
  REQUIRE(probe);
  REQUIRE(*probe);
  server.set("/" + remote_layout::ac_path(remote_layout::entry_key(remote_layout::key_id(key), req.weak,
                                                                    shapes.shapes(0), **probe, b.root)),
             ar.SerializeAsString());
  auto rb = b.remote(server.url(), key);
  std::string why;
  CHECK_FALSE(b.look(rb, &why, &warnings));
}

TEST_CASE("a read-only client uploads nothing") {
  HttpServer server;
  Machine a;
  auto ra = a.remote(server.url(), "", /*upload=*/false);
  std::vector<std::string> warnings;
  a.build_and_upload(ra, &warnings);
  CHECK(server.puts == 0);
  CHECK(server.objects().empty());
}

TEST_CASE("a failing server costs one warning and is then left alone") {
  HttpServer server;
  Machine a;
  std::string why;
  std::vector<std::string> warnings;

  SUBCASE("errors") {
    server.fail_status = 500;
    auto ra = a.remote(server.url());
    CHECK_FALSE(a.look(ra, &why, &warnings));
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("HTTP 500") != std::string::npos);
    int asked = server.gets + server.heads;
    auto again = a.remote(server.url());  // another process of the build
    CHECK_FALSE(a.look(again, &why, &warnings));
    CHECK(warnings.size() == 1);
    CHECK(server.gets + server.heads == asked);
    CHECK(a.cache->counters().remote_errors == 1);
    again.health().new_build();  // the next build tries again, and warns again
    CHECK_FALSE(a.look(again, &why, &warnings));
    CHECK(warnings.size() == 2);
  }
  SUBCASE("refused credentials") {
    server.fail_status = 401;
    auto ra = a.remote(server.url());
    CHECK_FALSE(a.look(ra, &why, &warnings));
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("refused the credentials") != std::string::npos);
  }
  SUBCASE("garbage") {
    auto ra = a.remote(server.url());
    CacheRequest req = a.request();
    for (int i = 0; i < 1; ++i) server.set("/ac/" + remote_layout::index_key("unsigned", req.weak).hex(), "\xff\xff garbage");
    CHECK_FALSE(a.look(ra, &why, &warnings));
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("not an ActionResult") != std::string::npos);
  }
  SUBCASE("slowness is bounded by the timeout") {
    server.delay_ms = 3000;
    auto ra = a.remote(server.url());
    auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(a.look(ra, &why, &warnings));
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(2500));
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("imeout") != std::string::npos);
    server.delay_ms = 0;
  }
  SUBCASE("a server answering each request within its timeout, but slowly: the lookup has a budget") {
    Machine b;
    auto rb = b.remote(server.url());
    b.build_and_upload(rb, &warnings);  // an index and an entry to ask for
    REQUIRE(warnings.empty());
    server.delay_ms = 600;  // under the 1 s timeout
    RemoteOptions o = a.remote(server.url()).options();
    o.lookup_budget_ms = 1000;
    auto ra = RemoteCache::open(o, *a.cache);
    REQUIRE(ra);
    auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(a.look(*ra, &why, &warnings));
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(2000));  // index, entries: stop
    REQUIRE(warnings.size() == 1);
    CHECK_MESSAGE(warnings[0].find("a lookup took more than 1000 ms") != std::string::npos, warnings[0]);
    server.delay_ms = 0;
  }
  SUBCASE("nobody listening") {
    RemoteOptions o;
    o.url = "http://127.0.0.1:1";
    auto ra = RemoteCache::open(o, *a.cache);
    REQUIRE(ra);
    CHECK_FALSE(a.look(*ra, &why, &warnings));
    CHECK(warnings.size() == 1);
  }
}

TEST_CASE("an entry the server refuses, or the local cache lost a blob of, is dropped alone") {
  HttpServer server;
  Machine a;
  auto ra = a.remote(server.url());
  std::vector<std::string> warnings;
  std::vector<pb::CacheEntry> batch = {a.store("big", std::string(200000, 'b')), a.store("small", "small\n"),
                                       a.store("lost", "lost\n"), a.store("other", "other\n")};
  REQUIRE(a.cache->store().remove(*Digest::from_raw(batch[2].outputs(0).content())));
  server.max_put = 100000;
  using Sent = RemoteCache::Sent;
  auto sent = ra.upload(batch, &warnings);
  CHECK(sent == std::vector<Sent>{Sent::kDropped, Sent::kUploaded, Sent::kDropped, Sent::kUploaded});
  REQUIRE(warnings.size() == 1);
  CHECK_MESSAGE(warnings[0].find("2 entries not uploaded: ") != std::string::npos, warnings[0]);
  CHECK_MESSAGE(warnings[0].find("object missing from the store") != std::string::npos, warnings[0]);
  CHECK(a.cache->counters().remote_errors == 0);  // the server is well: not left alone
  CHECK(a.cache->counters().remote_uploads == 2);
  CHECK(ra.health().usable());
  // What went is whole: each of its entries' blobs is on the server; the
  // refused one's entry is not.
  auto held = server.objects();
  for (size_t i : {1, 3})
    CHECK(held.count("/cas/" + Digest::from_raw(batch[i].outputs(0).content())->hex()));
  CHECK_FALSE(held.count("/cas/" + Digest::from_raw(batch[0].outputs(0).content())->hex()));
  warnings.clear();
  CHECK(ra.upload(std::vector<pb::CacheEntry>{batch[0]}, &warnings) == std::vector<Sent>{Sent::kDropped});
  REQUIRE(warnings.size() == 1);
  CHECK_MESSAGE(warnings[0].find("1 entry not uploaded: the server refuses cas/") != std::string::npos, warnings[0]);
  CHECK_MESSAGE(warnings[0].find("HTTP 413") != std::string::npos, warnings[0]);
  // A failing server is not a refusal: every entry is for later.
  server.fail_status = 503;
  warnings.clear();
  sent = ra.upload(std::vector<pb::CacheEntry>{a.store("later", "later\n")}, &warnings);
  CHECK(sent == std::vector<Sent>{Sent::kLater});
  CHECK(a.cache->counters().remote_errors == 1);
}

TEST_CASE("a shapes list longer than this client writes is cut: each shape is a probe and a request") {
  HttpServer server;
  Machine a;
  auto ra = a.remote(server.url());
  CacheRequest req = a.request();
  pb::Shapes many;
  many.set_weak_key(std::string(req.weak.raw()));
  for (int i = 0; i < 200; ++i) {
    pb::Shape* s = many.add_shapes();
    pb::ShapeInput* in = s->add_inputs();
    in->set_path(a.root + "/file" + std::to_string(i));  // distinct shapes
    in->set_aspects(1);
  }
  std::string blob = seal_entry("", many.SerializeAsString());
  server.set("/cas/" + hash_bytes(blob).hex(), blob);
  server.set("/ac/" + remote_layout::index_key("unsigned", req.weak).hex(),
             remote_layout::index_result(blob).SerializeAsString());
  std::string why;
  std::vector<std::string> warnings;
  int before = server.gets;
  CHECK_FALSE(a.look(ra, &why, &warnings));
  CHECK(warnings.empty());
  CHECK(server.gets - before <= 1 + static_cast<int>(remote_layout::kMaxShapes));
}

TEST_CASE("an entry that makes a setuid or setgid file is never taken from a server") {
  HttpServer server;
  Machine a, b;
  auto ra = a.remote(server.url());
  std::vector<std::string> warnings;
  for (mode_t mode : {04755, 02755, 0755}) {
    std::string name = "tool" + std::to_string(mode);
    REQUIRE(ra.upload(a.store(name, "#!/bin/sh\n", mode), &warnings));
    auto rb = b.remote(server.url());
    CacheRequest req = b.cache->prepare({"/bin/sh", "-c", name}, b.root, b.root, kEnv, false);
    std::string why;
    bool hit = rb.fetch(req, &why, &warnings);
    CHECK_MESSAGE(hit == (mode == 0755), why);
    if (mode != 0755) CHECK_MESSAGE(why.find("setuid or setgid, which is never taken from a server") != std::string::npos, why);
  }
  CHECK(warnings.empty());
}

TEST_CASE("a shared local cache takes from a remote only if the remote is signed too") {
  HttpServer server;
  TempDir t("remote");
  auto shared = Cache::open(t / "cache", "a shared secret of 16+ bytes");
  REQUIRE(shared);
  RemoteOptions o;
  o.url = server.url();
  auto unsigned_remote = RemoteCache::open(o, *shared);
  REQUIRE_FALSE(unsigned_remote);
  CHECK(unsigned_remote.error().message.find("--cache-remote-key") != std::string::npos);
  o.key = "the remote's secret, 16+ bytes";
  CHECK(RemoteCache::open(o, *shared));
}

TEST_CASE("a build's manifest: the next build of the same command fetches what it used, ahead") {
  HttpServer server;
  Machine a, b;
  const std::string key = "a secret of sixteen bytes or more";
  auto ra = a.remote(server.url(), key);
  std::vector<std::string> warnings;
  std::vector<pb::CacheEntry> used{a.build_and_upload(ra, &warnings), a.store("second", "two\n"),
                                   a.store("third", "three\n")};
  for (size_t i = 1; i < used.size(); ++i) REQUIRE(ra.upload(used[i], &warnings));
  Digest build = remote_layout::build_key({"make"}, "/src", "/src");
  REQUIRE(ra.publish(build, used, &warnings));
  CHECK(warnings.empty());
  auto never = [] { return false; };

  SUBCASE("another machine takes every entry, then hits locally, asking the server nothing") {
    auto rb = b.remote(server.url(), key);
    CHECK(rb.prefetch(build, never, &warnings) == 3);
    CHECK(warnings.empty());
    CacheRequest req = b.request();
    std::string why;
    auto hit = b.cache->fetch(req, &why, &warnings);
    REQUIRE(hit);
    REQUIRE(*hit);
    CHECK(get_file(b.root + "/out.o") == "object of int x;\n");
    CacheStats s = b.cache->counters();
    CHECK(s.remote_prefetched == 3);
    CHECK(s.remote_hits == 0);
    CHECK(rb.prefetch(build, never, &warnings) == 0);  // here already
  }
  SUBCASE("another build, or another key, has no manifest") {
    auto rb = b.remote(server.url(), key);
    CHECK(rb.prefetch(remote_layout::build_key({"make", "all"}, "/src", "/src"), never, &warnings) == 0);
    CHECK(rb.prefetch(remote_layout::build_key({"make"}, "/elsewhere", "/elsewhere"), never, &warnings) == 0);
    auto rc = b.remote(server.url());
    CHECK(rc.prefetch(build, never, &warnings) == 0);
    CHECK(warnings.empty());
  }
  SUBCASE("a manifest rewritten by a writer without the key is ignored with a warning") {
    std::string at = "/" + remote_layout::ac_path(remote_layout::manifest_key(remote_layout::key_id(key), build));
    reapi::ActionResult ar;
    REQUIRE(ar.ParseFromString(server.objects()[at]));
    std::string forged = seal_entry("", ar.output_files(0).contents().substr(4 + 32));
    ar.mutable_output_files(0)->set_contents(forged);
    ar.mutable_output_files(0)->mutable_digest()->set_hash(hash_bytes(forged).hex());
    ar.mutable_output_files(0)->mutable_digest()->set_size_bytes(static_cast<int64_t>(forged.size()));
    server.set(at, ar.SerializeAsString());
    auto rb = b.remote(server.url(), key);
    CHECK(rb.prefetch(build, never, &warnings) == 0);
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("a manifest not signed with this cache's key") != std::string::npos);
  }
  SUBCASE("an entry gone from the server is skipped, the others are taken") {
    CacheRequest req = a.request();
    for (const auto& path : paths_under(server, "/ac/")) {
      reapi::ActionResult ar;
      REQUIRE(ar.ParseFromString(server.objects()[path]));
      auto entry = remote_layout::output_named(ar, remote_layout::kEntryPath);
      pb::CacheEntry e;
      if (entry && entry->inlined && e.ParseFromString(entry->inlined->substr(4 + 32)) && e.argv(2) == "cc in.c")
        server.erase(path);
    }
    auto rb = b.remote(server.url(), key);
    CHECK(rb.prefetch(build, never, &warnings) == 2);
    CHECK(warnings.empty());
  }
  auto ac_of = [&](const pb::CacheEntry& e) {
    return "/" + remote_layout::ac_path(remote_layout::entry_key(remote_layout::key_id(key),
                                                                 *Digest::from_raw(e.weak_key()),
                                                                 remote_layout::shape_of(e), remote_layout::probe_of(e),
                                                                 e.root()));
  };
  SUBCASE("an entry replayed under another's name is not taken; garbage in its place only skips it") {
    server.set(ac_of(used[1]), server.objects()[ac_of(used[0])]);
    server.set(ac_of(used[2]), "not an ActionResult");
    auto rb = b.remote(server.url(), key);
    CHECK(rb.prefetch(build, never, &warnings) == 1);
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("not an ActionResult") != std::string::npos);
    CHECK(b.cache->counters().remote_errors == 0);
    CHECK(rb.health().usable());
  }
  SUBCASE("a blob the store holds, put where another belongs, is refused and kept") {
    Digest held = hash_bytes("two\n");
    pb::CacheEntry mine = b.store("second", "two\n");
    REQUIRE(b.cache->store().contains(held));
    Digest wanted = hash_bytes("object of int x;\n");
    server.set("/" + remote_layout::cas_path(wanted), "two\n");
    auto rb = b.remote(server.url(), key);
    CHECK(rb.prefetch(build, never, &warnings) == 1);  // the third (B made the second itself)
    CHECK(b.cache->store().contains(held));
    CHECK_FALSE(b.cache->store().contains(wanted));
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("does not match its digest") != std::string::npos);
  }
  SUBCASE("a prefetch stops past its byte budget, and when told to") {
    RemoteOptions o = b.remote(server.url(), key).options();
    o.prefetch_budget_bytes = 1;
    auto rb = RemoteCache::open(o, *b.cache);
    REQUIRE(rb);
    CHECK(rb->prefetch(build, never, &warnings) < 3);
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("the manifest lists more than the prefetch's") != std::string::npos);
    auto rc = b.remote(server.url(), key);
    CHECK(rc.prefetch(build, [] { return true; }, &warnings) == 0);
  }
  SUBCASE("a read-only client publishes nothing") {
    Machine c;
    auto rc = c.remote(server.url(), key, /*upload=*/false);
    size_t before = server.puts;
    CHECK(rc.publish(remote_layout::build_key({"other"}, "/src", "/src"), used, &warnings));
    CHECK(server.puts == before);
  }
}

TEST_CASE("a remote URL names a server and holds no credentials") {
  CHECK(check_remote_url("http://cache:8080/prefix") == "");
  CHECK(check_remote_url("https://cache.example") == "");
  CHECK(check_remote_url("ftp://cache").find("not an http") != std::string::npos);
  CHECK(check_remote_url("cache:8080").find("not an http") != std::string::npos);
  CHECK(check_remote_url("http://").find("names no server") != std::string::npos);
  CHECK(check_remote_url("http://user:pw@cache/").find("credentials") != std::string::npos);
  CHECK(check_remote_url("http://cache/?x=1").find("query") != std::string::npos);
}
