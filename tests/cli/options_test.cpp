// options_test.cpp: the bsandbox command line.
#include "cli/options.h"

#include <doctest/doctest.h>

using namespace bsandbox;
using namespace bsandbox::cli;

namespace {
Result<Command> p(std::vector<std::string> args) { return parse(args); }
const ExecOptions& exec_of(const Result<Command>& c) { return std::get<ExecCommand>(*c).options; }
}  // namespace

TEST_CASE("exec with options before -- and the command after") {
  auto c = p({"exec", "--json", "o.json", "--record=o.rec", "--strict", "-v", "--", "make", "-j2"});
  REQUIRE(c);
  const auto& o = exec_of(c);
  CHECK(o.json_path == "o.json");
  CHECK(o.record_path == "o.rec");
  CHECK(o.strict);
  CHECK(o.verbose);
  CHECK(o.argv == std::vector<std::string>{"make", "-j2"});
}

TEST_CASE("the command may start at the first word that is not an option") {
  auto c = p({"exec", "-q", "ls", "-l", "--json", "x"});
  REQUIRE(c);
  CHECK(exec_of(c).argv == std::vector<std::string>{"ls", "-l", "--json", "x"});
  CHECK_FALSE(exec_of(c).json_path);
}

TEST_CASE("errors are one line, naming the problem") {
  CHECK(p({"exec", "--bogus", "--", "x"}).error().message ==
        "unknown option '--bogus' for exec (see bsandbox --help)");
  CHECK(p({"exec", "--json"}).error().message == "option --json needs a value");
  CHECK(p({"exec", "--"}).error().message.starts_with("exec needs a command"));
  CHECK(exec_of(p({"exec", "--backend=ptrace", "x"})).backend == "ptrace");
  CHECK(p({"exec", "--backend=strace", "x"}).error().message.starts_with("unknown backend"));
  CHECK(p({"exec", "--buffer-size=3M", "x"}).error().message.find("power of two") !=
        std::string::npos);
  CHECK(p({"frobnicate"}).error().message.starts_with("unknown subcommand 'frobnicate'"));
  CHECK_FALSE(p({}));
  CHECK_FALSE(p({"show"}));
  CHECK_FALSE(p({"show", "a", "b"}));
}

TEST_CASE("buffer sizes take K, M, G") {
  CHECK(parse_size("4096") == 4096u);
  CHECK(parse_size("64K") == 65536u);
  CHECK(parse_size("16M") == 16u << 20);
  CHECK(parse_size("1G") == 1u << 30);
  CHECK_FALSE(parse_size("M"));
  CHECK_FALSE(parse_size("12Q"));
  CHECK_FALSE(parse_size("-1"));
  CHECK_FALSE(parse_size("99999999999999999999G"));
  auto c = p({"exec", "--buffer-size", "64M", "x"});
  REQUIRE(c);
  CHECK(exec_of(c).buffer_bytes == 64u << 20);
}

TEST_CASE("help, version, show") {
  CHECK(std::holds_alternative<HelpCommand>(*p({"--help"})));
  CHECK(std::holds_alternative<VersionCommand>(*p({"--version"})));
  CHECK(std::get<ShowCommand>(*p({"show", "run.rec"})).record == "run.rec");
}

TEST_CASE("--trust-owner is taken by exec and by every journal command") {
  CHECK(exec_of(p({"exec", "--trust-owner", "--", "make"})).trust_owner);
  CHECK_FALSE(exec_of(p({"exec", "make"})).trust_owner);
  CHECK(std::get<LogCommand>(*p({"log", "--trust-owner"})).trust_owner);
  CHECK(std::get<InitCommand>(*p({"init", "--trust-owner", "dir"})).trust_owner);
  auto undo = p({"undo", "3", "--force", "--trust-owner"});
  REQUIRE(undo);
  CHECK(std::get<UndoCommand>(*undo).entry == 3);
  CHECK(std::get<UndoCommand>(*undo).trust_owner);
  CHECK(std::get<RecoverCommand>(*p({"recover", "--trust-owner", "--abort"})).abort);
  CHECK(std::get<GcCommand>(*p({"gc", "--trust-owner"})).trust_owner);
  CHECK_FALSE(std::get<DiffCommand>(*p({"diff", "2"})).trust_owner);
}

TEST_CASE("the remote cache's yes|no options, and only with --cache") {
  auto c = p({"exec", "--cache", "--cache-remote=http://127.0.0.1:1", "--cache-remote-prefetch=no",
              "--cache-remote-upload", "no", "--", "make"});
  REQUIRE(c);
  CHECK_FALSE(exec_of(c).cache_remote_prefetch);
  CHECK_FALSE(exec_of(c).cache_remote_upload);
  CHECK(p({"exec", "--cache", "--cache-remote-prefetch=maybe", "x"}).error().message ==
        "--cache-remote-prefetch is yes or no, not 'maybe'");
  CHECK(p({"exec", "--cache-remote-prefetch=no", "x"}).error().message ==
        "--cache-remote-prefetch applies to cached runs (add --cache)");
}
