// SPDX-License-Identifier: MIT
// Tests of the text table, CSV and JSON writers (escaping, variants, missing entries, bad paths).
#include <catch2/catch.hpp>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "shiftnorm/eval/report.hpp"

using namespace shiftnorm;
using namespace shiftnorm::eval;

namespace {

// Minimal strict JSON validator (RFC 8259 grammar, no extensions): returns true when `s` is one
// complete JSON value.
struct json_checker {
    const std::string& s;
    std::size_t i = 0;
    void ws() {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) ++i;
    }
    bool lit(const char* t) {
        const std::string v(t);
        if (s.compare(i, v.size(), v) != 0) return false;
        i += v.size();
        return true;
    }
    bool str() {
        if (s[i] != '"') return false;
        for (++i; i < s.size(); ++i) {
            const unsigned char c = static_cast<unsigned char>(s[i]);
            if (c < 0x20) return false;
            if (c == '"') return ++i, true;
            if (c == '\\') {
                ++i;
                if (i >= s.size()) return false;
                if (s[i] == 'u') {
                    for (int k = 0; k < 4; ++k)
                        if (++i >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
                } else if (std::string("\"\\/bfnrt").find(s[i]) == std::string::npos) {
                    return false;
                }
            }
        }
        return false;
    }
    bool num() {
        const std::size_t b = i;
        if (s[i] == '-') ++i;
        while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.' || s[i] == 'e' ||
                                s[i] == 'E' || s[i] == '+' || s[i] == '-'))
            ++i;
        return i > b && std::isdigit(static_cast<unsigned char>(s[i - 1]));
    }
    bool value() {
        ws();
        if (i >= s.size()) return false;
        bool ok;
        if (s[i] == '{') {
            ++i, ws();
            if (s[i] == '}') return ++i, true;
            for (;;) {
                ws();
                if (!str()) return false;
                ws();
                if (s[i++] != ':' || !value()) return false;
                ws();
                if (s[i] == ',') { ++i; continue; }
                if (s[i] == '}') return ++i, true;
                return false;
            }
        } else if (s[i] == '[') {
            ++i, ws();
            if (s[i] == ']') return ++i, true;
            for (;;) {
                if (!value()) return false;
                ws();
                if (s[i] == ',') { ++i; continue; }
                if (s[i] == ']') return ++i, true;
                return false;
            }
        } else if (s[i] == '"') {
            ok = str();
        } else if (s[i] == 't') {
            ok = lit("true");
        } else if (s[i] == 'f') {
            ok = lit("false");
        } else if (s[i] == 'n') {
            ok = lit("null");
        } else {
            ok = num();
        }
        return ok;
    }
    bool whole() {
        const bool ok = value();
        ws();
        return ok && i == s.size();
    }
};
bool valid_json(const std::string& s) { return json_checker{s}.whole(); }


report sample_report(baseline_kind k) {
    report rep;
    rep.title = "unit test \"report\"";
    rep.baseline = baseline_table(k);
    model_results m;
    m.model = "Net, v2";
    for (int c = 0; c < 15; ++c)
        for (int s = 1; s <= 5; ++s) {
            m.before.set(corruption_names[std::size_t(c)], s, 0.70);
            if (c != 3) {
                if (!m.after) m.after = results("after");
                m.after->set(corruption_names[std::size_t(c)], s, 0.80);
            }
        }
    m.before.set_clean(0.9);
    rep.rows.push_back(m);
    model_results only_before;
    only_before.model = "Plain";
    only_before.before.set("fog", 1, 0.5);
    rep.rows.push_back(only_before);
    return rep;
}

}  // namespace

TEST_CASE("json_escape and csv_escape", "[eval][report]") {
    CHECK(json_escape("a\"b\\c\n\x01z") == "a\\\"b\\\\c\\n\\u0001z");
    CHECK(json_escape("tab\there") == "tab\\there");
    CHECK(json_escape("caf\xc3\xa9") == "caf\xc3\xa9");
    CHECK(csv_escape("plain") == "plain");
    CHECK(csv_escape("a,b") == "\"a,b\"");
    CHECK(csv_escape("say \"hi\"") == "\"say \"\"hi\"\"\"");
    CHECK(csv_escape("two\nlines") == "\"two\nlines\"");
    // csv_fields reads back what csv_escape wrote
    const std::vector<std::string> fields{"plain", "a,b", "say \"hi\"", "", "x"};
    std::string line;
    for (std::size_t i = 0; i < fields.size(); ++i) line += (i ? "," : "") + csv_escape(fields[i]);
    CHECK(csv_fields(line) == fields);
    CHECK(csv_fields(line + "\r") == fields);
    CHECK(valid_json("{\"a\": [1, -2.5e3, null, true, \"x\\u0001\"]}"));
    CHECK_FALSE(valid_json("{\"a\": nan}"));
    CHECK_FALSE(valid_json("{\"a\": \"raw\nnewline\"}"));
}

