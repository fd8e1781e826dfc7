#include <lowbit/sdk/error.h>
#include <lowbit/sdk/json_reader.h>

#include <catch2/catch.hpp>

namespace {

enum class Rounding { nearest, down };

Rounding rounding_of(const nlohmann::json& options) {
  lowbit::JsonReader reader(options, "run.json", "/quantizer/options");
  return reader.mapped_choice("rounding", Rounding::nearest,
                              {{"nearest", Rounding::nearest}, {"down", Rounding::down}});
}

}  // namespace

TEST_CASE("a mapped choice returns the value of the name given, or the fallback", "[json]") {
  CHECK(rounding_of(nlohmann::json::object()) == Rounding::nearest);
  CHECK(rounding_of({{"rounding", "down"}}) == Rounding::down);
  CHECK(rounding_of({{"rounding", "nearest"}}) == Rounding::nearest);
}

TEST_CASE("a mapped choice's error names the file, the field and the names allowed", "[json]") {
  try {
    rounding_of({{"rounding", "up"}});
    FAIL("\"up\" should have been refused");
  } catch (const lowbit::ConfigError& e) {
    CHECK(e.pointer() == "/quantizer/options/rounding");
    CHECK(e.allowed() == "nearest, down");
    CHECK_THAT(e.what(), Catch::Contains("run.json") && Catch::Contains("up"));
  }
}
