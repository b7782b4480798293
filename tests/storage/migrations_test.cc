#include "storage/migrations.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace popgate::storage {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Migrations, VersionsRunFromOneWithoutGaps) {
  const auto all = migrations();
  ASSERT_FALSE(all.empty());
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].version, static_cast<int>(i + 1));
    EXPECT_EQ(all[i].name.size() > 5 ? all[i].name[4] : '?', '_') << all[i].name;
    EXPECT_FALSE(all[i].sql.empty());
  }
  EXPECT_EQ(schema_version(), all.back().version);
}

TEST(Migrations, EmbeddedTextIsTheFileByteForByte) {
  for (const Migration& m : migrations()) {
    const std::string path =
        std::string(POPGATE_SOURCE_DIR) + "/storage/migrations/" + std::string(m.name) + ".sql";
    const std::string file = read_file(path);
    ASSERT_FALSE(file.empty()) << path;
    EXPECT_EQ(m.sql, file) << path;
  }
}

TEST(Migrations, FirstCreatesTheSchema) {
  const Migration& first = migrations().front();
  EXPECT_EQ(first.name, "0001_init");
  EXPECT_NE(first.sql.find("CREATE TABLE popgate.maildrop_locks"), std::string_view::npos);
}

}  // namespace
}  // namespace popgate::storage
