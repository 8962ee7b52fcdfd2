// Applying patches' edits and recognising which of them a file holds.
#include "patch_engine.hpp"

#include <catch2/catch.hpp>

using namespace moat::guard;

namespace {
Patch patch(std::string name, std::vector<PatchEdit> edits) {
    Patch p;
    p.name = std::move(name);
    p.target = "x.py";
    p.edits = std::move(edits);
    return p;
}
const std::string original = "def a():\n\treturn 1\n\ndef b():\n\treturn 2\n";
} // namespace

TEST_CASE("edits are applied in order; a missing or repeated text is an error", "[guard][patch]") {
    Patch a = patch("a", {{"\treturn 1\n", "\treturn 10\n"}});
    Patch b = patch("b", {{"\treturn 2\n", "\treturn 20\n"}});
    CHECK(apply_edits(original, {&a, &b}) == "def a():\n\treturn 10\n\ndef b():\n\treturn 20\n");
    CHECK(apply_edits(original, {}) == original);
    Patch twice = patch("twice", {{"\treturn", "\tyield"}});
    CHECK_THROWS_WITH(apply_edits(original, {&twice}), Catch::Contains("occurs 2 times"));
    Patch missing = patch("missing", {{"def c", "def d"}});
    CHECK_THROWS_WITH(apply_edits(original, {&missing}), Catch::Contains("patch missing: edit 1 of 1") &&
                                                              Catch::Contains("occurs 0 times"));
}

TEST_CASE("the applied subset is recognised, also both patches of one file", "[guard][patch]") {
    Patch a = patch("a", {{"\treturn 1\n", "\treturn 10\n"}});
    Patch b = patch("b", {{"\treturn 2\n", "\treturn 20\n"}});
    std::vector<const Patch*> both{&a, &b};
    CHECK(applied_subset(original, original, both)->empty());
    CHECK(*applied_subset(original, apply_edits(original, {&b}), both) == std::vector<const Patch*>{&b});
    CHECK(*applied_subset(original, apply_edits(original, both), both) == both);
    CHECK_FALSE(applied_subset(original, original + "# changed\n", both));
    CHECK(looks_applied(a, apply_edits(original, {&a})));
    CHECK_FALSE(looks_applied(a, original));
}

TEST_CASE("the listing for a review names each edit's line, or why it does not fit", "[guard][patch]") {
    Patch ab = patch("ab", {{"\treturn 1\n", "\treturn 10\n"}, {"def b():\n\treturn 2\n", "def b():\n\treturn 20\n"}});
    EditListing l = list_edits(original, ab);
    CHECK(l.fits);
    CHECK(l.text == "edit 1 of 2 at line 2:\n-\treturn 1\n+\treturn 10\n"
                    "edit 2 of 2 at line 4:\n-def b():\n-\treturn 2\n+def b():\n+\treturn 20\n");
    Patch twice = patch("twice", {{"\treturn", "\tyield"}, {"def c", "def d"}});
    l = list_edits(original, twice);
    CHECK_FALSE(l.fits);
    CHECK(l.text == "edit 1 of 2: does not fit: the text to replace occurs 2 times (must be once):\n?\treturn\n"
                    "edit 2 of 2: does not fit: the text to replace occurs 0 times (must be once):\n?def c\n");
}
