// prometheus_test.cpp: the text exposition format as written: families,
// samples with and without labels, and label values that need escaping or
// are not UTF-8.
#include "sandbox/base/prometheus.h"

#include <doctest/doctest.h>

using namespace bsandbox;

TEST_CASE("a family is its HELP and TYPE lines, then its samples") {
  prometheus::Writer w;
  w.family("x_total", "counter", "Things counted.");
  w.sample("x_total", "", "3");
  w.sample("x_total", "a=\"1\"", "4");
  CHECK(w.take() == "# HELP x_total Things counted.\n# TYPE x_total counter\nx_total 3\nx_total{a=\"1\"} 4\n");
}

TEST_CASE("take leaves the writer empty") {
  prometheus::Writer w;
  w.sample("y", "", "1");
  CHECK(w.take() == "y 1\n");
  CHECK(w.take().empty());
}

TEST_CASE("labels: name=\"value\" pairs in order, values escaped") {
  CHECK(prometheus::labels({}) == "");
  CHECK(prometheus::labels({{"job", "11"}}) == "job=\"11\"");
  CHECK(prometheus::labels({{"job", "11"}, {"uid", "1000"}}) == "job=\"11\",uid=\"1000\"");
  CHECK(prometheus::labels({{"record", "b\"x.rec"}}) == "record=\"b\\\"x.rec\"");
}

TEST_CASE("label values: backslash, quote and newline escaped, other text as it is") {
  CHECK(prometheus::label_value("plain text, 'quotes' {braces}") == "plain text, 'quotes' {braces}");
  CHECK(prometheus::label_value("a\\b") == "a\\\\b");
  CHECK(prometheus::label_value("say \"hi\"") == "say \\\"hi\\\"");
  CHECK(prometheus::label_value("two\nlines") == "two\\nlines");
  CHECK(prometheus::label_value("tab\there") == "tab\there");  // only the three the format names
  CHECK(prometheus::label_value("") == "");
}

TEST_CASE("label values: UTF-8 kept, bytes that are not UTF-8 replaced one by one") {
  CHECK(prometheus::label_value("caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK(prometheus::label_value("\xf0\x9f\x98\x80") == "\xf0\x9f\x98\x80");
  CHECK(prometheus::label_value("a\xff" "b") == "a\xef\xbf\xbd" "b");
  CHECK(prometheus::label_value("\xc3") == "\xef\xbf\xbd");               // cut short
  CHECK(prometheus::label_value("\xc0\xaf") == "\xef\xbf\xbd\xef\xbf\xbd");  // overlong '/': two bytes, two marks
  CHECK(prometheus::label_value("\xed\xa0\x80") == "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // a surrogate
  // An escape after a replaced byte is still an escape.
  CHECK(prometheus::label_value("\xfe\"") == "\xef\xbf\xbd\\\"");
}
