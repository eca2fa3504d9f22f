// SPDX-License-Identifier: MIT
// adapt --replot: the cells CSV read back redraws the sweep's accuracy plots byte for byte.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "shiftnorm/data/file.hpp"
#include "shiftnorm/eval/rectification_report.hpp"

using namespace shiftnorm;
using namespace shiftnorm::eval;

namespace {

std::vector<unsigned char> bytes_of(const std::string& path) { return data::read_regular_file(path, "png"); }

//! A sweep result with made-up cells: two variants (both, var only), K = 16, 3 corruptions x 5
//! severities; accuracies in [0, 1] that differ per cell.
struct fake_sweep {
    rectification_sweep_options o;
    rectification_sweep_result r;
    //! kind 0: the paper's setting and var only; 1: var only and mean only (no row without a
    //! bracket, like Table 7's thirds); 2: no BN
    explicit fake_sweep(int kind) {
        const bool bn = kind < 2;
        o.ks = {16};
        o.corruptions = {corrupt::parse_corruption("gaussian_noise"), corrupt::parse_corruption("fog"),
                         corrupt::parse_corruption("pixelate")};
        if (kind == 0) o.variants = {make_rectify_variant("both", "all", "test"), make_rectify_variant("var", "all", "test")};
        if (kind == 1) o.variants = {make_rectify_variant("var", "all", "test"), make_rectify_variant("mean", "all", "test")};
        r.before.set_clean(0.81);
        r.after.resize(o.variants.size());
        int i = 0;
        for (auto c : o.corruptions)
            for (int s = 1; s <= 5; ++s, ++i) {
                r.before.set(corrupt::name_of(c), s, 0.7 - 0.05 * s + 0.01 * i);
                for (std::size_t v = 0; v < o.variants.size(); ++v) {
                    auto& a = r.after[v][16];
                    a.set_clean(0.8);
                    a.set(corrupt::name_of(c), s, 0.75 - 0.02 * s + 0.003 * i + 0.01 * double(v));
                }
            }
    }
};

}  // namespace

TEST_CASE("replot: cells CSV -> the same accuracy plots as the sweep drew (BN and no-BN)", "[eval][report][replot]") {
    for (int kind : {0, 1, 2}) {
        const bool bn = kind < 2;
        fake_sweep f(kind);
        const sweep_labels labels{"ResNet-20", bn ? "" : "group:8 norm"};
        const baseline_table base(parse_baseline("alexnet-cifar10"));
        const auto root = std::filesystem::temp_directory_path() / ("shiftnorm_replot_" + std::to_string(kind));
        std::filesystem::remove_all(root);
        std::filesystem::create_directories(root / "run");
        std::filesystem::create_directories(root / "replot");
        const auto drawn = write_sweep_plots((root / "run").string(), f.r, f.o, base, labels);
        const auto rep = make_sweep_report(f.r, f.o, base, "title", labels);
        const auto rows = parse_cells_csv(to_cells_csv(rep));
        REQUIRE(rows.size() == (bn ? 2u : 1u));
        CHECK(rows[0].after.has_value() == bn);
        CHECK(*rows[0].before.get("fog", 3) == Approx(*f.r.before.get("fog", 3)).margin(1e-9));
        const auto redrawn = replot_sweep((root / "replot").string(), rows, 16);
        REQUIRE(redrawn.size() == 2);
        for (const char* name : {"accuracy_per_corruption.png", "accuracy_per_severity.png"}) {
            INFO(name << " kind " << kind);
            CHECK(bytes_of((root / "run" / name).string()) == bytes_of((root / "replot" / name).string()));
        }
        std::filesystem::remove_all(root);
    }
}

TEST_CASE("parse_cells_csv: hostile files throw io_error naming the line", "[eval][report][replot]") {
    const std::string head = "model,condition,corruption,severity,accuracy\n";
    CHECK_THROWS_AS(parse_cells_csv(""), io_error);
    CHECK_THROWS_AS(parse_cells_csv("model,accuracy\nx,1\n"), io_error);
    CHECK_THROWS_AS(parse_cells_csv(head), io_error);  // no cells
    CHECK_THROWS_WITH(parse_cells_csv(head + "m,during,fog,1,0.5\n"), Catch::Contains("line 2") && Catch::Contains("condition"));
    CHECK_THROWS_WITH(parse_cells_csv(head + "m,before,fog,9,0.5\n"), Catch::Contains("severity"));
    CHECK_THROWS_WITH(parse_cells_csv(head + "m,before,fog,1,nan\n"), Catch::Contains("accuracy"));
    CHECK_THROWS_WITH(parse_cells_csv(head + "m,before,fog,1,1.5\n"), Catch::Contains("accuracy"));
    CHECK_THROWS_WITH(parse_cells_csv(head + "m,before,not_a_corruption,1,0.5\n"), Catch::Contains("line 2"));
    CHECK_THROWS_WITH(parse_cells_csv(head + "m,before,fog,1\n"), Catch::Contains("4 fields"));
    // quoted labels with commas and quotes survive, CRLF line ends are accepted
    const auto rows = parse_cells_csv(head + "\"a, \"\"b\"\"\",before,fog,2,0.25\r\n");
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].model == "a, \"b\"");
    CHECK(*rows[0].before.get("fog", 2) == 0.25);
    // a replot needs corrupted cells and consistent rows
    CHECK_THROWS_AS(replot_sweep(std::filesystem::temp_directory_path().string(), parse_cells_csv(head + "m,before,clean,0,0.9\n"), 32),
                    value_error);
    CHECK_THROWS_AS(replot_sweep(std::filesystem::temp_directory_path().string(),
                                 parse_cells_csv(head + "m,before,fog,1,0.5\nm,after,fog,1,0.6\nn,before,fog,1,0.5\n"), 32),
                    value_error);
}