TEST_CASE("print_table: Table 1 layout, variant header, notes", "[eval][report]") {
    const report rep = sample_report(baseline_kind::none);
    std::ostringstream os;
    print_table(os, rep);
    const std::string t = os.str();
    INFO(t);
    CHECK(t.find("unnormalized") != std::string::npos);
    CHECK(t.find("Acc*") != std::string::npos);
    CHECK(t.find("mCE*") != std::string::npos);
    // Net, v2: Acc 70.0, Acc* 80.0 (14 corruptions), mCE 30.0, mCE* 20.0.
    CHECK(t.find("Net, v2         70.0    80.0    30.0    20.0") != std::string::npos);
    CHECK(t.find("Per-corruption CE") != std::string::npos);
    CHECK(t.find("defoc") != std::string::npos);
    CHECK(t.find("Net, v2*: Acc over 70 of 75 cells, mCE over 14 of 15 corruptions; not evaluated: defocus_blur") !=
          std::string::npos);
    CHECK(t.find("Plain: Acc over 1 of 75 cells") != std::string::npos);
}

TEST_CASE("print_table with a normalizing baseline names it", "[eval][report]") {
    const report rep = sample_report(baseline_kind::alexnet_cifar10);
    std::ostringstream os;
    print_table(os, rep);
    CHECK(os.str().find("baseline alexnet-cifar10") != std::string::npos);
    // Plain has one severity of fog only: no CE with a 5-severity-average table, and it says so.
    CHECK(os.str().find("no CE: fog (CE needs 5 severities") != std::string::npos);
}

TEST_CASE("summary CSV: one row per condition, consistent field counts", "[eval][report]") {
    const report rep = sample_report(baseline_kind::alexnet_imagenet);
    std::istringstream is(to_summary_csv(rep));
    std::string line;
    std::getline(is, line);
    const auto header = csv_fields(line);
    CHECK(header.size() == 10 + 15);
    CHECK(header[7] == "mce");
    int rows = 0;
    while (std::getline(is, line)) {
        const auto f = csv_fields(line);
        CHECK(f.size() == header.size());
        if (rows == 0) {
            CHECK(f[0] == "Net, v2");
            CHECK(f[1] == "before");
            CHECK(std::stod(f[5]) == Approx(70.0));
            // CE of gaussian_noise: 100 * 1.5 / 4.43214
            CHECK(std::stod(f[10]) == Approx(100 * 1.5 / 4.43214));
        }
        if (rows == 1) CHECK(f[13].empty());  // defocus_blur after: not evaluated
        ++rows;
    }
    CHECK(rows == 3);  // Net before, Net after, Plain before
}

TEST_CASE("cells CSV lists every evaluated cell", "[eval][report]") {
    const std::string csv = to_cells_csv(sample_report(baseline_kind::none));
    std::istringstream is(csv);
    std::string line;
    int n = 0;
    while (std::getline(is, line)) ++n;
    CHECK(n == 1 + 1 + 75 + 70 + 1);  // header, clean, before, after, Plain's fog
    CHECK(csv.find("\"Net, v2\",before,clean,0,0.9") != std::string::npos);
}

TEST_CASE("JSON is valid and carries nulls for missing values", "[eval][report]") {
    for (auto k : {baseline_kind::none, baseline_kind::alexnet_cifar100, baseline_kind::alexnet_imagenet}) {
        const std::string j = to_json(sample_report(k));
        INFO(j);
        CHECK(valid_json(j));
        CHECK(j.find("\"title\": \"unit test \\\"report\\\"\"") != std::string::npos);
        CHECK(j.find("\"mce_variant\"") != std::string::npos);
        CHECK(j.find("\"after\": null") != std::string::npos);
        CHECK(j.find("\"accuracy_by_severity\": [0.5, null, null, null, null]") != std::string::npos);
    }
    CHECK(valid_json(to_json(report{})));
}

TEST_CASE("writers throw io_error naming an unwritable path", "[eval][report]") {
    const report rep = sample_report(baseline_kind::none);
    CHECK_THROWS_AS(write_text_file("/nonexistent-dir/x.csv", "x"), io_error);
    CHECK_THROWS_WITH(write_report_files("/nonexistent-dir/run", rep), Catch::Contains("/nonexistent-dir/run_summary.csv"));
    const std::string prefix = "test_eval_report_tmp";
    const auto paths = write_report_files(prefix, rep);
    REQUIRE(paths.size() == 3);
    std::ifstream f(paths[2]);
    std::stringstream ss;
    ss << f.rdbuf();
    CHECK(ss.str() == to_json(rep));
    for (const auto& p : paths) std::remove(p.c_str());
}
